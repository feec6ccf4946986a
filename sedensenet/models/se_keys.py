"""SE modules in foreign state_dicts: found by their weights, placed by key names and state_dict order.

A state_dict keeps the registration order of modules, and in every DenseNet seen (torchvision's, the course
seed's, public SE-DenseNets) modules are registered in the order they run. So an SE module's site follows from
its neighbours: between the stem and block 1 it gates the stem output / block 1 input, between block ``i`` and
transition ``i`` the block output, inside a dense layer before ``norm1`` the layer input (SE-PRE), after ``conv2``
the new features, first inside a transition its input, around ``norm5`` the final features. Files are renamed
to this package's module names (``sedensenet.models.densenet`` lists them); :func:`infer_se` then reads sites,
widths, biases and module variants from the renamed keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor

# (reduce suffix, expand suffix, variant family) — the SE module variants seen publicly.
_VARIANTS = (("fc.0", "fc.2", "fc"), ("fc1", "fc2", "fc1fc2"), ("conv_reduce", "conv_expand", "reduce_expand"))
_LAYER = re.compile(r"^features\.denseblock(\d+)\.denselayer(\d+)\.([^.]+)$")
_TRANSITION = re.compile(r"^features\.transition(\d+)\.([^.]+)$")
_TOP = re.compile(r"^features\.([^.]+)$")
_BLOCK = re.compile(r"^denseblock(\d+)$")
_TRANS = re.compile(r"^transition(\d+)$")
# This package's own names, read back by infer_se.
_CANONICAL = (
    (re.compile(r"^features\.se_stem$"), "stem"),
    (re.compile(r"^features\.se_in(\d+)$"), "block_input"),
    (re.compile(r"^features\.denseblock(\d+)\.denselayer(\d+)\.se_in$"), "layer_input"),
    (re.compile(r"^features\.denseblock(\d+)\.denselayer(\d+)\.se$"), "layer"),
    (re.compile(r"^features\.se(\d+)$"), "block_output"),  # the last block's is pre_norm
    (re.compile(r"^features\.transition(\d+)\.se$"), "transition_input"),
    (re.compile(r"^features\.se_out$"), "post_norm"),
)


def _shape(state: Mapping[str, Any], key: str) -> tuple[int, ...] | None:
    value = state.get(key)
    return tuple(value.shape) if isinstance(value, Tensor) else None


def find_se_prefixes(state: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(module prefix, variant family, conv?) of every SE module under ``features.``, in state_dict order.

    An SE module is a reduce/expand weight pair with shapes (h, C) and (C, h) (or 1×1 conv kernels).
    """
    found: list[tuple[str, str, bool]] = []
    for key in state:
        if not key.startswith("features.") or not key.endswith(".weight"):
            continue
        for reduce, expand, family in _VARIANTS:
            suffix = f".{reduce}.weight"
            if not key.endswith(suffix):
                continue
            prefix = key[: -len(suffix)]
            r, e = _shape(state, key), _shape(state, f"{prefix}.{expand}.weight")
            if r is None or e is None or len(r) != len(e) or len(r) not in (2, 4):
                continue
            if r[:2] != e[:2][::-1] or (len(r) == 4 and (r[2:] != (1, 1) or e[2:] != (1, 1))):
                continue
            found.append((prefix, family, len(r) == 4))
    return found


def _order(state: Mapping[str, Any]) -> dict[str, int]:
    """Module prefix → position of its first key (every ancestor prefix included)."""
    first: dict[str, int] = {}
    for i, key in enumerate(state):
        parts = key.split(".")
        for n in range(1, len(parts)):
            first.setdefault(".".join(parts[:n]), i)
    return first


def place_se_modules(state: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Rename every SE module of a (torchvision-named) DenseNet state_dict to this package's site names.

    Returns the renamed dict (same order) and whether any module had to be renamed (a foreign layout).
    Raises ``ValueError`` naming an SE module whose place is not a supported site.
    """
    prefixes = [p for p, _, _ in find_se_prefixes(state)]
    if not prefixes:
        return state, False
    first = _order(state)
    se_set = set(prefixes)
    n_blocks = max((int(m.group(1)) for k in first if (m := re.match(r"^features\.denseblock(\d+)$", k))),
                   default=0)
    top = sorted((k for k in first if _TOP.match(k)), key=first.__getitem__)
    rename: dict[str, str] = {}
    gaps: dict[tuple[str, str], list[str]] = {}  # (previous, next) non-SE top-level child → SE modules between
    prev = "stem"
    for i, child in enumerate(top):
        if child in se_set:
            nxt = next((c for c in top[i + 1:] if c not in se_set), "end")
            gaps.setdefault((prev, nxt), []).append(child)
        elif (name := child.removeprefix("features.")) and (_BLOCK.match(name) or _TRANS.match(name)
                                                             or name == "norm5"):
            prev = child
    for prefix in prefixes:
        if m := _LAYER.match(prefix):
            b, j = m.group(1), m.group(2)
            base = f"features.denseblock{b}.denselayer{j}"
            if first[prefix] < first.get(f"{base}.norm1", -1):
                rename[prefix] = f"{base}.se_in"
            elif first[prefix] > first.get(f"{base}.conv2", 1 << 62):
                rename[prefix] = f"{base}.se"
            else:
                raise ValueError(f"SE module {prefix} sits between the convolutions of dense layer {b}.{j}; "
                                 "supported inside a dense layer: before norm1 (input) or after conv2 (new features)")
        elif m := _TRANSITION.match(prefix):
            if first[prefix] > first.get(f"features.transition{m.group(1)}.norm", 1 << 62):
                raise ValueError(f"SE module {prefix} sits after the transition's norm; supported: as its first "
                                 "operation (transition input)")
            rename[prefix] = f"features.transition{m.group(1)}.se"
        elif not _TOP.match(prefix):
            raise ValueError(f"SE module {prefix} is not at a supported site (stem, block input/output, dense layer "
                             "input/new features, transition input, before/after the final norm)")
    block_inputs_after_transitions = any(_TRANS.match(p.removeprefix("features.")) and _BLOCK.match(
        n.removeprefix("features.")) for p, n in gaps)
    for (prev, nxt), modules in gaps.items():
        rename.update(_place_top(prev, nxt, modules, n_blocks, block_inputs_after_transitions))
    if len(set(rename.values())) != len(rename):
        raise ValueError("two SE modules map to the same site; the layout is ambiguous")
    changed = any(old != new for old, new in rename.items())
    if not changed:
        return state, False
    out: dict[str, Any] = {}
    for key, value in state.items():
        prefix = next((p for p in rename if key.startswith(p + ".")), None)
        out[rename[prefix] + key[len(prefix):] if prefix else key] = value
    return out, True


def _place_top(prev: str, nxt: str, modules: list[str], n_blocks: int, other_block_inputs: bool
               ) -> dict[str, str]:
    """Sites of the SE modules directly under ``features`` between the children ``prev`` and ``nxt``."""
    p, q = prev.removeprefix("features."), nxt.removeprefix("features.")
    where = f"between {p} and {q}"
    if p == "stem" and q == "denseblock1":
        if len(modules) == 2:
            return {modules[0]: "features.se_stem", modules[1]: "features.se_in1"}
        if len(modules) == 1:
            # Alone before block 1 it gates both; call it a block input when the other blocks have one too.
            own = modules[0] in ("features.se_stem", "features.se_in1")
            name = modules[0] if own else "features.se_in1" if other_block_inputs else "features.se_stem"
            return {modules[0]: name}
    elif len(modules) == 1:
        if (t := _TRANS.match(p)) and (b := _BLOCK.match(q)) and int(b.group(1)) == int(t.group(1)) + 1:
            return {modules[0]: f"features.se_in{b.group(1)}"}
        if (b := _BLOCK.match(p)) and (t := _TRANS.match(q)) and b.group(1) == t.group(1):
            return {modules[0]: f"features.se{b.group(1)}"}
        if (b := _BLOCK.match(p)) and int(b.group(1)) == n_blocks and q == "norm5":
            return {modules[0]: f"features.se{n_blocks}"}
        if p == "norm5" and q == "end":
            return {modules[0]: "features.se_out"}
    raise ValueError(f"SE module(s) {', '.join(modules)} {where}: not a supported site (one SE per site)")


def _site_of(prefix: str, n_blocks: int) -> tuple[str, int | None, int | None]:
    for pattern, site in _CANONICAL:
        if m := pattern.match(prefix):
            nums = [int(g) for g in m.groups()]
            block = nums[0] if nums else None
            if site == "block_output" and block == n_blocks:
                return "pre_norm", None, None
            return site, block, nums[1] if len(nums) > 1 else None
    raise ValueError(f"SE module {prefix} is not at a known site")


def infer_se(state: Mapping[str, Any], blocks: list[int]) -> tuple[dict[str, Any], list[str]]:
    """Config fields (``se``, ``se_reduction``/``se_hidden``, ``se_bias``, ``se_variant``, ``se_sites``) of a
    state_dict whose SE modules carry this package's names; and notes about what was inferred."""
    per_site: dict[str, dict[str, Any]] = {}
    for prefix, family, conv in find_se_prefixes(state):
        site, block, layer = _site_of(prefix, len(blocks))
        reduce = next(r for r, _, f in _VARIANTS if f == family)
        hidden, channels = _shape(state, f"{prefix}.{reduce}.weight")[:2]  # type: ignore[index]
        variant = family if family == "reduce_expand" else family + ("-conv" if conv else "")
        entry = per_site.setdefault(site, {"widths": set(), "bias": set(), "variant": set(), "where": set()})
        entry["widths"].add((hidden, channels))
        entry["bias"].add(f"{prefix}.{reduce}.bias" in state)
        entry["variant"].add(variant)
        entry["where"].add((block, layer))
    if not per_site:
        return {"se": "none"}, []
    notes: list[str] = []
    specs: dict[str, dict[str, Any]] = {}
    for site, entry in per_site.items():
        if len(entry["variant"]) > 1 or len(entry["bias"]) > 1:
            raise ValueError(f"SE modules at site {site!r} mix module variants or biases: "
                             f"{sorted(entry['variant'])}, bias {sorted(entry['bias'])}")
        spec: dict[str, Any] = {"bias": entry["bias"].pop(), "variant": entry["variant"].pop()}
        spec.update(_width(site, entry["widths"], notes))
        covered = _covered_blocks(site, entry["where"], blocks)
        if covered is not None:
            spec["blocks"] = covered
        specs[site] = spec
    sites = list(specs)
    base = specs[sites[0]]
    fields: dict[str, Any] = {"se": "+".join(sites), "se_bias": base["bias"], "se_variant": base["variant"],
                              "se_reduction": base.get("reduction", 16), "se_hidden": base.get("hidden")}
    global_spec = {"bias": fields["se_bias"], "variant": fields["se_variant"], "reduction": fields["se_reduction"],
                   "hidden": fields["se_hidden"]}
    overrides = {}
    for site, spec in specs.items():
        full = {"reduction": fields["se_reduction"], "hidden": None, **spec}
        diff = {k: v for k, v in full.items() if k == "blocks" or global_spec.get(k) != v}
        if diff:
            overrides[site] = diff
    if overrides:
        fields["se_sites"] = overrides
    return fields, notes


def _width(site: str, pairs: set[tuple[int, int]], notes: list[str]) -> dict[str, Any]:
    """``reduction`` (C // r, ≥ 1, matches every module) or a fixed ``hidden`` width for one site."""
    hidden = {h for h, _ in pairs}
    if hidden == {0}:
        notes.append(f"SE hidden width is 0 at site {site!r} in the file (C // reduction rounded to 0): every gate "
                     "is a constant 0.5; loaded as-is to reproduce the checkpoint")
        return {"hidden": 0}
    for r in (16, *sorted({c // h for h, c in pairs if h})):
        if r >= 1 and all(max(1, c // r) == h for h, c in pairs):
            return {"reduction": r}
    if len(hidden) == 1:
        return {"hidden": hidden.pop()}
    raise ValueError(f"SE hidden widths {sorted(hidden)} at site {site!r} fit neither one reduction ratio nor one "
                     "fixed width")


def _covered_blocks(site: str, where: set[tuple[int | None, int | None]], blocks: list[int]) -> list[int] | None:
    """The block subset of a block-dependent site (None: every block it can sit at)."""
    if site in ("stem", "pre_norm", "post_norm"):
        return None
    last = len(blocks) - 1 if site in ("block_output", "transition_input") else len(blocks)
    covered = sorted({b for b, _ in where if b is not None})
    if site in ("layer_input", "layer"):
        for b in covered:
            layers = sorted(j for bb, j in where if bb == b)
            if layers != list(range(1, blocks[b - 1] + 1)):
                raise ValueError(f"SE at site {site!r} in layers {layers} of block {b} only; supported: every "
                                 "layer of a block")
    return None if covered == list(range(1, last + 1)) else covered

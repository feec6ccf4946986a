"""SE at any site: construction, channel arithmetic, module variants, key inference and public layouts."""

from __future__ import annotations

import copy
import io
import warnings

import pytest
import torch
import torchvision
from helpers import all_hooks, tiny
from hypothesis import given, settings
from hypothesis import strategies as st
from public_se_densenet_reference import VARIANTS, PublicSEDenseNet
from seed_reference import randomise_bn
from torch import nn

from sedensenet import ModelConfig, SELayer, build_model, capture_excitations, load_checkpoint
from sedensenet.analysis.interventions import Intervention, run_intervention
from sedensenet.figures import excitation_heatmap, layer_labels
from sedensenet.models.densenet import SE_SITES, SE_VARIANTS, se_input_widths, se_slots, stages
from sedensenet.models.keys import infer_config, normalise_keys
from sedensenet.models.summary import model_stages, se_placement_text, se_site_table

SMALL = dict(growth_rate=16, block_config=(2, 2, 2, 2), num_init_features=64, num_classes=5)


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and non-zero biases everywhere (the reference zero-initialises biases)."""
    randomise_bn(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is not None:
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.3)
    return model


def _bytes(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


EXPECTED_SITES = {
    "all": "stem+block_input+layer_input+block_output+transition_input+post_norm",
    "full": "layer_input+transition_input",
    "layer_input": "layer_input",
    "full_in_loop": "block_input+block_output",
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_public_se_densenet_layouts_load_with_the_same_logits(variant: str) -> None:
    torch.manual_seed(0)
    reference = _randomise(PublicSEDenseNet(VARIANTS[variant], **SMALL)).eval()
    loaded = load_checkpoint(_bytes(reference.state_dict()), device="cpu")
    cfg = loaded.config
    assert cfg.se == EXPECTED_SITES[variant]
    assert (cfg.se_bias, cfg.se_reduction, cfg.se_variant, cfg.se_sites) == (True, 16, "fc", ())
    assert "key order" in loaded.meta.source
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = reference(x.clone())
        got = loaded.model(x)
    assert float((expected - got).abs().max()) <= 1e-4
    # every SE module of the file became one of ours, one to one
    n_ref = sum(isinstance(m, nn.Module) and type(m).__name__ == "PublicSELayer" for m in reference.modules())
    assert len(se_slots(cfg)) == n_ref > 0


def test_public_legacy_order_places_the_same_names_elsewhere() -> None:
    """The earliest public file uses the same names for other places (SE after each block and after each
    transition): only the state_dict order tells them apart."""
    torch.manual_seed(1)
    reference = _randomise(PublicSEDenseNet({"block_in", "block_out"}, legacy_order=True, **SMALL)).eval()
    loaded = load_checkpoint(_bytes(reference.state_dict()), device="cpu")
    cfg = loaded.config
    assert cfg.sites == ("block_input", "block_output", "pre_norm")
    assert cfg.site_spec("block_input").blocks == (2, 3, 4)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert float((reference(x.clone()) - loaded.model(x)).abs().max()) <= 1e-4


def test_stages_give_torchvision_channel_counts() -> None:
    cfg = build_model("densenet121", se="none").config
    got = [(s.kind, s.index, s.channels_in, s.channels_out) for s in stages(cfg)]
    # DenseNet-121 by hand: 64 → 256 → 128 → 512 → 256 → 1024 → 512 → 1024.
    assert got == [("stem", 0, 3, 64), ("block", 1, 64, 256), ("transition", 1, 256, 128), ("block", 2, 128, 512),
                   ("transition", 2, 512, 256), ("block", 3, 256, 1024), ("transition", 3, 1024, 512),
                   ("block", 4, 512, 1024), ("norm", 0, 1024, 1024)]
    assert torchvision.models.densenet121().classifier.in_features == got[-1][3]


def _module_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Channels actually entering every SELayer in one forward (measured with hooks)."""
    seen: dict[str, int] = {}

    def hook(name: str):
        def record(_m: nn.Module, args: tuple) -> None:
            seen.setdefault(name, args[0].shape[1])
        return record

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, SELayer)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return seen


@settings(max_examples=12, deadline=None)
@given(sites=st.sets(st.sampled_from(SE_SITES), min_size=1), small=st.booleans())
def test_any_site_combination_builds_runs_and_captures_in_forward_order(sites: set[str], small: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tiny(sites, stem="small" if small else "imagenet")
    slots = se_slots(model.config)
    assert {s.site for s in slots} == sites
    x = torch.randn(2, 3, 32, 32)
    seen = _module_inputs(model, x)
    # the channel arithmetic agrees with what flows, and forward order = slot order
    assert list(seen) == [s.name for s in slots]
    assert list(seen.values()) == se_input_widths(model.config)
    cap = capture_excitations(model, x)
    assert [(r.name, r.site, r.label, r.channels) for r in cap.records] == [
        (s.name, s.site, s.label, s.channels) for s in slots]
    assert all_hooks(model) == 0


def test_record_labels_say_where_the_site_is() -> None:
    model = tiny("stem+block_input+layer_input+layer+block_output+transition_input+pre_norm+post_norm")
    cap = capture_excitations(model, torch.randn(1, 3, 32, 32))
    labels = [r.label for r in cap.records]
    assert labels[:6] == ["after the stem", "block 1 input", "layer 1.1 input", "layer 1.1 new features",
                          "layer 1.2 input", "layer 1.2 new features"]
    assert "block 1 output" in labels and "transition 1 input" in labels and "block 2 input" in labels
    assert labels[-2:] == ["before the final norm", "after the final norm"]
    assert cap.records[2].as_dict()["label"] == "layer 1.1 input"
    # ragged channel counts: layer inputs grow by the growth rate, block/transition sites are wider
    widths = [r.channels for r in cap.records]
    assert widths[2] == 16 and widths[4] == 24 and widths[3] == 8 and len(set(widths)) > 3
    short = layer_labels([r.name for r in cap.records])
    assert len(set(short)) == len(short)  # every site distinguishable on an axis
    assert short[:3] == ["stem", "b1 in", "b1.l1 in"]


def test_heatmap_of_ragged_sites_pads_with_blanks() -> None:
    model = tiny("stem+layer_input+transition_input")
    cap = capture_excitations(model, torch.randn(1, 3, 32, 32))
    rows = [r.excitation[0].tolist() for r in cap.records]
    fig = excitation_heatmap([r.name for r in cap.records], rows)
    z = fig.data[0].z
    width = max(len(r) for r in rows)
    assert z.shape == (len(rows), width)
    for i, row in enumerate(rows):
        assert z[i, : len(row)].tolist() == pytest.approx(row)
        assert all(v != v for v in z[i, len(row):])  # NaN beyond this layer's channels


@pytest.mark.parametrize("sites", ["stem+transition_input+post_norm", "layer_input+block_input"])
def test_switching_every_se_off_equals_the_model_without_se(sites: str) -> None:
    model = tiny(sites)
    plain = copy.deepcopy(model)
    for name, m in list(plain.named_modules()):
        if isinstance(m, SELayer):
            parent, _, child = name.rpartition(".")
            setattr(plain.get_submodule(parent), child, nn.Identity())
    x = torch.randn(2, 3, 32, 32)
    result = run_intervention(model, x, Intervention(off="all"))
    with torch.no_grad():
        torch.testing.assert_close(result.after.logits, plain(x))
    assert all(bool((r.excitation == 1).all()) for r in result.after.records)
    assert not torch.equal(result.before.logits, result.after.logits)


@pytest.mark.parametrize("variant", SE_VARIANTS)
def test_se_module_variants_compute_the_same_gate_and_keep_their_key_names(variant: str) -> None:
    se = SELayer(12, 4, bias=True, variant=variant)
    for p in se.parameters():
        p.data.normal_()
    keys = set(se.state_dict())
    names = {"fc": ("fc.0", "fc.2"), "fc1fc2": ("fc1", "fc2"), "reduce_expand": ("conv_reduce", "conv_expand")}
    reduce, expand = names[variant.removesuffix("-conv")]
    assert keys == {f"{reduce}.weight", f"{reduce}.bias", f"{expand}.weight", f"{expand}.bias"}
    w1, b1 = se.reduce.weight.reshape(4, 12), se.reduce.bias
    w2, b2 = se.expand.weight.reshape(12, 4), se.expand.bias
    x = torch.randn(2, 12, 5, 3)
    gate = torch.sigmoid(torch.relu(x.mean((2, 3)) @ w1.T + b1) @ w2.T + b2)
    torch.testing.assert_close(se(x), x * gate[:, :, None, None])


@pytest.mark.parametrize("variant", SE_VARIANTS)
def test_state_dicts_with_every_module_variant_load_exactly(variant: str) -> None:
    model = _randomise(tiny("block_input+layer", se_variant=variant, se_bias=True, num_classes=3))
    loaded = load_checkpoint(_bytes(model.state_dict()), device="cpu")
    assert (loaded.config.sites, loaded.config.se_variant) == (("block_input", "layer"), variant)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x))


@settings(max_examples=10, deadline=None)
@given(sites=st.sets(st.sampled_from(SE_SITES), min_size=1, max_size=4), data=st.data())
def test_key_inference_recovers_per_site_specs(sites: set[str], data: st.DataObject) -> None:
    """A raw state_dict of any site set, each site with its own width/bias/variant/blocks, infers the config back."""
    per_site = {}
    for site in sorted(sites):
        opts = {"bias": data.draw(st.booleans()), "variant": data.draw(st.sampled_from(SE_VARIANTS))}
        opts.update(data.draw(st.sampled_from([{"reduction": 2}, {"reduction": 4}, {"hidden": 3}])))
        if site in ("block_input", "layer_input", "layer"):
            opts["blocks"] = data.draw(st.sampled_from([[1, 3], [2], None]))
        per_site[site] = {k: v for k, v in opts.items() if v is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tiny(sites, se_sites=per_site)
    state, _ = normalise_keys(dict(model.state_dict()))
    inferred, _ = infer_config(state)
    assert inferred.sites == model.config.sites
    for site in sites:
        want, got = model.config.site_spec(site), inferred.site_spec(site)
        assert (got.bias, got.variant, got.blocks) == (want.bias, want.variant, want.blocks)
        assert [got.hidden_for(s.channels) for s in se_slots(inferred) if s.site == site] == [
            want.hidden_for(s.channels) for s in se_slots(model.config) if s.site == site]


def test_config_with_per_site_options_round_trips_and_validates() -> None:
    cfg = tiny("stem+layer", se_sites={"stem": {"hidden": 5, "bias": True}}).config
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["se_sites"] == {"stem": {"bias": True, "hidden": 5}}
    assert cfg.site_spec("stem").hidden == 5 and cfg.site_spec("layer").hidden is None
    assert build_model("demo", se={"pre_norm"}).config.se == "final"  # a set equal to a preset is the preset
    assert build_model("demo", se=["block_output", "pre_norm"]).config.se == "block"
    with pytest.raises(ValueError, match="placement"):
        build_model("demo", se="stem+everywhere")
    with pytest.raises(ValueError, match="blocks 1…2"):
        build_model("demo", se="block_output", se_sites={"block_output": {"blocks": [3]}})
    with pytest.raises(ValueError, match="unknown options"):
        build_model("demo", se="stem", se_sites={"stem": {"width": 3}})


def test_old_config_with_memory_efficient_still_loads_and_checkpointing_is_a_switch() -> None:
    model = tiny("layer")
    old = {**model.config.to_dict(), "memory_efficient": True}
    old.pop("se_variant")
    old.pop("se_sites")
    assert ModelConfig.from_dict(old) == model.config
    assert not model.grad_checkpointing
    assert model.set_grad_checkpointing(True).grad_checkpointing
    assert build_model("demo", se="layer", reduction=4, memory_efficient=True).grad_checkpointing
    assert "memory_efficient" not in model.config.to_dict()


def test_summary_marks_the_stages_that_carry_each_site() -> None:
    stages_, marks = model_stages(tiny("block").config)
    assert [n for n, _, _ in stages_] == ["stem", "block 1<br>2 layers", "transition 1", "block 2<br>2 layers",
                                          "transition 2", "block 3<br>2 layers", "norm + pool", "classifier"]
    assert list(marks) == ["block 1<br>2 layers", "block 2<br>2 layers", "block 3<br>2 layers"]
    _, marks = model_stages(tiny("stem+layer_input+transition_input+post_norm").config)
    assert marks == {"stem": "after the stem", "block 1<br>2 layers": "on each dense layer's input",
                     "transition 1": "at the transition input", "block 2<br>2 layers": "on each dense layer's input",
                     "transition 2": "at the transition input", "block 3<br>2 layers": "on each dense layer's input",
                     "norm + pool": "after the final norm"}
    rows = se_site_table(tiny("layer_input", se_sites={"layer_input": {"blocks": [2]}}).config)
    # block 2 starts at 16 + 2*8 = 32 → 16 channels after transition 1; its layers see 16 and 24
    assert rows == [{"site": "layer_input", "where": "on each dense layer's input", "SE modules": 2,
                     "channels": "16…24", "hidden": "8…12", "width rule": "C // 2", "bias": False, "variant": "fc",
                     "blocks": "2"}]


def test_cli_se_option_takes_site_sets_and_refuses_unknown_ones(capsys: pytest.CaptureFixture[str]) -> None:
    from sedensenet.cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args(["train", "--se", "layer_input+stem"]).se == "stem+layer_input"
    assert parser.parse_args(["train", "--se", "pre_norm"]).se == "final"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--se", "everywhere"])
    assert "not an SE placement" in capsys.readouterr().err


def test_placement_sentence_names_every_site_of_a_combination() -> None:
    text = se_placement_text(tiny("stem+transition_input").config)
    assert "after the stem; at the transition input" in text and "÷ 2" in text
    varied = se_placement_text(tiny("stem+layer", se_sites={"stem": {"hidden": 3}}).config)
    assert "differ by site" in varied

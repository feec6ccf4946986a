"""Attribution maps via Captum, with overlays on the original image.

Every method lives in one registry, :data:`METHODS` (name → :class:`Method`): its label and description for the
app and the CLI, its Captum class, default arguments, whether it needs a layer, whether SmoothGrad applies (read
from Captum's class hierarchy) and whether its map is upsampled. Adding a method is one entry there.

Captum methods temporarily hook or annotate modules (Guided Backprop and DeepLift hook every ReLU), so each
call runs on a private copy of the model: the shared (cached) model is never touched, and its lock is held only
while a copy is taken. Copies share the model's weight storage and are pooled per model (deep-copying a few
hundred modules costs more than a Grad-CAM of the weather model).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from captum.attr import Attribution as CaptumAttribution
from captum.attr import (
    DeepLift,
    GradientAttribution,
    GradientShap,
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from PIL import Image
from plotly.colors import sample_colorscale
from torch import Tensor, nn

from sedensenet.analysis.capture import LOCK_ATTR, model_lock
from sedensenet.errors import SedensenetError

SIGN_MODES = ("positive", "absolute", "signed")


class AttributionError(SedensenetError, ValueError):
    """A method, layer, target or option the attribution cannot use."""


@dataclass
class Attribution:
    """One image's attribution: the H×W map, the raw C×H×W map where the method has one, and its target."""

    method: str
    target: int
    map: np.ndarray
    raw: np.ndarray | None
    all_zero: bool


POOL_ATTR = "_sedensenet_replicas"
MAX_POOLED = 4  # idle weight-sharing copies kept per model (one per concurrent attribution is enough)


def _copy_memo(model: nn.Module) -> dict[int, Any]:
    """deepcopy memo that leaves out the lock and the replica pool (they belong to the original)."""
    return {id(v): None for m in model.modules() for k in (LOCK_ATTR, POOL_ATTR) if (v := m.__dict__.get(k))
            is not None}


def _strip(twin: nn.Module) -> nn.Module:
    """Remove every hook (other threads' capture hooks, a Captum run's leftovers) and the original's lock/pool."""
    for m in twin.modules():
        for hooks in (m._forward_hooks, m._forward_pre_hooks, m._backward_hooks, m._backward_pre_hooks):
            hooks.clear()
        m.__dict__.pop(LOCK_ATTR, None)
        m.__dict__.pop(POOL_ATTR, None)
    return twin


def private_replica(model: nn.Module) -> nn.Module:
    """A private eval-mode copy of ``model`` with its own weights and no hooks (safe to modify, e.g. to
    randomise for the sanity check). The caller holds :func:`model_lock`."""
    twin = _strip(copy.deepcopy(model, _copy_memo(model)).eval())
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


def _shared_replica(model: nn.Module) -> nn.Module:
    """A hook-free eval-mode copy whose parameters and buffers share the model's storage: the modules are new,
    the weights are not copied. Must not be modified; only hooks and forward passes touch it."""
    memo = _copy_memo(model)
    memo.update({id(p): nn.Parameter(p.detach(), requires_grad=False) for p in model.parameters()})
    memo.update({id(b): b for b in model.buffers()})
    return _strip(copy.deepcopy(model, memo).eval())


def _same_storage(twin: nn.Module, model: nn.Module) -> bool:
    """Whether a pooled copy still shares the model's weights (not after ``model.to(...)`` or a weight reload)."""
    return all(a.data_ptr() == b.data_ptr() for a, b in zip(twin.parameters(), model.parameters(), strict=True))


@contextmanager
def borrowed_replica(model: nn.Module) -> Iterator[nn.Module]:
    """A weight-sharing private copy of ``model`` for one attribution run: taken from the model's pool (or made),
    stripped of hooks and returned to the pool afterwards. Concurrent callers never get the same copy."""
    with model_lock(model):
        pool: list[nn.Module] = model.__dict__.setdefault(POOL_ATTR, [])
        twin = pool.pop() if pool else None
        if twin is None or not _same_storage(twin, model):
            twin = _shared_replica(model)
    try:
        yield twin
    finally:
        _strip(twin).eval()
        with model_lock(model):
            pool = model.__dict__.setdefault(POOL_ATTR, [])
            if len(pool) < MAX_POOLED:
                pool.append(twin)


def default_gradcam_layer(model: nn.Module) -> str:
    """The last feature map before the classifier (``features.norm5`` for our models)."""
    names = [n for n, _ in model.named_modules()]
    if "features.norm5" in names:
        return "features.norm5"
    convs = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    if not convs:
        raise AttributionError("model has no convolutional layer for Grad-CAM")
    return convs[-1]


def gradcam_layers(model: nn.Module) -> list[str]:
    """Sensible Grad-CAM layers: each dense block, transition and SE-after-block output, and the final norm."""
    keep = ("denseblock", "transition", "norm5", "conv0")
    return [n for n, _ in model.named_modules() if (n.count(".") == 1 and any(k in n for k in keep))
            or (n.count(".") == 1 and n.split(".")[-1].startswith("se"))]


def black_baseline(x: Tensor, mean: Any, std: Any) -> Tensor:
    """A black image in normalised input units."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return ((0 - m) / s).expand_as(x).contiguous()


@dataclass(frozen=True)
class MethodInputs:
    """What default arguments may depend on: the input batch, its black baseline and the effort settings."""

    x: Tensor
    baseline: Tensor
    steps: int
    samples: int


def _no_kwargs(_inputs: MethodInputs) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Method:
    """One attribution method: how it is shown, built and called."""

    name: str
    label: str
    description: str
    algorithm: type[CaptumAttribution]
    defaults: Callable[[MethodInputs], dict[str, Any]] = _no_kwargs
    needs_layer: bool = False
    upsample: bool = False

    @property
    def smoothgrad(self) -> bool:
        """SmoothGrad (NoiseTunnel) averages input gradients: any Captum gradient method on the input."""
        return issubclass(self.algorithm, GradientAttribution) and not issubclass(self.algorithm, LayerAttribution)

    def build(self, model: nn.Module, layer: nn.Module | None) -> CaptumAttribution:
        """The Captum object for ``model`` (and ``layer`` where the method needs one)."""
        return self.algorithm(model, layer) if self.needs_layer else self.algorithm(model)  # type: ignore[call-arg]


IG_PIXELS_PER_PASS = 32 * 128 * 128  # IG steps per forward/backward: all 32 at 128² (one pass is ~1.7× faster
#                                     than two on CPU), fewer at larger inputs so memory stays bounded


def _ig(i: MethodInputs) -> dict[str, Any]:
    per_pass = max(1, IG_PIXELS_PER_PASS // (i.x.shape[-1] * i.x.shape[-2]))
    return {"baselines": i.baseline, "n_steps": i.steps, "internal_batch_size": min(i.steps * i.x.shape[0], per_pass)}


def _deeplift(i: MethodInputs) -> dict[str, Any]:
    return {"baselines": i.baseline}


def _gradient_shap(i: MethodInputs) -> dict[str, Any]:
    b = i.baseline[:1]
    return {"baselines": torch.cat([b, b + 0.3 * torch.randn_like(b), torch.zeros_like(b)]),
            "n_samples": i.samples, "stdevs": 0.1}


def _occlusion(i: MethodInputs) -> dict[str, Any]:
    channels, window = i.x.shape[1], max(2, i.x.shape[-1] // 8)
    stride = max(1, window // 2)
    return {"sliding_window_shapes": (channels, window, window), "strides": (channels, stride, stride),
            "baselines": 0.0, "perturbations_per_eval": 64}


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("integrated_gradients", "Integrated Gradients", "path integral of gradients from a black image",
           IntegratedGradients, _ig),
    Method("saliency", "Saliency", "|gradient| of the class score w.r.t. each pixel", Saliency,
           lambda _i: {"abs": False}),
    Method("input_x_gradient", "Input × Gradient", "gradient times pixel value", InputXGradient),
    Method("deeplift", "DeepLIFT", "contributions relative to a black reference", DeepLift, _deeplift),
    Method("gradient_shap", "GradientSHAP", "expected gradients over noisy black references", GradientShap,
           _gradient_shap),
    Method("guided_backprop", "Guided Backprop", "positive gradients through positive activations",
           GuidedBackprop),
    Method("occlusion", "Occlusion", "score drop when a patch is greyed out", Occlusion, _occlusion),
    Method("gradcam", "Grad-CAM", "channel-weighted feature map of a layer, upsampled", LayerGradCam,
           lambda _i: {"relu_attributions": True}, needs_layer=True, upsample=True),
    Method("guided_gradcam", "Guided Grad-CAM", "Guided Backprop × Grad-CAM", GuidedGradCam,
           lambda _i: {"interpolate_mode": "bilinear"}, needs_layer=True),
)}


def method_spec(name: str) -> Method:
    """The registry entry for ``name``, or an error listing the choices."""
    if name not in METHODS:
        raise AttributionError(f"unknown attribution method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def attribute(model: nn.Module, x: Tensor, method: str, targets: int | list[int], *, mean: Any = (0.485, 0.456, 0.406),
              std: Any = (0.229, 0.224, 0.225), layer: str | None = None, smoothgrad: int = 0,
              smoothgrad_std: float = 0.15, steps: int = 32, samples: int = 16) -> list[Attribution]:
    """Attribution maps for a batch ``x`` (B×C×H×W, normalised) towards ``targets`` (one per image or one for all).

    ``smoothgrad=N`` averages a gradient method over N noisy copies (Captum NoiseTunnel; std in normalised
    units). Grad-CAM maps are upsampled bilinearly to the input size.
    """
    spec = method_spec(method)
    if smoothgrad and not spec.smoothgrad:
        capable = ", ".join(m.name for m in METHODS.values() if m.smoothgrad)
        raise AttributionError(f"SmoothGrad applies to gradient methods on the input ({capable}), not {method}")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    target_list = [targets] * x.shape[0] if isinstance(targets, int) else list(targets)
    if len(target_list) != x.shape[0]:
        raise AttributionError(f"{len(target_list)} targets for a batch of {x.shape[0]} images")
    with borrowed_replica(model) as twin:  # the run touches nothing shared
        attr = _run(spec, twin, x, target_list, mean, std, layer, smoothgrad, smoothgrad_std, steps, samples)
    attr = attr.detach().float()
    raw = None
    if spec.upsample:
        attr = LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), interpolate_mode="bilinear")
        maps = attr[:, 0]
    else:
        raw = attr.cpu().numpy()
        maps = attr.sum(1)
    maps_np = maps.cpu().numpy()
    return [Attribution(method, t, maps_np[i], None if raw is None else raw[i], not np.any(maps_np[i]))
            for i, t in enumerate(target_list)]


def _run(spec: Method, twin: nn.Module, x: Tensor, target_list: list[int], mean: Any, std: Any, layer: str | None,
         smoothgrad: int, smoothgrad_std: float, steps: int, samples: int) -> Tensor:
    """One Captum run of ``spec`` on the private copy ``twin``; the raw attribution tensor."""
    device = next(twin.parameters()).device
    inp = x.detach().to(device).requires_grad_(True)
    target_layer = None
    if spec.needs_layer:
        layer_name = layer or default_gradcam_layer(twin)
        modules = dict(twin.named_modules())
        if layer_name not in modules:
            raise AttributionError(f"layer {layer_name!r} not in the model; choose one of "
                                   f"{', '.join(gradcam_layers(twin))}")
        target_layer = modules[layer_name]
    algo = spec.build(twin, target_layer)
    kwargs = spec.defaults(MethodInputs(inp, black_baseline(inp, mean, std), steps, samples))
    target = torch.tensor(target_list, device=device)
    # always fp32, even inside a caller's autocast: gradients of low-precision forwards are too coarse
    with torch.enable_grad(), torch.autocast(device.type if device.type == "cuda" else "cpu", enabled=False):
        if smoothgrad:
            nt = NoiseTunnel(algo)
            attr = nt.attribute(inp, nt_type="smoothgrad", nt_samples=smoothgrad, stdevs=smoothgrad_std,
                                nt_samples_batch_size=max(1, 8 // x.shape[0]), target=target, **kwargs)
        else:
            attr = algo.attribute(inp, target=target, **kwargs)
    return attr


def signed_map(values: np.ndarray, sign: str) -> np.ndarray:
    """Apply a sign mode: ``positive`` keeps > 0, ``absolute`` takes |·|, ``signed`` keeps both."""
    if sign == "positive":
        return np.clip(values, 0, None)
    if sign == "absolute":
        return np.abs(values)
    if sign == "signed":
        return values
    raise AttributionError(f"sign must be one of {', '.join(SIGN_MODES)}, got {sign!r}")


def map_scale(values: np.ndarray, percentile: float = 99.5) -> float:
    """Robust colour-scale maximum (a high percentile of |map|); 0.0 for an all-zero map."""
    mags = np.abs(values[np.isfinite(values)])
    if mags.size == 0:
        return 0.0
    return float(np.percentile(mags, percentile)) or float(mags.max())


def shared_scale(maps: list[np.ndarray], sign: str = "positive") -> float:
    """One colour scale for several maps (e.g. SE and baseline) so their intensities compare."""
    return max((map_scale(signed_map(m, sign)) for m in maps), default=0.0)


def normalise(values: np.ndarray, sign: str = "positive", scale: float | None = None) -> np.ndarray:
    """Map to [0, 1] (or [-1, 1] when signed) by ``scale`` (default: this map's own); zero maps stay zero."""
    v = signed_map(np.nan_to_num(values.astype(np.float32)), sign)
    s = map_scale(v) if scale is None else scale
    if s <= 0:
        return np.zeros_like(v)
    lo = -1.0 if sign == "signed" else 0.0
    return np.clip(v / s, lo, 1.0)


def _lut(colorscale: str | list[Any]) -> np.ndarray:
    colours = sample_colorscale(colorscale, list(np.linspace(0, 1, 256)), colortype="tuple")
    return (np.array(colours) * (255 if max(max(c) for c in colours) <= 1 else 1)).clip(0, 255).astype(np.uint8)


def overlay(image: Image.Image, values: np.ndarray, *, sign: str = "positive", opacity: float = 0.6,
            scale: float | None = None) -> np.ndarray:
    """RGBA (H×W×4 uint8) of ``image`` with the attribution heat-map blended on top.

    The map is resized to the image; its strength sets the blend, so weak attribution shows the photo.
    """
    norm = normalise(values, sign, scale)
    h, w = image.height, image.width
    if norm.shape != (h, w):
        norm = np.asarray(Image.fromarray(norm.astype(np.float32), mode="F").resize((w, h), Image.Resampling.BILINEAR))
    if sign == "signed":
        lut, idx = _lut("RdBu_r"), ((norm + 1) / 2 * 255).round().astype(int)
        strength = np.abs(norm)
    else:
        lut, idx = _lut("Inferno"), (norm * 255).round().astype(int)
        strength = norm
    heat = lut[np.clip(idx, 0, 255)].astype(np.float32)
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    alpha = (opacity * np.clip(strength, 0, 1) ** 0.5)[..., None]
    rgb = base * (1 - alpha) + heat * alpha
    out = np.empty((h, w, 4), dtype=np.uint8)
    out[..., :3] = rgb.clip(0, 255).astype(np.uint8)
    out[..., 3] = 255
    return out

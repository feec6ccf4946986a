"""Model summaries: FLOPs against torchvision's published figure, stage arithmetic against a real forward,
and the typed ``info`` summary."""

from __future__ import annotations

import json

import pytest
import torch
from torchvision.models import DenseNet121_Weights

from sedensenet import build_model, save_checkpoint
from sedensenet.models.checkpoint import load_checkpoint
from sedensenet.models.summary import ModelSummary, count_flops, model_stages, summarise


def test_count_flops_matches_torchvision_published_gmacs_for_densenet121() -> None:
    # torchvision publishes 2.834 G multiply-adds ("_ops") for DenseNet-121 at 224²; we count a multiply-add as
    # 2 FLOPs. Tolerance: half a unit of the published figure's last digit (0.0005 GMACs, 0.02 %).
    published = DenseNet121_Weights.IMAGENET1K_V1.meta["_ops"]
    assert published == pytest.approx(2.834)
    gmacs = count_flops(build_model("densenet121", se="none").eval(), 224) / 2e9
    assert gmacs == pytest.approx(published, abs=0.0005)


def test_count_flops_scales_with_input_area_and_se_adds_little() -> None:
    model = build_model("densenet_bc", depth=40, growth=12, se="none").eval()
    small, big = count_flops(model, 32), count_flops(model, 64)
    assert big / small == pytest.approx(4.0, rel=0.02)  # convolutions dominate: 4× the pixels, 4× the work
    se = count_flops(build_model("densenet_bc", depth=40, growth=12, se="layer", reduction=4).eval(), 32)
    assert small < se < 1.01 * small


def _stage_widths_by_forward(model: torch.nn.Module, size: int) -> list[int]:
    """Channels after the stem, each block and each transition, from a real forward (independent of the maths)."""
    widths: list[int] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: widths.append(out.shape[1]))
             for name, m in model.features.named_children() if name.startswith(("denseblock", "transition"))]
    stem_out: list[int] = []
    first_block = next(m for n, m in model.features.named_children() if n.startswith("denseblock"))
    hooks.append(first_block.register_forward_pre_hook(lambda _m, args: stem_out.append(args[0].shape[1])))
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return stem_out + widths


@pytest.mark.parametrize("arch,options,size", [("densenet121", {}, 64),
                                               ("densenet_bc", {"depth": 40, "growth": 12}, 32), ("demo", {}, 64)])
def test_model_stages_channels_match_a_forward(arch: str, options: dict, size: int) -> None:
    model = build_model(arch, se="none", **options).eval()
    stages, marks = model_stages(model.config)
    assert marks == {}
    kinds = [k for _, k, _ in stages]
    assert kinds[0] == "stem" and kinds[-2:] == ["norm", "head"]
    widths = [c for _, k, c in stages if k in ("stem", "block", "transition")]
    assert widths == _stage_widths_by_forward(model, size)
    assert stages[-1][2] == model.config.num_classes


def test_model_stages_densenet121_by_hand() -> None:
    stages, _ = model_stages(build_model("densenet121", se="none").config)
    # 64 → +6·32 = 256 → /2 = 128 → +12·32 = 512 → 256 → +24·32 = 1024 → 512 → +16·32 = 1024
    assert [c for _, _, c in stages] == [64, 256, 128, 512, 256, 1024, 512, 1024, 1024, 1000]


@pytest.mark.parametrize("se,expected", [("layer", [1, 2, 3]), ("block", [1, 2, 3]), ("final", [3]), ("none", [])])
def test_model_stages_mark_se_where_it_sits(se: str, expected: list[int]) -> None:
    cfg = build_model("demo", se=se, block_config=(2, 2, 2), reduction=4).config
    stages, marks = model_stages(cfg)
    blocks = [name for name, kind, _ in stages if kind == "block"]
    assert list(marks) == [blocks[i - 1] for i in expected]


def test_typed_summary_is_json_ready_and_matches_the_model(tmp_path) -> None:
    model = build_model("densenet_bc", depth=16, growth=12, se="final", reduction=4, num_classes=3)
    path = save_checkpoint(tmp_path / "m.pt", model, {"classes": ["a", "b", "c"], "input_size": 32})
    info = summarise(load_checkpoint(path, device="cpu"))
    assert isinstance(info, ModelSummary)
    doc = json.loads(json.dumps(info.as_dict()))
    assert doc["se"] == "final" and doc["se_layers"] == 1 and doc["classes"] == ["a", "b", "c"]
    assert doc["parameters"] == sum(p.numel() for p in model.parameters())
    se_params = sum(p.numel() for n, p in model.named_parameters() if ".se" in f".{n}")
    assert doc["se_parameters"] == se_params > 0
    assert info.se_share == pytest.approx(se_params / (doc["parameters"] - se_params))
    assert set(doc) == {f for f in ModelSummary.__dataclass_fields__}

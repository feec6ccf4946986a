"""The library pieces the app pages lay out: the SE walkthrough numbers, the records table, the out-of-world
note, labelled zips and batches, presenter figures and the overlay colour bar."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
import torch
from helpers import MEAN, STD, demo_batch, tiny
from PIL import Image

from sedensenet import figures
from sedensenet.analysis.capture import capture_excitations
from sedensenet.analysis.pipeline import LOW_CONFIDENCE, outside_note, records_csv, records_table
from sedensenet.analysis.walkthrough import se_step
from sedensenet.data.demo import make_sample
from sedensenet.data.images import (
    ImageError,
    ZipBatches,
    demo_labelled,
    labelled_batches,
    labelled_zip,
    preprocess,
)
from sedensenet.models.metadata import CheckpointMeta


def test_se_step_numbers_follow_the_se_definition() -> None:
    model = tiny()
    x, _ = demo_batch(2)
    cap = capture_excitations(model, x)
    rec = cap.records[1]
    step = se_step(model, x, rec, 3)
    assert step.squeeze == pytest.approx(float(step.before.mean()), rel=1e-5)  # squeeze = spatial mean of U
    se = dict(model.named_modules())[rec.name]
    with torch.no_grad():
        hidden = torch.relu(se.fc[0](rec.squeeze[:1]))[0]
        gates = torch.sigmoid(se.fc[2](hidden))
    assert step.hidden == pytest.approx(hidden.tolist(), abs=1e-6)
    assert step.gate == pytest.approx(float(gates[3]), abs=1e-6)
    np.testing.assert_allclose(step.after, step.before * step.gate, rtol=1e-6)
    with pytest.raises(ValueError, match="outside"):
        se_step(model, x, rec, rec.channels)


def test_records_table_and_csv_hold_every_channel() -> None:
    model = tiny()
    cap = capture_excitations(model, demo_batch(2)[0])
    rows = records_table(cap, image=1)
    assert len(rows) == sum(r.channels for r in cap.records)
    r = cap.records[-1]
    last = rows[-1]
    assert (last["layer"], last["channel"]) == (r.name, r.channels - 1)
    assert last["excitation"] == pytest.approx(float(r.excitation[1, -1]))
    parsed = list(csv.DictReader(io.StringIO(records_csv(cap, image=1))))
    assert len(parsed) == len(rows) and float(parsed[0]["squeeze"]) == pytest.approx(rows[0]["squeeze"])


def test_outside_note_only_below_the_threshold() -> None:
    classes = ["a", "b", "c", "d"]
    assert outside_note(LOW_CONFIDENCE, classes) is None
    note = outside_note(0.31, classes)
    assert note is not None and "one of its 4 classes" in note and "31%" in note


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _png(index: int) -> bytes:
    buf = io.BytesIO()
    make_sample(0, index, 32).pil.save(buf, "PNG")
    return buf.getvalue()


def test_labelled_zip_maps_folders_to_class_indices() -> None:
    images, labels = labelled_zip(_zip({"data/star/1.png": _png(3), "data/circle/2.png": _png(0)}),
                                  ["circle", "square", "star"])
    assert sorted(labels) == [0, 2] and all(im.mode == "RGB" for im in images)
    with pytest.raises(ImageError, match="not classes of this model"):
        labelled_zip(_zip({"dogs/1.png": _png(1)}), ["circle", "star"])


def test_labelled_batches_and_demo_labelled() -> None:
    images, labels = demo_labelled(3, seed=1)
    assert len(images) == 3 * 8 and sorted(set(labels)) == list(range(8))
    meta = CheckpointMeta(classes=[], input_size=32, mean=tuple(MEAN), std=tuple(STD))
    batches = labelled_batches(images, labels, meta, size=10)
    assert [len(y) for _, y in batches] == [10, 10, 4]
    torch.testing.assert_close(batches[1][0], preprocess(images[10:20], meta))
    assert batches[2][1].tolist() == labels[20:]


def test_presenter_style_and_overlay_colour_bar() -> None:
    fig = figures.prediction_bars([{"class": "a", "prob": 0.7}, {"class": "b", "prob": 0.3}])
    big = figures.presenter_style(fig)
    assert big.layout.font.size == figures.PRESENTER_FONT and big.layout.height > fig.layout.height
    assert fig.layout.font.size is None  # the cached original is untouched
    rgba = np.zeros((20, 30, 4), dtype=np.uint8)
    over = figures.overlay_figure(rgba, sign="signed", scale=0.8, title="t")
    heat = next(t for t in over.data if t.type == "heatmap")
    assert (heat.zmin, heat.zmax) == (-0.8, 0.8) and heat.showscale
    assert over.data[0].source.startswith("data:image/png;base64,")


def _big_png(colour: tuple[int, int, int], size: tuple[int, int] = (900, 600)) -> bytes:
    img = Image.new("RGB", size, colour)
    img.paste((255 - colour[0], colour[1], 40), (100, 100, 500, 400))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_zip_batches_stream_downscaled_images_in_order() -> None:
    """The Class statistics upload: batches equal the one-shot path (decode everything, then batch), every image
    is downscaled on decode to what the input needs, and decoding happens only while iterating."""
    meta = CheckpointMeta(classes=["circle", "star"], input_size=32, mean=tuple(MEAN), std=tuple(STD))
    files = {f"set/{'star' if i % 3 else 'circle'}/{i}.png": _big_png((20 * i, 90, 200 - 10 * i)) for i in range(7)}
    data = _zip(files)
    batches = ZipBatches(data, meta.classes, meta, size=3)
    assert len(batches) == 3
    images, labels = labelled_zip(data, meta.classes, min_side=32)
    assert all(32 <= min(im.size) < 64 for im in images)  # 900×600 decoded at a fraction of its pixels
    want = labelled_batches(images, labels, meta, size=3)
    got = list(batches)
    assert [y.tolist() for _, y in got] == [y.tolist() for _, y in want]
    for (x, _), (w, _) in zip(got, want, strict=True):
        torch.testing.assert_close(x, w)
    full, _ = labelled_zip(data, meta.classes)  # no downscale: what the model sees barely changes
    assert (preprocess(full, meta) - torch.cat([x for x, _ in got])).abs().mean() < 0.05
    broken = _zip({**files, "set/star/z-broken.png": b"not an image at all"})
    lazy = ZipBatches(broken, meta.classes, meta, size=3)  # listed and checked, nothing decoded yet
    stream = iter(lazy)
    assert len(next(stream)[1]) == 3
    with pytest.raises(ImageError, match="star/z-broken.png"):
        list(stream)

"""Class statistics for the app: computed in memory (demo shapes, an uploaded zip) or read (stats file, a
checkpoint's stored statistics), and the views the Class statistics page draws from any of them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import plotly.graph_objects as go

from sedensenet import figures
from sedensenet.analysis.capture import find_se_modules
from sedensenet.analysis.statistics import ExcitationStats, excitation_stats
from sedensenet.analysis.stats_file import StatsFileError, matches_model, stats_from_meta
from sedensenet.data.images import demo_labelled, labelled_batches
from sedensenet.models.checkpoint import LoadedModel


def demo_statistics(loaded: LoadedModel, per_class: int, seed: int) -> ExcitationStats:
    """Statistics over ``per_class`` generated demo shapes of every class (what the page computes in memory)."""
    images, labels = demo_labelled(per_class, seed)
    stats = excitation_stats(loaded.model, labelled_batches(images, labels, loaded.meta), loaded.classes,
                             progress=False)
    stats.description = f"demo shapes ({len(images)} generated images, seed {seed})"
    return stats


def stored_statistics(loaded: LoadedModel) -> tuple[ExcitationStats | None, str | None]:
    """The statistics a checkpoint carries under ``class_statistics`` (``None`` if none), and why stored ones
    cannot be shown (``None`` if they can): a bad stored block must not make the page unusable."""
    try:
        return stats_from_meta(loaded.meta), None
    except StatsFileError as exc:
        return None, str(exc)


def mismatch(stats: ExcitationStats, loaded: LoadedModel) -> list[str]:
    """Why ``stats`` may not belong to the loaded model (empty when classes and SE layers agree)."""
    return matches_model(stats, loaded.classes, [m.name for m in find_se_modules(loaded.model)])


def default_layers(n: int) -> list[int]:
    """Four layers spread over the depth (first, a third, two thirds, last)."""
    return sorted({0, n // 3, (2 * n) // 3, n - 1}) if n else []


@dataclass
class StatsView:
    """What the page shows for one :class:`ExcitationStats`: the specificity curve and per-layer class curves."""

    specificity: go.Figure
    layers: list[tuple[int, go.Figure]]


def stats_view(stats: ExcitationStats, chosen: Iterable[int]) -> StatsView:
    """Figures for ``stats``: specificity by depth and, for each chosen layer, the per-class mean excitation
    (classes without images left out)."""
    names = [layer.name for layer in stats.layers]
    spec = figures.specificity_by_depth(names, [layer.specificity for layer in stats.layers])
    keep = [i for i, n in enumerate(stats.counts) if n > 0]
    out = []
    for i in chosen:
        layer = stats.layers[i]
        title = f"{figures.layer_labels([layer.name])[0]} (specificity {layer.specificity:.3f})"
        out.append((i, figures.class_excitation([stats.classes[k] for k in keep], layer.mean[keep], title)))
    return StatsView(spec, out)

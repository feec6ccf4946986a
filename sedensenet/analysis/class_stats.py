"""Class statistics for the app: a checkpoint's stored statistics, whether statistics fit the loaded model, and
the in-memory demo computation (the reference a stats file must reproduce)."""

from __future__ import annotations

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

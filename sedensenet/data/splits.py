"""Fixed splits: a CSV (``path``, ``split``, optional ``class``) next to an image folder.

A split file makes numbers reproducible (everyone trains on the same ``train`` rows, selects on ``val`` and
reports ``test`` once) and keeps grouped near-duplicates on one side of the split, which a random split cannot.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from sedensenet.errors import SedensenetError

SPLITS = ("train", "val", "test")
MAX_SPLIT_FILE_BYTES = 64 * 2**20


class SplitFileError(SedensenetError, ValueError):
    """A split file cannot be used; the message names the file, the row and what to fix."""


@dataclass(frozen=True)
class SplitRow:
    """One image of a split file: its resolved path, class name and split."""

    path: Path
    cls: str
    split: str
    group: str = ""


def read_split_file(csv_path: str | os.PathLike[str], root: str | os.PathLike[str]) -> list[SplitRow]:
    """Rows of ``csv_path`` with paths resolved under ``root``.

    The class is the ``class`` column where present, else the image's parent folder name. Refuses unknown split
    names, missing files, duplicate paths and paths that leave ``root`` (``..``, absolute paths).
    """
    csv_path, root = Path(csv_path), Path(root)
    if not csv_path.is_file():
        raise SplitFileError(f"split file {csv_path} not found")
    if csv_path.stat().st_size > MAX_SPLIT_FILE_BYTES:
        raise SplitFileError(f"split file {csv_path} is larger than {MAX_SPLIT_FILE_BYTES >> 20} MiB")
    if not root.is_dir():
        raise SplitFileError(f"image folder {root} (for split file {csv_path.name}) does not exist")
    base = root.resolve()
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = {"path", "split"} - set(columns)
            if missing:
                raise SplitFileError(f"{csv_path.name} lacks the column(s) {sorted(missing)}; expected a header "
                                     f"'path,split' (and optionally 'class'), found {columns}")
            rows, seen = [], set()
            for line, raw in enumerate(reader, start=2):
                rec = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
                split = rec["split"].lower()
                if split not in SPLITS:
                    raise SplitFileError(f"{csv_path.name} line {line}: split {rec['split']!r} is not one of "
                                         f"{', '.join(SPLITS)}")
                rel = Path(rec["path"])
                full = (base / rel).resolve()
                if rel.is_absolute() or not full.is_relative_to(base):
                    raise SplitFileError(f"{csv_path.name} line {line}: path {rec['path']!r} leaves {root}; "
                                         "paths must be relative to the image folder")
                if not full.is_file():
                    raise SplitFileError(f"{csv_path.name} line {line}: {rec['path']} not found under {root}")
                if full in seen:
                    raise SplitFileError(f"{csv_path.name} line {line}: {rec['path']} is listed twice")
                seen.add(full)
                cls = rec.get("class") or (rel.parent.name if rel.parent.name else "")
                if not cls:
                    raise SplitFileError(f"{csv_path.name} line {line}: no class (add a 'class' column or put "
                                         "the image in a <class>/ folder)")
                rows.append(SplitRow(full, cls, split, rec.get("group", "")))
    except UnicodeDecodeError:
        raise SplitFileError(f"{csv_path.name} is not a UTF-8 CSV file") from None
    except csv.Error as exc:
        raise SplitFileError(f"{csv_path.name} is not a valid CSV file ({exc})") from None
    if not rows:
        raise SplitFileError(f"{csv_path.name} lists no images")
    check_groups(rows, csv_path.name)
    return rows


def check_groups(rows: list[SplitRow], name: str = "split file") -> None:
    """Refuse a split in which one ``group`` (copies or near-copies of a photo) sits in two splits: the held-out
    accuracy would be inflated by images the model trained on."""
    where: dict[str, str] = {}
    for row in rows:
        if not row.group:
            continue
        first = where.setdefault(row.group, row.split)
        if first != row.split:
            raise SplitFileError(f"{name}: group {row.group!r} is in both '{first}' and '{row.split}'; grouped "
                                 "(duplicate) images must stay in one split")


def select(rows: list[SplitRow], split: str) -> list[SplitRow]:
    """The rows of one split; refuses an empty one (a typo in the split name should not train on nothing)."""
    if split not in SPLITS:
        raise SplitFileError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    chosen = [r for r in rows if r.split == split]
    if not chosen:
        raise SplitFileError(f"the split file has no '{split}' rows")
    return chosen

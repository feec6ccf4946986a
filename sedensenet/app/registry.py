"""The app's pages: one line each. ``app.py`` builds the navigation from this list; tests read it too.

Adding a page = a file in ``pages/`` (layout only) + one line here. The first page is the home page.
URL paths are capitalised on purpose: Streamlit's legacy ``pages/`` discovery (active only for a cold server's
very first script run) names pages after their lower-case file stems, so the two never collide.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"


@dataclass(frozen=True)
class PageSpec:
    """A page: its file in ``pages/``, navigation title, Material icon and URL path."""

    file: str
    title: str
    icon: str
    url: str

    @property
    def path(self) -> Path:
        return PAGES_DIR / self.file


PAGES: tuple[PageSpec, ...] = (
    PageSpec("explore.py", "Explore", ":material/search:", "Explore"),
    PageSpec("compare.py", "Compare", ":material/compare:", "Compare"),
    PageSpec("class_statistics.py", "Class statistics", ":material/bar_chart:", "Class_statistics"),
    PageSpec("training.py", "Training", ":material/show_chart:", "Training"),
    PageSpec("model.py", "Model", ":material/account_tree:", "Model"),
    PageSpec("learn.py", "Learn", ":material/school:", "Learn"),
)

"""The shared frame around every page: page config, share-link restore, the sidebar (drawn once), navigation,
presenter styling and one error guard. ``app.py`` calls :func:`run`; pages never repeat any of it.

Only ``sedensenet/app/`` imports Streamlit; every number comes from the library.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

# Heavy modules imported eagerly when the app starts: two sessions on a cold server must not race on lazy
# imports (seen: "partially initialized module 'pandas'" inside plotly).
import captum.attr  # noqa: F401
import pandas  # noqa: F401
import plotly.express
import plotly.graph_objects  # noqa: F401
import streamlit as st
import torchvision  # noqa: F401

from sedensenet.app import share, sidebar
from sedensenet.app.problems import show_error
from sedensenet.app.registry import PAGES
from sedensenet.errors import SedensenetError

LOG = logging.getLogger("sedensenet.app")
PRESENTER_CSS = """
<style>
html, body, [data-testid="stAppViewContainer"] { font-size: 22px; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.25rem; }
[data-testid="stMetricValue"] { font-size: 2.6rem; }
h1 { font-size: 3rem !important; } h2, h3 { font-size: 2.1rem !important; }
[data-testid="stCaptionContainer"] { font-size: 1.05rem; color: #111; }
</style>
"""


def guard(body: Callable[[], object]) -> object | None:
    """Run ``body``; a user-fixable error becomes one ``st.error``, anything else one friendly line + a log."""
    try:
        return body()
    except SedensenetError as exc:
        show_error(str(exc))
    except Exception as exc:  # never show a traceback to the user
        LOG.error("page failed: %s", "".join(traceback.format_exception(exc)))
        show_error(f"Something went wrong ({type(exc).__name__}). Try another image or model; "
                   "the details are in the server log.")
    return None


def run() -> None:
    """Draw the frame and run the page the URL asks for."""
    st.set_page_config(page_title="sedensenet", page_icon="🔎", layout="wide")
    share.restore()
    nav = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url, default=i == 0)
                         for i, p in enumerate(PAGES)], position="sidebar")
    selected = guard(sidebar.draw)
    if st.session_state.get("presenter"):
        st.html(PRESENTER_CSS)
    if selected is None:
        return
    try:
        guard(nav.run)
    finally:  # also when a page stops early (st.stop): the address bar always holds the current view
        share.publish()

"""Errors in the app: one escaped line on screen, never a traceback (that goes to the server log)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import streamlit as st

from sedensenet.app.escape import escape_markdown
from sedensenet.errors import SedensenetError

LOG = logging.getLogger("sedensenet.app")


def show_error(message: str) -> None:
    """``st.error`` for a message that may quote file or class names (escaped: shown as typed)."""
    st.error(escape_markdown(message))


def user_problem(action: Callable[[], Any], what: str) -> str | None:
    """Run ``action``; ``None`` if it worked, else one line for the user. Errors the user can fix give their own
    message; anything else (a bug, an exhausted machine) a friendly line, with the traceback in the server log."""
    try:
        action()
    except (SedensenetError, ValueError) as exc:
        return str(exc)
    except MemoryError:
        LOG.error("%s: out of memory", what)
        return f"{what} needs more memory than this server has; try a smaller file"
    except Exception as exc:  # never a traceback on screen
        LOG.error("%s failed: %s", what, "".join(traceback.format_exception(exc)))
        return f"{what} could not be used ({type(exc).__name__}); the details are in the server log"
    return None

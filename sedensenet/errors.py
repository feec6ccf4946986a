"""The one error base class: what the CLI and the app show as a message rather than a bug.

Every error a user can fix (a bad file, a wrong option, data that cannot be used) derives from
:class:`SedensenetError` and carries a message that says what to do. Anything else is a bug: the CLI and the app
log its traceback and show one friendly line.
"""

from __future__ import annotations


class SedensenetError(Exception):
    """An input or option the user can fix; ``str(exc)`` says what is wrong and what to do."""


class ConfigError(SedensenetError, ValueError):
    """An option or argument out of its allowed range or set (a ``ValueError`` too, for older callers)."""


class MissingFileError(SedensenetError, FileNotFoundError):
    """A file the user named (or that an option implies, like ``--resume``'s last checkpoint) does not exist."""


class CheckpointError(SedensenetError, ValueError):
    """A checkpoint could not be loaded; the message says what was wrong and what to do."""

"""One exception root for everything a user can cause, each with its exit code.

The CLI catches `DccError` and exits with `exit_code`; anything else is a bug in dcc and is
reported as one (still without a raw traceback unless DCC_DEBUG is set).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dcc.compiler.diagnostics import Diagnostic


class DccError(Exception):
    """Root of every error dcc reports to a user."""

    exit_code = 1


class RecipeError(DccError):
    """A recipe failed compile-time checks; carries every diagnostic of the run."""

    exit_code = 1

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        first = diagnostics[0].message if diagnostics else "recipe error"
        super().__init__(f"{len(diagnostics)} error(s); first: {first}")


class UsageError(DccError):
    """The command line was wrong (bad flag value, missing file)."""

    exit_code = 2


class DataError(DccError):
    """Input data could not be read; the message names the file and line."""

    exit_code = 3


class OperatorError(DccError):
    """An operator failed at run time; names the node so the user knows where."""

    exit_code = 3

    def __init__(self, node: str, message: str) -> None:
        self.node = node
        super().__init__(f"node '{node}' failed: {message}")


class ParamError(DccError, ValueError):
    """An operator parameter has the wrong type or value."""

    exit_code = 1


class CacheError(DccError):
    """The cache is unusable (unwritable directory, corrupt index)."""

    exit_code = 1


class LockedError(DccError):
    """`--locked` found drift between the lockfile and the current inputs."""

    exit_code = 1

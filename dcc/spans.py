"""Source positions shared by every layer, so any error can point at recipe text.

A `Span` is carried from the lark token to the AST, the IR node and the run-time error; one
`SourceFile` per file owns the text and answers "which line is this" for carets.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A 1-based, inclusive-start, exclusive-end range of characters in one file."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass
class SourceFile:
    """The text of one recipe file, with line lookup for diagnostics."""

    path: str
    text: str
    _lines: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        # Only "\n" ends a line for spans (lark counts that way); str.splitlines would also
        # break at \f, \x85 and U+2028 and quote the wrong line under a caret.
        self._lines = [ln.rstrip("\r") for ln in self.text.split("\n")]

    def line(self, n: int) -> str:
        """The text of 1-based line `n`, or '' past the end."""
        return self._lines[n - 1] if 0 < n <= len(self._lines) else ""


_SOURCES: dict[str, SourceFile] = {}


def register_source(path: str, text: str) -> SourceFile:
    """Remember a file's text so diagnostics can quote it later."""
    src = SourceFile(path, text)
    _SOURCES[path] = src
    return src


def source_line(path: str, n: int) -> str:
    src = _SOURCES.get(path)
    return src.line(n) if src else ""

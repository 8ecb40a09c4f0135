"""Diagnostics: one value type for every compile-time problem, rendered like a compiler's.

    r.recipe:2:13: error: unknown operator 'select.lenght'
      2 | bad = src | select.lenght(field="output", min=1)
        |             ^^^^^^^^^^^^^
      help: did you mean 'select.length'?

Every layer (parser, resolver, schema check, passes) produces `Diagnostic`s with a `Span`;
the compiler collects all of a run's diagnostics and raises them together in a RecipeError.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable

from dcc.spans import Span, source_line


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # "error" | "warning"
    span: Span | None
    message: str
    help: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def header(self) -> str:
        where = f"{self.span.file}:{self.span.line}:{self.span.col}: " if self.span else ""
        return f"{where}{self.severity}: {self.message}"

    def render(self) -> str:
        """Plain text: header, the source line with a gutter, a caret line, then help."""
        lines = [self.header()]
        if self.span is not None:
            text = source_line(self.span.file, self.span.line)
            if text or self.span.line > 0:
                gutter = str(self.span.line)
                pad = " " * len(gutter)
                lines.append(f"  {gutter} | {text.expandtabs(1)}")
                width = _caret_width(self.span, text)
                lines.append(f"  {pad} | {' ' * (self.span.col - 1)}{'^' * width}")
        if self.help:
            lines.append(f"  help: {self.help}")
        return "\n".join(lines)

    def __rich_console__(self, console, options):  # noqa: ANN001 - rich protocol
        from rich.text import Text

        style = "dcc.error" if self.is_error else "dcc.warning"
        text = Text(self.render())
        text.stylize(style, 0, len(self.header()))
        yield text


def _caret_width(span: Span, text: str) -> int:
    if span.end_line == span.line and span.end_col > span.col:
        return span.end_col - span.col
    rest = len(text) - (span.col - 1)
    return max(1, rest if span.end_line > span.line else 1)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """'did you mean X?' from difflib over the names in scope, or None.

    >>> did_you_mean("select.lenght", ["select.length", "select.words"])
    "did you mean 'select.length'?"
    >>> did_you_mean("zzz", ["select.length"]) is None
    True

    Within one family the shared prefix says nothing, so only the last parts are compared
    (otherwise every short operator name would look close to any typo in its family):

    >>> did_you_mean("select.zzzzzz", ["select.ifd", "select.top"]) is None
    True
    >>> did_you_mean("laod.jsonl", ["load.jsonl", "select.length"])
    "did you mean 'load.jsonl'?"
    """
    cands = sorted(set(candidates))
    if "." in word:
        family, last = word.rsplit(".", 1)
        same = [c for c in cands if "." in c and c.rsplit(".", 1)[0] == family]
        found = difflib.get_close_matches(last, [c.rsplit(".", 1)[1] for c in same], n=1,
                                          cutoff=0.6)
        if found:
            return f"did you mean '{family}.{found[0]}'?"
        cands = [c for c in cands if c not in same]
    found = difflib.get_close_matches(word, cands, n=1, cutoff=0.6)
    return f"did you mean '{found[0]}'?" if found else None


def error(span: Span | None, message: str, help: str | None = None) -> Diagnostic:
    return Diagnostic("error", span, message, help)


def warning(span: Span | None, message: str, help: str | None = None) -> Diagnostic:
    return Diagnostic("warning", span, message, help)

"""The two consoles: results on stdout, everything else (diagnostics, progress) on stderr.

Only the CLI prints, and only through these. When a stream is not a terminal rich writes
plain text without colour or live displays, so logs and pipes stay line-oriented and stable.
"""

from __future__ import annotations

from functools import lru_cache

from rich.console import Console
from rich.theme import Theme

THEME = Theme({
    "dcc.error": "bold red",
    "dcc.warning": "bold yellow",
    "dcc.cached": "green",
    "dcc.ran": "cyan",
    "dcc.failed": "bold red",
    "dcc.muted": "dim",
    "dcc.name": "bold",
})


@lru_cache(maxsize=1)
def out() -> Console:
    return Console(theme=THEME, highlight=False, soft_wrap=True)


@lru_cache(maxsize=1)
def err() -> Console:
    return Console(stderr=True, theme=THEME, highlight=False, soft_wrap=True)

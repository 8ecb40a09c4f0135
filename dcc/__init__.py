"""dcc: a declarative dataset-recipe compiler with a content-addressed cache.

The package root imports nothing heavy so that `dcc --help` and a no-op rebuild stay fast;
the compiler, cache and engine are imported where they are used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

"""`rewrite.c4_lines`: the line and page rules that made C4 (Raffel et al. 2020, section
2.2), as TensorFlow Datasets' c4_utils.clean_page applies them, as polars list expressions.

It rewrites the text (dropping lines) and, by default, drops whole pages, which neither a
`Map` nor a `Filter` can do alone. With drop_pages=false it only rewrites and is a plain,
fusable `Map`; with drop_pages=true (the default) an instance runs as a step of its own
(kind "dataset", like select.* with keep_score=true).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dcc.ops import register
from dcc.ops.base import Map, P, RunContext
from dcc.ops.quality import TOKEN
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl

# Python's str.splitlines() boundaries other than "\n" (TFDS splits pages with it).
_LINE_BREAKS = r"\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]"
_CITATION = r"\[\d*\]|\[edit\]|\[citation needed\]"
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
          "use cookies")
_END_MARKS = r"[.?!\"]$"
_SENTENCE = r"[.!?]+[\"'”’)\]]*(?:\s+|$)"
_KEEP = "__dcc_c4_keep"


@register
class RewriteC4Lines(Map):
    """Keep the lines of `field` that C4 keeps, and (drop_pages=true) drop the pages it drops.

    The text is split into lines as Python's str.splitlines() does; each line, stripped of
    surrounding whitespace, goes through these steps in this order (TFDS's c4_utils):

    1. a line holding a token longer than `max_word_length` (1000) characters is dropped;
    2. Wikipedia citation markers "[1]", "[]", "[edit]", "[citation needed]" are removed;
    3. a line that does not end in ".", "?", "!" or '"', or that ends in "...", is dropped;
    4. a line with fewer than `min_words` (5) tokens is dropped;
    5. a line containing "lorem ipsum" (any case) marks the page as placeholder text;
    6. a line containing "javascript" (any case) is dropped;
    7. a line containing "{" marks the page as code;
    8. a line containing "terms of use", "privacy policy", "cookie policy", "uses cookies",
       "use of cookies" or "use cookies" (any case) is dropped.

    The kept lines, joined by "\\n", become the new text. With drop_pages=true a row is then
    dropped when a line reaching step 5 holds "lorem ipsum", a line reaching step 7 holds
    "{", or the kept lines hold fewer than `min_sentences` (3) sentences; a line's sentences
    are its runs of . ! ? followed (after closing quotes or brackets) by whitespace or the
    line's end, at least one per kept line (TFDS counts them with NLTK's punkt tokenizer,
    which also splits at abbreviations less often). "" and null texts have no sentences, so
    they are dropped; with drop_pages=false they stay as they are and page rules are off.

    C4's other steps are elsewhere in dcc: its bad-words rule is
    select.flagged_words(max=0) with the same list, its three-sentence dedup is close to
    select.dedup, and its language filter is select.lang. datatrove's C4QualityFilter uses
    min_words=3 and 5 sentences.

    Example:  clean = pages | rewrite.c4_lines(field="text")

    >>> import polars as pl
    >>> page = ("Home | About\\nThis page is about cats and dogs.\\n"
    ...         "Please enable JavaScript to view this site properly.\\n"
    ...         "Cats sleep a lot. Dogs like to walk![1]")
    >>> df = pl.DataFrame({"text": [page, "Lorem ipsum dolor sit amet, at all."]})
    >>> RewriteC4Lines(field="text").run([df], RunContext("t"))["text"].to_list()
    ['This page is about cats and dogs.\\nCats sleep a lot. Dogs like to walk!']
    """

    name = "rewrite.c4_lines"
    cost = 30.0
    version = 1
    params = (
        P("field", "str", doc="the text column to clean in place", column=True, col_type="str"),
        P("min_words", "int", 5, doc="fewest tokens a kept line has", min=0),
        P("min_sentences", "int", 3, doc="fewest sentences a kept page has", min=0),
        P("max_word_length", "int", 1000, doc="longest token a kept line may hold", min=1),
        P("drop_pages", "bool", True, doc="also drop the pages C4 drops"),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        if self.p["drop_pages"]:
            self.kind = "dataset"  # type: ignore[misc]  # drops rows: not a fusable Map

    def writes(self) -> list[str]:
        return [self.p["field"]]

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        return base.with_columns(**{self.p["field"]: "str"})

    def _steps(self) -> tuple[pl.Expr, pl.Expr]:
        """(the kept lines, the page-keep flag) as list/bool expressions."""
        import polars as pl

        e = pl.element()
        lower = e.str.to_lowercase()
        lines = (pl.col(self.p["field"]).str.replace_all(_LINE_BREAKS, "\n").str.split("\n")
                 .list.eval(e.str.strip_chars()))
        longest = e.str.extract_all(TOKEN).list.eval(pl.element().str.len_chars()).list.max()
        lines = lines.list.eval(e.filter(longest.fill_null(0) <= self.p["max_word_length"]))
        lines = lines.list.eval(e.str.replace_all(_CITATION, ""))
        lines = lines.list.eval(e.filter(e.str.contains(_END_MARKS)
                                         & ~e.str.ends_with("...")))
        lines = lines.list.eval(e.filter(e.str.count_matches(TOKEN) >= self.p["min_words"]))
        lorem = lines.list.eval(lower.str.contains("lorem ipsum", literal=True)).list.any()
        lines = lines.list.eval(e.filter(~lower.str.contains("javascript", literal=True)))
        code = lines.list.eval(e.str.contains("{", literal=True)).list.any()
        policy = "|".join(POLICY)
        lines = lines.list.eval(e.filter(~lower.str.contains(policy)))
        sentences = lines.list.eval(
            pl.max_horizontal(e.str.count_matches(_SENTENCE), pl.lit(1))).list.sum()
        keep = (~lorem.fill_null(False) & ~code.fill_null(False)
                & (sentences.fill_null(0) >= self.p["min_sentences"]))
        return lines, keep

    def exprs(self) -> list[pl.Expr]:
        lines, _ = self._steps()
        return [lines.list.join("\n").alias(self.p["field"])]

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        if not self.p["drop_pages"]:
            return super().run(inputs, ctx)
        df = inputs[0]
        casts = self.null_text_casts(df.schema)
        df = df.with_columns(casts) if casts else df
        lines, keep = self._steps()
        out = df.with_columns(lines.list.join("\n").alias(self.p["field"]), keep.alias(_KEEP))
        ctx.stats["dropped_pages"] = int((~out[_KEEP]).sum())
        return out.filter(_KEEP).drop(_KEEP)

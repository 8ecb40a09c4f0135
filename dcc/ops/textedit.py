"""rewrite.*, rule-based text edits: PII redaction, Jinja2 templates, alpaca <-> chat messages.

`rewrite.pii` is row-wise but runs as a step of its own (kind "dataset") so that its
per-kind counts always reach the build's statistics; a fused stage only evaluates polars
expressions and would lose them. `rewrite.template` renders Jinja2 once per row in Python
(inside polars map_batches, so it still fuses); the rest are pure polars expressions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dcc.errors import DccError
from dcc.ops import register
from dcc.ops.base import DatasetOp, Map, P, RunContext
from dcc.ops.rules import ColumnTypeError, require_dtype
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl


# -- PII ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Rule:
    """One regular expression of a PII kind. Without `check` every match is replaced. With
    it, `wrap` marks the part to test ("S" stands for a sentinel character) and only the
    marked parts for which `check(part)` holds are replaced."""

    pattern: str
    check: Callable[[Any], Any] | None = None
    wrap: str = "S${0}S"


def _digits(e: pl.Expr) -> pl.Expr:
    return e.str.replace_all(r"[^0-9]", "")


def _luhn(e: pl.Expr) -> pl.Expr:
    """13 to 19 digits (separators ignored) whose Luhn checksum is 0 mod 10, vectorized over
    the 19 possible positions."""
    import polars as pl

    digits = _digits(e)
    rev = digits.str.reverse()
    total = pl.lit(0)
    for i in range(19):
        d = rev.str.slice(i, 1).cast(pl.Int32, strict=False).fill_null(0)
        total = total + (d if i % 2 == 0 else pl.when(d >= 5).then(2 * d - 9).otherwise(2 * d))
    n = digits.str.len_chars()
    return (n >= 13) & (n <= 19) & (total % 10 == 0)


def _phone_digits(e: pl.Expr) -> pl.Expr:
    n = _digits(e).str.len_chars()
    return (n >= 8) & (n <= 15)


def _has_digit(e: pl.Expr) -> pl.Expr:
    return e.str.contains("[0-9]")


def _mixed(e: pl.Expr) -> pl.Expr:
    return e.str.contains("[0-9]") & e.str.contains("[A-Za-z]")


_B = r"(?-u:\b)"  # an ASCII word boundary: lets the regex engine use its fast DFA
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_HEX = r"[0-9A-Fa-f]{1,4}"


def _ipv6() -> str:
    """Full (8 groups) and '::'-compressed IPv6 with at least 3 groups, longest first."""
    def groups(k: int) -> str:
        return "" if k == 0 else _HEX + (f"(?::{_HEX}){{{k - 1}}}" if k > 1 else "")

    alts = [f"{_B}{_HEX}(?::{_HEX}){{7}}{_B}"]
    for left in range(7, -1, -1):
        for right in range(7 - left, -1, -1):
            if left + right >= 3:
                alts.append((_B if left else "") + groups(left) + "::" + groups(right)
                            + (_B if right else ""))
    return "(?:" + "|".join(alts) + ")"


_PREFIXED = ("sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{20,}", "gh[pousr]_[A-Za-z0-9]{36,}",
             "github_pat_[A-Za-z0-9_]{22,}", "(?:AKIA|ASIA)[0-9A-Z]{16}",
             "xox[abposr]-[A-Za-z0-9-]{10,}", "AIza[0-9A-Za-z_-]{35}",
             "[rs]k_(?:live|test)_[0-9A-Za-z]{16,}")
_NAMED = (r"(?i)" + _B + r"([a-z0-9_-]*(?:key|secret|token|password|passwd|pwd|auth)[\"']?"
          r"[ \t]*[:=][ \t]*[\"']?)([a-z0-9+/_.~=-]{16,})")
_NANP = r"(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{3}\)[ .-]?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}"
_INTL = r"\+[0-9]{1,3}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,4})){2,6}"

PII: dict[str, tuple[str, tuple[_Rule, ...]]] = {
    "secret": ("[SECRET]", (
        _Rule(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
        _Rule(_B + "(?:" + "|".join(_PREFIXED) + ")" + _B),
        _Rule(_NAMED, _mixed, "${1}S${2}S"),
    )),
    "email": ("[EMAIL]", (
        _Rule(_B + r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
              r"[A-Za-z]{2,}" + _B),
    )),
    "credit_card": ("[CREDIT_CARD]", (
        _Rule(_B + r"(?:[0-9]{13,19}|[0-9]{4}(?:[ -][0-9]{3,6}){2,4})" + _B, _luhn),
    )),
    "ip": ("[IP]", (
        _Rule(_ipv6(), _has_digit),
        _Rule(_B + rf"(?:{_OCTET}\.){{3}}{_OCTET}" + _B),
    )),
    "phone": ("[PHONE]", (
        # not after a letter, digit, _ or +: "12500+21000-6300" is arithmetic
        _Rule(r"(^|[^0-9A-Za-z_+])(" + _NANP + "|" + _INTL + ")" + _B, _phone_digits,
              "${1}S${2}S"),
    )),
}
KINDS = tuple(PII)  # the order in which kinds are applied


def _sentinel(values: pl.Series) -> str:
    """A private-use character that occurs in none of `values`."""
    for code in range(0xE000, 0xF900):
        ch = chr(code)
        if not values.str.contains(ch, literal=True).any():
            return ch
    raise DccError("rewrite.pii: every private-use character occurs in the data")


def _apply(values: pl.Series, rule: _Rule, placeholder: str,
           sentinel: str) -> tuple[pl.Series, int]:
    """Replace the matches of one rule; with a check, only in the rows that have a candidate,
    whose parts are tested as one flat Series (vectorized, no Python per candidate)."""
    import numpy as np
    import polars as pl

    if rule.check is None:
        count = values.str.count_matches(rule.pattern).sum()
        return values.str.replace_all(rule.pattern, placeholder), int(count or 0)
    rows = np.flatnonzero(values.str.contains(rule.pattern).fill_null(False).to_numpy())
    if not rows.size:
        return values, 0
    parts = (values.gather(rows).str.replace_all(rule.pattern, rule.wrap.replace("S", sentinel))
             .str.split(sentinel))
    sizes = parts.list.len().to_numpy().astype(np.int64)
    flat = parts.explode()
    position = np.arange(flat.len()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    frame = pl.DataFrame({"row": np.repeat(np.arange(rows.size), sizes), "part": flat,
                          "odd": position % 2 == 1})
    frame = frame.with_columns(hit=(pl.col("odd") & rule.check(pl.col("part"))).fill_null(False))
    joined = (frame.with_columns(pl.when("hit").then(pl.lit(placeholder))
                                 .otherwise(pl.col("part")).alias("part"))
              .group_by("row", maintain_order=True).agg(pl.col("part").str.join(""))["part"])
    out = values.clone()
    out.scatter(rows, joined)
    return out, int(frame["hit"].sum())


def redact(values: pl.Series, kinds: list[str] | tuple[str, ...] = KINDS
           ) -> tuple[pl.Series, dict[str, int]]:
    """`values` with every PII match of `kinds` replaced, and the count of each kind."""
    counts = {kind: 0 for kind in KINDS if kind in kinds}
    sentinel = _sentinel(values)
    for kind in counts:
        placeholder, rules = PII[kind]
        for rule in rules:
            values, found = _apply(values, rule, placeholder, sentinel)
            counts[kind] += found
    return values, counts


@register
class RewritePii(DatasetOp):
    """Replace personal data and secrets in each listed text field with typed placeholders.

    Kinds, applied in this order (a placeholder is never matched again):
    secret [SECRET]: PEM private-key blocks; tokens with a known prefix (sk-..., ghp_/gho_/
      ghu_/ghs_/ghr_ + 36, github_pat_..., AKIA/ASIA + 16 capitals or digits, xoxb-/xoxp-...,
      AIza + 35, sk_live_/rk_test_...); and after a name ending in key, secret, token,
      password, passwd, pwd or auth (any case) and ':' or '=' (quotes allowed), a value of
      16+ characters of [A-Za-z0-9+/_.~=-] holding a letter and a digit; only the value is
      replaced ("api_key=[SECRET]").
    email [EMAIL]: local@domain.tld, ASCII, the TLD 2+ letters.
    credit_card [CREDIT_CARD]: 13-19 digits, run together or in groups "4111 1111 1111 1111"
      / "3782-822463-10005" (a group of 4, then 2-4 groups of 3-6 separated by one space or
      dash; the longest such run is the candidate), replaced ONLY when the Luhn check passes.
    ip [IP]: IPv4 dotted quads with octets 0-255; IPv6 in full (8 groups) or compressed with
      '::' and at least 3 groups, holding a digit ("fe80::1", "a::b" and Python's x[1::2]
      are left alone).
    phone [PHONE]: North-American style 555-123-4567, 555.123.4567, (555) 123-4567, optionally
      with +CC; or international "+" then 2-6 groups ("+44 20 7946 0958", "+8613800138000");
      8 to 15 digits in all. Plain digit runs are not phones.
    Word boundaries are ASCII (\\b over [0-9A-Za-z_]): "1.2.3.4.5" becomes "[IP].5". A null
    stays null; a field that is not text is an error naming it. Statistics: one count per
    requested kind (matches replaced, over all fields), e.g. {"email": 3, "phone": 0, ...}.

    Row-wise, but a step of its own (never fused) so that the counts are always reported.

    Example:  rewrite.pii(fields=["instruction", "output"], kinds=["email", "secret"])

    >>> import polars as pl
    >>> df = pl.DataFrame({"t": ["mail bob@example.com or call 555-123-4567",
    ...                         "card 4111 1111 1111 1111, not 4111 1111 1111 1112", None]})
    >>> ctx = RunContext("t")
    >>> RewritePii(fields=["t"]).run([df], ctx)["t"].to_list()
    ['mail [EMAIL] or call [PHONE]', 'card [CREDIT_CARD], not 4111 1111 1111 1112', None]
    >>> ctx.stats
    {'secret': 0, 'email': 1, 'credit_card': 1, 'ip': 0, 'phone': 1}
    """

    name = "rewrite.pii"
    rowwise = True
    cost = 40.0  # relative per-row cost, measured on the 1M-row bench set
    version = 1
    params = (
        P("fields", "list[str]", doc="text columns to redact in place", column=True,
          col_type="str"),
        P("kinds", "list[str]", list(KINDS), doc="which kinds of PII to replace: " +
          ", ".join(KINDS)),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        kinds = self.p["kinds"]
        if not kinds:
            return [("kinds", "'kinds' must name at least one kind (got [])")]
        bad = [k for k in kinds if k not in PII]
        if bad:
            return [("kinds", f"'kinds' has an unknown kind {bad[0]!r}; the kinds are "
                     + ", ".join(KINDS))]
        return []

    def writes(self) -> list[str]:
        return list(self.p["fields"])

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        return base.with_columns(**{f: "str" for f in self.p["fields"]})

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        df = inputs[0]
        totals = {kind: 0 for kind in KINDS if kind in self.p["kinds"]}
        new = []
        for field in dict.fromkeys(self.p["fields"]):
            require_dtype(self.name, df.schema, field, "str")
            values, counts = redact(df[field].cast(pl.String), self.p["kinds"])
            new.append(values)
            for kind, n in counts.items():
                totals[kind] += n
        ctx.stats.update(totals)
        return df.with_columns(new)


# -- templates ----------------------------------------------------------------------------------
MAX_TEXT = 1_000_000  # longest string or list a template may build with * (characters/items)


class TemplateError(DccError):
    """A template failed on a row: an undefined name, a forbidden access, a type error."""

    exit_code = 3


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    class Env(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
                raise SecurityError(f"exponent {right} is too large (at most 64)")
            if operator == "*":
                size = next((len(x) * y for x, y in ((left, right), (right, left))
                             if isinstance(x, (str, list, tuple)) and isinstance(y, int)), 0)
                if size > MAX_TEXT:
                    raise SecurityError(f"the result would hold {size} items "
                                        f"(at most {MAX_TEXT})")
            return super().call_binop(context, operator, left, right)

    env = Env(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
              finalize=lambda v: "" if v is None else v)
    env.globals.pop("lipsum", None)  # random text: a build must be reproducible
    env.filters.pop("random", None)
    return env


@register
class RewriteTemplate(Map):
    """Set `field` (a new or existing column) to a Jinja2 `template` rendered over each row.

    Every column of the row is a variable: "### Q: {{ instruction }}{% if input %}\\n{{ input
    }}{% endif %}". A null column value is the empty string (the null rule), so it is false in
    {% if %} and renders as nothing; a null inside a list or struct also renders as "". The
    template is kept exactly as written (a trailing newline included) and never
    HTML-escaped. Its syntax is checked at compile time, and so are the columns it names: a
    name that is not a column of the input (nor a Jinja global such as range or loop) is an
    error, at run time too (StrictUndefined).

    Sandboxed (jinja2's ImmutableSandboxedEnvironment): no access to attributes that start
    with "_" or to Python internals ({{ ''.__class__ }} is an error), no methods that modify
    lists or dicts, and no string or list of more than a million items built with * (nor
    exponents above 64). A recipe stays data: a template cannot run code or touch files.
    Jinja's random helpers (the `random` filter, `lipsum`) are removed: same rows, same text.

    One Python render per row (in polars map_batches, fused like any map), about 20 us each.

    Example:  rewrite.template(field="prompt", template="Q: {{ question }}\\nA:")

    >>> import polars as pl
    >>> df = pl.DataFrame({"q": ["2+2?", "Why?"], "ctx": ["math", None]})
    >>> op = RewriteTemplate(field="p", template="[{{ ctx }}] {{ q | upper }}")
    >>> op.run([df], RunContext("t"))["p"].to_list()
    ['[math] 2+2?', '[] WHY?']
    """

    name = "rewrite.template"
    cost = 30.0  # relative per-row cost, measured on the 1M-row bench set
    version = 1
    params = (
        P("field", "str", doc="the column to write (created or replaced)"),
        P("template", "str", doc="a Jinja2 template over the row's columns"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        from jinja2 import TemplateSyntaxError, nodes

        try:
            tree = _environment().parse(self.p["template"])
            _compiled(self.p["template"])  # also checks that filters and tests exist
        except TemplateSyntaxError as e:
            return [("template", (f"'template' is not a valid Jinja2 template: {e.message} "
                                  f"(line {e.lineno})"))]
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            attr = node.attr if isinstance(node, nodes.Getattr) else (
                node.arg.value if isinstance(node.arg, nodes.Const) else None)
            if isinstance(attr, str) and attr.startswith("_"):
                return [("template", (f"'template' may not access the attribute {attr!r} "
                                      "(names starting with '_' are private)"))]
        return []

    def reads(self) -> list[str]:
        return _variables(self.p["template"])

    def writes(self) -> list[str]:
        return [self.p["field"]]

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        return base.with_columns(**{self.p["field"]: "str"})

    def exprs(self) -> list[pl.Expr]:
        import polars as pl

        cols = self.reads()
        if not cols:
            return [pl.lit(self._render_rows([{}])[0], dtype=pl.String).alias(self.p["field"])]
        return [pl.struct(cols).map_batches(self._render, return_dtype=pl.String)
                .alias(self.p["field"])]

    def _render(self, rows: pl.Series) -> pl.Series:
        import polars as pl

        return pl.Series(self.p["field"], self._render_rows(rows.to_list()), dtype=pl.String)

    def _render_rows(self, rows: list[dict[str, Any]]) -> list[str]:
        from jinja2 import TemplateError as JinjaError

        template = _compiled(self.p["template"])
        out = []
        for i, row in enumerate(rows):
            try:
                out.append(template.render({k: "" if v is None else v for k, v in row.items()}))
            except JinjaError as e:
                raise TemplateError(f"{self.name}: row {i}: {e}") from None
            except (TypeError, ValueError, ArithmeticError) as e:
                raise TemplateError(f"{self.name}: row {i}: {type(e).__name__}: {e}") from None
        return out


@functools.lru_cache(maxsize=64)
def _compiled(template: str) -> Any:
    return _environment().from_string(template)


@functools.lru_cache(maxsize=64)
def _variables(template: str) -> list[str]:
    """Names the template reads that are not its own or Jinja's globals: the row's columns."""
    from jinja2 import TemplateSyntaxError, meta

    env = _environment()
    try:
        names = meta.find_undeclared_variables(env.parse(template))
    except TemplateSyntaxError:
        return []
    return sorted(n for n in names if n not in env.globals and n != "loop")


# -- alpaca <-> chat ------------------------------------------------------------------------------
@register
class RewriteToChat(Map):
    """Build an OpenAI-style `messages` column from alpaca-style instruction/input/output
    columns.

    messages = [{role: "system", content: system}] (only when `system` is given), then
    {role: "user", content: U}, then {role: "assistant", content: the output} (only when
    `output` names a column, i.e. is not ""). U is the instruction when the input is "" or
    null, else instruction + "\\n\\n" + input (one blank line between, nothing stripped).
    Null instruction and output values count as "". Pass input="" for data without an input
    column. The column `into` is a list of {role: str, content: str} structs; the source
    columns are kept (drop them with columns.drop).

    Example:  rewrite.to_chat(system="You are a helpful assistant.")

    >>> import polars as pl
    >>> df = pl.DataFrame({"instruction": ["Add.", "Hi"], "input": ["2 3", ""],
    ...                    "output": ["5", "Hello"]})
    >>> RewriteToChat().run([df], RunContext("t"))["messages"].to_list()[0]
    [{'role': 'user', 'content': 'Add.\\n\\n2 3'}, {'role': 'assistant', 'content': '5'}]
    """

    name = "rewrite.to_chat"
    cost = 6.0  # relative per-row cost, measured on the 1M-row bench set
    version = 1
    params = (
        P("instruction", "str", "instruction", doc="the instruction column", column=True,
          col_type="str"),
        P("input", "str", "input", doc="the input column, appended after a blank line "
          "(\"\": none)", column=True, col_type="str"),
        P("output", "str", "output", doc="the response column (\"\": no assistant message)",
          column=True, col_type="str"),
        P("system", "str", None, doc="a system prompt put first in every conversation"),
        P("into", "str", "messages", doc="the column to write"),
    )

    def reads(self) -> list[str]:
        return [c for c in (self.p["instruction"], self.p["input"], self.p["output"]) if c]

    def writes(self) -> list[str]:
        return [self.p["into"]]

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        return base.with_columns(**{self.p["into"]: "list"})

    def exprs(self) -> list[pl.Expr]:
        import polars as pl

        def message(role: str, content: pl.Expr) -> pl.Expr:
            return pl.struct(role=pl.lit(role, dtype=pl.String), content=content)

        text = pl.col(self.p["instruction"]).fill_null("")
        if self.p["input"]:
            extra = pl.col(self.p["input"])
            text = (pl.when(extra.is_null() | (extra == "")).then(text)
                    .otherwise(text + "\n\n" + extra))
        msgs = [message("user", text)]
        if self.p["system"] is not None:
            msgs.insert(0, message("system", pl.lit(self.p["system"], dtype=pl.String)))
        if self.p["output"]:
            msgs.append(message("assistant", pl.col(self.p["output"]).fill_null("")))
        if hasattr(pl, "concat_arr"):  # 5x faster than concat_list on structs (polars 1.2x)
            return [pl.concat_arr(msgs).arr.to_list().alias(self.p["into"])]
        return [pl.concat_list(msgs).alias(self.p["into"])]


@register
class RewriteFromChat(Map):
    """Fill alpaca-style columns from an OpenAI-style `messages` column (list of {role,
    content} structs).

    instruction = content of the first message whose role is "user"; output = content of the
    first message whose role is "assistant"; input = "" (the user message is not split back);
    with `system` naming a column, it gets the content of the first "system" message. A
    missing message gives null, and a null `messages` gives nulls. Later turns are ignored.
    So to_chat then from_chat is exact when the input was empty (else the instruction holds
    instruction + "\\n\\n" + input), and from_chat then to_chat is exact for single-turn
    conversations. Columns named "" are not written; `messages` is kept.

    Example:  rewrite.from_chat(messages="conversations", system="system")

    >>> import polars as pl
    >>> df = pl.DataFrame({"messages": [[{"role": "user", "content": "Hi"},
    ...                                  {"role": "assistant", "content": "Hello"}]]})
    >>> RewriteFromChat().run([df], RunContext("t")).drop("messages").row(0)
    ('Hi', '', 'Hello')
    """

    name = "rewrite.from_chat"
    cost = 1.0  # relative per-row cost, measured on the 1M-row bench set
    version = 1
    params = (
        P("messages", "str", "messages", doc="the list of {role, content} messages",
          column=True, col_type="list"),
        P("instruction", "str", "instruction", doc="column for the first user message"),
        P("input", "str", "input", doc="column set to \"\" (\"\": not written)"),
        P("output", "str", "output", doc="column for the first assistant message"),
        P("system", "str", None, doc="column for the first system message (null: none)"),
    )

    def targets(self) -> dict[str, str | None]:
        """column written -> the role whose first message fills it (None: the input, "")."""
        pairs = ((self.p["instruction"], "user"), (self.p["input"], None),
                 (self.p["output"], "assistant"), (self.p["system"], "system"))
        return {col: role for col, role in pairs if col}

    def writes(self) -> list[str]:
        return list(self.targets())

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        return base.with_columns(**{c: "str" for c in self.writes()})

    def exprs(self) -> list[pl.Expr]:
        import polars as pl

        msgs = pl.col(self.p["messages"])
        out = []
        for col, role in self.targets().items():
            if role is None:
                value = pl.when(msgs.is_null()).then(None).otherwise(pl.lit(""))
            else:
                value = msgs.list.eval(
                    pl.element().filter(pl.element().struct.field("role") == role)
                    .struct.field("content")).list.first()
            out.append(value.cast(pl.String).alias(col))
        return out

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        df = inputs[0]
        col = self.p["messages"]
        require_dtype(self.name, df.schema, col, "list")
        dtype = df.schema[col]
        inner = dtype.inner if isinstance(dtype, pl.List) else None
        if inner is not None and not (isinstance(inner, pl.Struct) and
                                      {"role", "content"} <= {f.name for f in inner.fields}):
            raise ColumnTypeError(f"{self.name}: column '{col}' must be a list of "
                                  f"{{role, content}} structs (got {dtype})")
        return super().run(inputs, ctx)


__all__ = ["KINDS", "RewriteFromChat", "RewritePii", "RewriteTemplate", "RewriteToChat",
           "redact"]

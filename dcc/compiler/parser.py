"""Recipe text -> AST statements plus diagnostics, never an exception.

Three steps, each recovering so that one run reports every syntax error of a file:

1. lex the whole file with lark's basic lexer; a bad character becomes a diagnostic and is
   blanked out (same length, so positions hold) and lexing restarts;
2. group tokens into statements: a newline ends a statement except inside brackets, after a
   trailing `|` and before a leading `|`; an unclosed bracket is reported at its opener when
   the next line plainly starts a new statement;
3. parse each statement on its own with lark's interactive LALR parser (start `stmt`).
"""

from __future__ import annotations

import math
from functools import lru_cache

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from dcc.compiler import ast as A
from dcc.compiler.diagnostics import Diagnostic, error
from dcc.compiler.syntax_errors import SYNTAX_EXAMPLES
from dcc.spans import Span, register_source

OPEN = {"LPAR": ")", "LSQB": "]", "LBRACE": "}"}
CLOSE = {"RPAR", "RSQB", "RBRACE"}
STMT_KEYWORDS = {"RECIPE", "PARAM", "USE", "PIPELINE", "EXPORT"}
KEYWORDS = {"recipe", "param", "use", "as", "pipeline", "export", "to", "evolve", "true",
            "false", "null", "and", "or", "not", "in"}
MAX_LEX_ERRORS = 50


@lru_cache(maxsize=1)
def grammar() -> Lark:
    """The parser, built once per process; lark caches its tables on disk between runs."""
    return Lark.open("recipe.lark", rel_to=__file__, parser="lalr", lexer="basic",
                     propagate_positions=True, start=["start", "stmt"], cache=True)


def parse(text: str, path: str) -> tuple[A.Recipe, list[Diagnostic]]:
    """Parse a recipe file; returns the statements that parsed and every diagnostic.

    >>> recipe, diags = parse('x = load.jsonl("a.jsonl") |\\nexport x to "o.jsonl"', "r.recipe")
    >>> print(diags[0].render())
    r.recipe:1:28: error: expected an operator after '|' (found end of statement)
      1 | x = load.jsonl("a.jsonl") |
        |                            ^
    >>> [type(s).__name__ for s in recipe.stmts]
    ['ExportStmt']
    """
    recipe, diags, _ = parse_full(text, path)
    return recipe, diags


def parse_full(text: str, path: str) -> tuple[A.Recipe, list[Diagnostic], set[str]]:
    """`parse`, plus the names that statements which did not parse tried to define.

    The resolver stays quiet about those names: after `x = f(` the user needs one error at
    the '(' and not a second "unknown name 'x'" at every use of x.
    """
    text = text.removeprefix("\ufeff")  # a byte-order mark is not part of the recipe
    register_source(path, text)
    diags: list[Diagnostic] = []
    blanked: set[int] = set()
    tokens = _lex(text, path, diags, blanked)
    recipe = A.Recipe(path)
    broken: set[str] = set()
    for group, opener in _statements(tokens):
        lines = range(group[0].line, (group[-1].end_line or group[-1].line) + 1)
        # Text blanked by the lexer was already reported; what is left of it would only
        # produce follow-on errors, so such a statement is dropped quietly.
        quiet = bool(blanked.intersection(lines))
        if opener is not None:
            if not quiet:
                diags.append(error(_tok_span(opener, path), f"unclosed '{opener.value}'",
                                   f"add '{OPEN[opener.type]}' before the end of the "
                                   "statement"))
            stmt = None
        elif quiet:
            stmt = None
        else:
            stmt = _parse_statement(group, path, diags)
        if stmt is None:
            broken.update(_declared_name(group))
        else:
            recipe.stmts.append(stmt)
    return recipe, diags, broken


def _declared_name(group: list[Token]) -> list[str]:
    """The name a (broken) statement was defining, if that much of it is readable."""
    types = [t.type for t in group]
    if types[:2] == ["NAME", "EQUAL"]:
        return [group[0].value]
    if types[:2] in (["PARAM", "NAME"], ["PIPELINE", "NAME"]):
        return [group[1].value]
    if types[:1] == ["USE"] and "AS" in types:
        i = types.index("AS")
        if i + 1 < len(group) and types[i + 1] == "NAME":
            return [group[i + 1].value]
    return []


def lex_all(text: str) -> list[Token]:
    """Every token including comments and newlines (for the formatter); assumes it lexes."""
    return list(grammar().lex(text, dont_ignore=True))


def _lex(text: str, path: str, diags: list[Diagnostic], blanked: set[int]) -> list[Token]:
    """Lex the whole text; each bad character or string is reported, then repaired (a
    single-quoted string) or blanked (anything else, its line added to `blanked`)."""
    for _ in range(MAX_LEX_ERRORS):
        try:
            return list(grammar().lex(text))
        except UnexpectedCharacters as e:
            diags.append(_char_error(e, text, path))
            text, repaired = _blank(text, e)
            if not repaired:
                blanked.add(e.line)
    return []


_JSON_ESCAPES = set('"\\/bfnrt')
_HEX = set("0123456789abcdefABCDEF")


def _bad_string(text: str, pos: int) -> tuple[int, int, bool, tuple[int, int] | None] | None:
    """The string literal that failed to lex at `pos` (its opening quote, or the quote after
    an `r` prefix): (start, end, closed, first bad escape as (index, length)). `end` is past
    the closing quote, or the end of the line when the string is unterminated."""
    if text[pos] != '"':
        return None
    raw = pos > 0 and text[pos - 1] == "r" and (pos < 2 or not _is_name_char(text[pos - 2]))
    start, i, bad = (pos - 1 if raw else pos), pos + 1, None
    while i < len(text) and text[i] != "\n":
        c = text[i]
        if c == '"':
            return start, i + 1, True, bad
        if c == "\\" and not raw:
            nxt = text[i + 1:i + 2]
            if nxt == "u":
                ok = len(text[i + 2:i + 6]) == 4 and set(text[i + 2:i + 6]) <= _HEX
                bad = bad or (None if ok else (i, 2))
                i += 6 if ok else 2
                continue
            if nxt and nxt in _JSON_ESCAPES:
                i += 2
                continue
            if not nxt or nxt == "\n":
                break
            bad = bad or (i, 2)
            i += 2
            continue
        i += 1
    return start, i, False, bad


def _is_name_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def _char_error(e: UnexpectedCharacters, text: str, path: str) -> Diagnostic:
    pos, col = e.pos_in_stream, e.column
    span = Span(path, e.line, col, e.line, col + 1)
    found = _bad_string(text, pos)
    if found is not None:
        start, end, closed, bad = found
        if closed and bad is not None:
            at, width = bad
            esc = text[at:at + width]
            return error(Span(path, e.line, col + at - pos, e.line, col + at - pos + width),
                         f"invalid escape '{esc}' in string",
                         "strings use JSON escapes (\\n \\t \\\" \\\\ \\uXXXX); "
                         "write r\"...\" for a raw string")
        return error(Span(path, e.line, col - (pos - start), e.line, col + end - pos),
                     "unterminated string", "close it with '\"' on the same line")
    ch = text[pos]
    if ch == "'":
        return error(span, "strings are double-quoted", "write \"...\" instead of '...'")
    return error(span, f"unexpected character {ch!r}")


def _blank(text: str, e: UnexpectedCharacters) -> tuple[str, bool]:
    """(new text, repaired): a single-quoted string on one line becomes double-quoted
    (repaired); a bad double-quoted string, or else the offending character, becomes spaces
    of the same length, so positions hold."""
    start = e.pos_in_stream
    end = start + 1
    if text[start] == "'":
        nl = text.find("\n", start)
        nl = len(text) if nl < 0 else nl
        close = text.find("'", start + 1, nl)
        inner = text[start + 1:close]
        if close > 0 and '"' not in inner and "\\" not in inner:
            return text[:start] + '"' + inner + '"' + text[close + 1:], True
        end = nl  # not a plain string after all: drop the rest of the line, report once
    found = _bad_string(text, start)
    if found is not None:
        start, end = found[0], found[1]
    return text[:start] + " " * (end - start) + text[end:], False


def _statements(tokens: list[Token]) -> list[tuple[list[Token], Token | None]]:
    """Group tokens into statements: (tokens, None), or (tokens, opener) for a statement
    whose bracket `opener` (the innermost one left open) is never closed."""
    groups: list[tuple[list[Token], Token | None]] = []
    cur: list[Token] = []
    stack: list[Token] = []
    for i, tok in enumerate(tokens):
        if tok.type == "_NL":
            nxt = _next_significant(tokens, i)
            # inside brackets, `NAME =` at column 1 is a new statement (the bracket was left
            # open) unless the line before ended with ',' or an opener: `mix(\na, b,\nn=2)`
            if stack and nxt is not None and _starts_statement(tokens, nxt) and (
                    tokens[nxt].type in STMT_KEYWORDS
                    or (cur[-1].type != "COMMA" and cur[-1].type not in OPEN)):
                groups.append((cur, stack[-1]))
                stack.clear()
                cur = []
            elif not stack and cur and not _continues(cur[-1], tokens, nxt):
                groups.append((cur, None))
                cur = []
            continue
        if tok.type in OPEN:
            stack.append(tok)
        elif tok.type in CLOSE and stack and OPEN[stack[-1].type] == tok.value:
            stack.pop()  # a mismatched closer is left to the parser to report
        cur.append(tok)
    if cur:
        groups.append((cur, stack[-1] if stack else None))
    return [g for g in groups if g[0]]


def _continues(last: Token, tokens: list[Token], nxt: int | None) -> bool:
    """A newline continues the statement after a trailing '|' or '=' or before a leading
    '|' -- unless the next line plainly starts a statement of its own."""
    if nxt is None:
        return False
    if tokens[nxt].type == "VBAR":
        return True
    return last.type in ("VBAR", "EQUAL") and not _starts_statement(tokens, nxt)


def _next_significant(tokens: list[Token], i: int) -> int | None:
    j = i + 1
    while j < len(tokens) and tokens[j].type == "_NL":
        j += 1
    return j if j < len(tokens) else None


def _starts_statement(tokens: list[Token], j: int) -> bool:
    tok = tokens[j]
    if tok.type in STMT_KEYWORDS:
        return True
    return (tok.type == "NAME" and tok.column == 1 and j + 1 < len(tokens)
            and tokens[j + 1].type == "EQUAL")


def _tok_span(tok: Token, path: str) -> Span:
    return Span(path, tok.line, tok.column, tok.end_line or tok.line,
                tok.end_column or tok.column + len(tok.value))


def _parse_statement(group: list[Token], path: str, diags: list[Diagnostic]) -> A.Stmt | None:
    from dcc.compiler.to_ast import to_ast

    for i, tok in enumerate(group):
        if tok.type != "NUMBER":
            continue
        span, text = _tok_span(tok, path), tok.value
        if _negates(group, i):  # -9223372036854775808 fits although its digits alone do not
            minus = group[i - 1]
            span, text = Span(path, minus.line, minus.column, span.end_line, span.end_col), \
                "-" + text
        problem = _number_problem(text)
        if problem:
            diags.append(error(span, problem))
            return None
    ip = grammar().parse_interactive(start="stmt")
    try:
        for tok in group:
            ip.feed_token(tok)
        tree = ip.feed_eof(group[-1])
    except UnexpectedToken as e:
        diags.append(_token_error(e, group, path))
        return None
    try:
        return to_ast(tree, path)
    except Exception as exc:  # a literal lark accepted but Python cannot decode
        from lark.exceptions import VisitError

        inner = exc.orig_exc if isinstance(exc, VisitError) else exc
        diags.append(error(_tok_span(group[0], path), f"invalid literal: {inner}"))
        return None


_OPERAND_END = {"NAME", "NUMBER", "STRING", "RAW_STRING", "RPAR", "RSQB", "RBRACE", "TRUE",
                "FALSE", "NULL"}


def _negates(group: list[Token], i: int) -> bool:
    """Whether the number at `i` follows a unary minus (one that the AST folds into it)."""
    return i > 0 and group[i - 1].type == "MINUS" and \
        (i < 2 or group[i - 2].type not in _OPERAND_END)


def _number_problem(text: str) -> str | None:
    """Numbers must fit what every layer can hold: finite doubles and 64-bit integers."""
    if any(c in text for c in ".eE"):
        if math.isinf(float(text)):
            return f"number {text} is too large (floats must be finite)"
        return None
    if not -(2 ** 63) <= int(text) < 2 ** 63:
        return f"integer {text} is out of range (integers are 64-bit)"
    return None


def _token_error(e: UnexpectedToken, group: list[Token], path: str) -> Diagnostic:
    tok = e.token
    if tok.type == "$END":
        last = group[-1]
        span = Span(path, last.end_line or last.line, last.end_column or last.column,
                    last.end_line or last.line, (last.end_column or last.column) + 1)
        shown = "end of statement"
    else:
        span = _tok_span(tok, path)
        shown = f"'{tok.value}'"
    if tok.type != "$END" and tok.value in KEYWORDS and "NAME" in e.expected:
        return error(span, f"'{tok.value}' is a reserved word and cannot be used as a name",
                     "pick another name")
    label = _missing_comma(tok, group)
    if label is None:
        label = _classify(e)
    if label:
        return error(span, f"{label} (found {shown})")
    expected = ", ".join(sorted(_describe(t) for t in e.expected if not t.startswith("_")))
    return error(span, f"unexpected {shown}", f"expected one of: {expected}" if expected else None)


_ENDS_VALUE = {"NAME", "NUMBER", "STRING", "RAW_STRING", "RPAR", "RSQB", "RBRACE", "TRUE",
               "FALSE", "NULL"}
_STARTS_VALUE = {"NAME", "NUMBER", "STRING", "RAW_STRING", "LPAR", "LSQB", "LBRACE", "TRUE",
                 "FALSE", "NULL", "EVOLVE"}
_BETWEEN = {"LPAR": "arguments", "LSQB": "list items", "LBRACE": "dict entries"}


def _missing_comma(tok: Token, group: list[Token]) -> str | None:
    """Two values side by side inside a call's parentheses, a list or a dict: a missing ','.

    Decided from the brackets around the token rather than by example, because the parser
    state after a value differs for every kind of value (a string, `true`, `g()`, ...).
    None: not this kind of mistake; "": a mistake no label describes (say only "unexpected").
    """
    at = next((i for i, t in enumerate(group) if t is tok), None)
    if at is None or at == 0 or tok.type not in _STARTS_VALUE \
            or group[at - 1].type not in _ENDS_VALUE:
        return None
    stack: list[int] = []
    for i in range(at):
        if group[i].type in OPEN:
            stack.append(i)
        elif group[i].type in CLOSE and stack:
            stack.pop()
    if not stack:
        return None
    opener = stack[-1]
    if group[opener].type == "LPAR" and (opener == 0 or group[opener - 1].type not in
                                         ("NAME", "EVOLVE")):
        return None  # a parenthesised expression, not a call
    if group[at - 1].end_pos == tok.start_pos:
        return ""  # `1.2.3`, `"a"b`: one malformed token, not two values; no label fits
    return f"missing ',' between {_BETWEEN[group[opener].type]}"


def _classify(e: UnexpectedInput) -> str | None:
    """The label of the example whose parser state stack ends most like this error's.

    lark's `match_examples` compares whole stack depths, so `f(a=1 b=2)` matched only as a
    binding's first term, never inside a pipe. Comparing the top of the stack (the states
    that led to the error) classifies the same mistake wherever it is nested.
    """
    stack = _stack(e)
    if not stack:
        return None
    token = getattr(e, "token", None)
    best: tuple[int, bool] = (0, False)
    label = None
    for ex_label, ex_stack, ex_type in _example_states():
        common = _common_suffix(stack, ex_stack)
        if common < min(2, len(ex_stack)):
            continue
        score = (common, token is not None and token.type == ex_type)
        if score > best:
            best, label = score, ex_label
    return label


def _stack(e: UnexpectedInput) -> list[int]:
    state = getattr(e, "state", None)
    return list(getattr(state, "state_stack", None) or [])


def _common_suffix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < len(a) and n < len(b) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


@lru_cache(maxsize=1)
def _example_states() -> tuple[tuple[str, list[int], str], ...]:
    """(label, state stack, offending token type) for every example in the table."""
    out = []
    for label, examples in SYNTAX_EXAMPLES.items():
        for text in examples:
            try:
                grammar().parse(text, start="stmt")
            except UnexpectedToken as e:
                out.append((label, _stack(e), e.token.type))
            except UnexpectedInput:  # pragma: no cover - examples only fail on tokens
                continue
    return tuple(out)


_NAMES = {"NAME": "a name", "NUMBER": "a number", "STRING": "a string",
          "RAW_STRING": "a raw string", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['",
          "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'", "COMMA": "','", "EQUAL": "'='",
          "VBAR": "'|'", "DOT": "'.'", "COLON": "':'", "$END": "end of statement"}


def _describe(term: str) -> str:
    return _NAMES.get(term, f"'{term.lower()}'")

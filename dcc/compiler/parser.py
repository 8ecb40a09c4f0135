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
            "false", "null"}
MAX_LEX_ERRORS = 50


@lru_cache(maxsize=1)
def grammar() -> Lark:
    """The parser, built once per process; lark caches its tables on disk between runs."""
    return Lark.open("recipe.lark", rel_to=__file__, parser="lalr", lexer="basic",
                     propagate_positions=True, start=["start", "stmt"], cache=True)


def parse(text: str, path: str) -> tuple[A.Recipe, list[Diagnostic]]:
    """Parse a recipe file; returns the statements that parsed and every diagnostic."""
    register_source(path, text)
    diags: list[Diagnostic] = []
    tokens = _lex(text, path, diags)
    bad_lines = {d.span.line for d in diags if d.span}
    recipe = A.Recipe(path)
    for group in _statements(tokens, path, diags):
        lines = range(group[0].line, (group[-1].end_line or group[-1].line) + 1)
        sink: list[Diagnostic] = [] if bad_lines.intersection(lines) else diags
        stmt = _parse_statement(group, path, sink)
        if stmt is not None:
            recipe.stmts.append(stmt)
    return recipe, diags


def lex_all(text: str) -> list[Token]:
    """Every token including comments and newlines (for the formatter); assumes it lexes."""
    return list(grammar().lex(text, dont_ignore=True))


def _lex(text: str, path: str, diags: list[Diagnostic]) -> list[Token]:
    for _ in range(MAX_LEX_ERRORS):
        try:
            return list(grammar().lex(text))
        except UnexpectedCharacters as e:
            diags.append(_char_error(e, text, path))
            text = _blank(text, e)
    return []


def _char_error(e: UnexpectedCharacters, text: str, path: str) -> Diagnostic:
    span = Span(path, e.line, e.column, e.line, e.column + 1)
    ch = text[e.pos_in_stream]
    if ch == '"' or text[e.pos_in_stream:e.pos_in_stream + 2] == 'r"':
        line_end = text.find("\n", e.pos_in_stream)
        rest = text[e.pos_in_stream:line_end if line_end >= 0 else len(text)]
        if "\\" in rest and rest.count('"') > 1:
            return error(span, "invalid escape in string",
                         "strings use JSON escapes (\\n \\t \\\" \\\\ \\uXXXX); "
                         "write r\"...\" for a raw string")
        return error(span, "unterminated string", "close it with '\"' on the same line")
    if ch == "'":
        return error(span, "strings are double-quoted", "write \"...\" instead of '...'")
    return error(span, f"unexpected character {ch!r}")


def _blank(text: str, e: UnexpectedCharacters) -> str:
    """Blank the offending character (or the rest of the line for a bad string)."""
    start = e.pos_in_stream
    end = start + 1
    if text[start] == "'":
        close = text.find("'", start + 1)
        nl = text.find("\n", start)
        if close > 0 and (nl < 0 or close < nl) and '"' not in text[start:close]:
            return text[:start] + '"' + text[start + 1:close] + '"' + text[close + 1:]
    if text[start] == '"' or text[start:start + 2] == 'r"':
        nl = text.find("\n", start)
        end = nl if nl >= 0 else len(text)
    return text[:start] + " " * (end - start) + text[end:]


def _statements(tokens: list[Token], path: str, diags: list[Diagnostic]) -> list[list[Token]]:
    groups: list[list[Token]] = []
    cur: list[Token] = []
    stack: list[Token] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "_NL":
            nxt = _next_significant(tokens, i)
            if stack and nxt is not None and _starts_statement(tokens, nxt):
                opener = stack[0]
                diags.append(error(_tok_span(opener, path),
                                   f"unclosed '{opener.value}'",
                                   f"add '{OPEN[opener.type]}' before the end of the statement"))
                stack.clear()
                cur = []  # reported; parsing it would only repeat the same problem
            elif not stack and cur and not _continues(cur[-1], tokens, nxt):
                groups.append(cur)
                cur = []
            i += 1
            continue
        if tok.type in OPEN:
            stack.append(tok)
        elif tok.type in CLOSE and stack:
            stack.pop()
        cur.append(tok)
        i += 1
    if stack and cur:
        opener = stack[0]
        diags.append(error(_tok_span(opener, path), f"unclosed '{opener.value}'",
                           f"add '{OPEN[opener.type]}' before the end of the statement"))
        return [g for g in groups if g]
    if cur:
        groups.append(cur)
    return [g for g in groups if g]


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
    label = _classify(e)
    if label:
        return error(span, f"{label} (found {shown})")
    expected = ", ".join(sorted(_describe(t) for t in e.expected if not t.startswith("_")))
    return error(span, f"unexpected {shown}", f"expected one of: {expected}" if expected else None)


def _classify(e: UnexpectedInput) -> str | None:
    try:
        return e.match_examples(lambda s: grammar().parse(s, start="stmt"), SYNTAX_EXAMPLES,
                                use_accepts=False)
    except Exception:  # classification is best effort; the fallback message still helps
        return None


_NAMES = {"NAME": "a name", "NUMBER": "a number", "STRING": "a string",
          "RAW_STRING": "a raw string", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['",
          "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'", "COMMA": "','", "EQUAL": "'='",
          "VBAR": "'|'", "DOT": "'.'", "COLON": "':'", "$END": "end of statement"}


def _describe(term: str) -> str:
    return _NAMES.get(term, f"'{term.lower()}'")

"""`dcc fmt`: exact layouts, and for generated recipes the three properties that matter --
formatting is idempotent, keeps the meaning (same AST once spans are ignored) and keeps every
comment exactly once."""

from __future__ import annotations

import itertools
import json
import os
import re
import textwrap
from collections import Counter
from dataclasses import fields, is_dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcc.compiler import ast as A
from dcc.compiler.fmt import format_file, format_text
from dcc.compiler.parser import lex_all, parse
from dcc.errors import RecipeError
from dcc.spans import Span

# -- helpers ---------------------------------------------------------------------------------


def without_spans(obj: Any) -> Any:
    """An AST value as nested tuples, every Span (field or tuple member) left out."""
    if isinstance(obj, Span):
        return "<span>"
    if is_dataclass(obj) and not isinstance(obj, type):
        return (type(obj).__name__,) + tuple(
            (f.name, without_spans(getattr(obj, f.name))) for f in fields(obj)
            if not isinstance(getattr(obj, f.name), Span))
    if isinstance(obj, (list, tuple)):
        return tuple(without_spans(x) for x in obj)
    return obj


def ast_of(text: str) -> Any:
    recipe, diags = parse(text, "t.recipe")
    assert not [d for d in diags if d.is_error], [d.render() for d in diags]
    return without_spans(recipe.stmts)


def comments(text: str) -> Counter[str]:
    return Counter(t.value.rstrip(" \t\r\f") for t in lex_all(text) if t.type == "COMMENT")


def fmt(text: str) -> str:
    return format_text(text, "t.recipe")


def check_properties(text: str) -> str:
    out = fmt(text)
    assert fmt(out) == out, "not idempotent"
    assert ast_of(out) == ast_of(text), "meaning changed"
    assert comments(out) == comments(text), "a comment was lost or duplicated"
    if out:
        assert out.endswith("\n") and not out.endswith("\n\n") and not out.startswith("\n")
    assert "\n\n\n" not in out and "\r" not in out  # (inputs here have CR only in line ends)
    for line in out.split("\n"):
        assert line == line.rstrip(" \t"), repr(line)
    return out


def test_span_blind_comparison_still_sees_meaning() -> None:
    a = parse('x = f(a=1)\n', "p")[0].stmts
    b = parse('x  =  f( a = 1 )\n', "q")[0].stmts
    c = parse('x = f(a=2)\n', "p")[0].stmts
    assert a != b and without_spans(a) == without_spans(b)
    assert without_spans(a) != without_spans(c)
    pipe = parse('pipeline p(u, v) = u | v\n', "p")[0].stmts[0]
    assert isinstance(pipe, A.PipelineDecl) and "<span>" in str(without_spans(pipe))


# -- the design document's example is (almost) a fixed point ----------------------------------

DESIGN_EXAMPLE = """\
# comments start with '#'
recipe alpaca_sft

param teacher = "Qwen/Qwen2.5-0.5B-Instruct"   # overridable: dcc build r.recipe --set teacher=...
param min_len = 16

use "lib/cleaning.recipe" as cleaning

raw = load.jsonl("data/alpaca.jsonl")

pipeline tidy(field) =
    rewrite.normalize(fields=[field])
  | select.length(field=field, min=min_len)

clean = raw
  | tidy(field="output")
  | select.dedup(fields=["instruction"], method="minhash", threshold=0.85)

best = clean | select.ifd(model=teacher, keep=0.3)

grown = evolve(best, rounds=3) {
    synthesize.evol_instruct(model=teacher)
  | distill.respond(model=teacher)
  | select.judge(model=teacher, min_score=7)
}

export concat(best, grown) to "out/train.jsonl"
"""


def test_design_example_round_trips() -> None:
    out = check_properties(DESIGN_EXAMPLE)
    # the only change: two spaces (not three) before a trailing comment
    assert out == DESIGN_EXAMPLE.replace('"   # overridable', '"  # overridable')


def test_design_example_from_a_single_line_mess() -> None:
    squashed = (
        "# comments start with '#'\nrecipe alpaca_sft\n\n"
        'param teacher="Qwen/Qwen2.5-0.5B-Instruct"  # overridable: dcc build r.recipe --set teacher=...\n'
        "param min_len=16\n\nuse \"lib/cleaning.recipe\" as cleaning\n\n"
        'raw=load.jsonl("data/alpaca.jsonl")\n\n'
        "pipeline tidy(field)=rewrite.normalize(fields=[field])|select.length(field=field,min=min_len)\n\n"
        'clean=raw|tidy(field="output")|select.dedup(fields=["instruction"],method="minhash",threshold=0.85)\n\n'
        "best=clean|select.ifd(model=teacher,keep=0.3)\n\n"
        "grown=evolve(best,rounds=3){synthesize.evol_instruct(model=teacher)|distill.respond(model=teacher)"
        "|select.judge(model=teacher,min_score=7)}\n\n"
        'export concat(best,grown) to "out/train.jsonl"'
    )
    assert check_properties(squashed) == fmt(DESIGN_EXAMPLE)


def test_examples_in_the_formatting_doc_are_formatted() -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "docs", "formatting.md"), encoding="utf-8") as f:
        doc = f.read()
    blocks = [textwrap.dedent(b) for b in re.findall(r"^( *)```\n(.*?)^\1```", doc, re.DOTALL | re.MULTILINE)
              for b in [b[1]]]
    assert len(blocks) >= 3
    for block in blocks:
        assert check_properties(block) == block


# -- exact layouts ---------------------------------------------------------------------------

LONG = "x" * 60

CASES: list[tuple[str, str, str]] = [
    (
        "messy spacing, blank lines collapsed, none at the start, one newline at the end",
        ('\n\n\nrecipe    demo\n\n\n\nparam  n=5\nparam   s =  "a\\u00e9\\/b"\n'
         'use  "lib/x.recipe"   as   lib\nraw=load . jsonl( "a.jsonl" )\n\n\n\n'
         'export   raw   to   "out.jsonl"\n\n\n'),
        ('recipe demo\n\nparam n = 5\nparam s = "aé/b"\nuse "lib/x.recipe" as lib\n'
         'raw = load.jsonl("a.jsonl")\n\nexport raw to "out.jsonl"\n'),
    ),
    (
        "literals: JSON escapes, raw strings kept raw, numbers keep their text, dict keys quoted",
        ('x = f(a = [ 1 , -2.50, 1e5 , .5, 3. ] , b = { k : r"\\d+\\s", "q\\"" : null, },'
         ' c=true,d=false, e="tab\\there\\u0001", g = [], h = {})\n'),
        ('x = f(\n    a=[1, -2.50, 1e5, .5, 3.],\n    b={"k": r"\\d+\\s", "q\\"": null},\n'
         '    c=true,\n    d=false,\n    e="tab\\there\\u0001",\n    g=[],\n    h={},\n)\n'),
    ),
    (
        "a pipe that fits stays on one line; parentheses are dropped",
        ("y = (a |\n   (f() | g(x = 1)))\n"
         "z = a\n  | b\n"),
        "y = a | f() | g(x=1)\nz = a | b\n",
    ),
    (
        "a long pipe: head on the first line, then one `  | stage` per line",
        f'clean = raw | tidy(field="{LONG}") | select.dedup(fields=["instruction"], threshold=0.85)\n',
        f'clean = raw\n  | tidy(field="{LONG}")\n  | select.dedup(fields=["instruction"], threshold=0.85)\n',
    ),
    (
        "a long argument list: one argument per line, indented 4, trailing comma",
        (f'x = src | select.length(field="{LONG}", min=1, max=2000, tokenizer="whitespace")\n'
         f'y = load.jsonl("{LONG}{LONG}")\n'),
        ("x = src\n  | select.length(\n"
         f'        field="{LONG}",\n        min=1,\n        max=2000,\n'
         '        tokenizer="whitespace",\n    )\n'
         f'y = load.jsonl(\n    "{LONG}{LONG}",\n)\n'),
    ),
    (
        "a pipe as an argument stays bare; nested brackets break from the outside in",
        f'export concat(a | f(), b | g(k="{LONG}"), [1, 2]) to "out.jsonl"\n',
        f'export concat(\n    a | f(),\n    b | g(k="{LONG}"),\n    [1, 2],\n) to "out.jsonl"\n',
    ),
    (
        "pipelines: one stage on one line, two or more stages as a block",
        ("pipeline one(f) = rewrite.normalize(fields=[f])\n"
         "pipeline two( f, g, ) = a(f) | b(g)\n"
         "pipeline none() = a()\n"),
        ("pipeline one(f) = rewrite.normalize(fields=[f])\n"
         "pipeline two(f, g) =\n    a(f)\n  | b(g)\n"
         "pipeline none() = a()\n"),
    ),
    (
        "evolve always opens a block; inside a stage or argument it is indented with them",
        ("g = evolve(s, rounds=2) { gen() }\n"
         "h = s | evolve(s) { gen() | judge(min=7) } | top(k=3)\n"
         "k = mix(evolve() { gen() }, b)\n"),
        ("g = evolve(s, rounds=2) {\n    gen()\n}\n"
         "h = s\n  | evolve(s) {\n        gen()\n      | judge(min=7)\n    }\n  | top(k=3)\n"
         "k = mix(\n    evolve() {\n        gen()\n    },\n    b,\n)\n"),
    ),
    (
        "comments everywhere: statements, stages, arguments, brackets, blocks, end of file",
        ("# header\n\n\n# about raw\nraw = load.jsonl(\"a.jsonl\")   # trailing\n"
         "clean = raw |  # after a pipe\n  # before f\n  f(a=1,# on a\n  b=2) |\n  g()  # on g\n"
         "\n\n# before grown\ngrown = evolve(clean,  # open\n rounds=3) {  # brace\n"
         "  # first\n  gen()\n  # second\n  | judge()   # judge\n  # dangling\n}\n"
         "pipeline p(x) =  # eq\n  f(x)\nexport [  # open list\n  grown, # item\n] to \"o.jsonl\"\n\n\n"
         "# the end\n#   more  \n"),
        ("# header\n\n# about raw\nraw = load.jsonl(\"a.jsonl\")  # trailing\n"
         "clean = raw  # after a pipe\n  # before f\n  | f(\n        a=1,  # on a\n        b=2,\n    )\n"
         "  | g()  # on g\n"
         "\n# before grown\ngrown = evolve(\n    clean,  # open\n    rounds=3,\n) {  # brace\n"
         "    # first\n    gen()\n  # second\n  | judge()  # judge\n    # dangling\n}\n"
         "pipeline p(x) =  # eq\n    f(x)\nexport [  # open list\n    grown,  # item\n] to \"o.jsonl\"\n\n"
         "# the end\n#   more\n"),
    ),
    (
        ("comments with no line of their own move above their element; blank lines between "
         "comment blocks are kept (one), not right after an opening line"),
        ("x = # after =\n  f(\n\n  # a\n\n  # b\n  k # inside an argument\n  = 1,\n\n  # c\n  m=2)\n"
         "y = g(load # in a dotted name\n .jsonl(\"p\"))\n"),
        ("# after =\nx = f(\n    # a\n\n    # b\n    # inside an argument\n    k=1,\n\n    # c\n    m=2,\n)\n"
         "y = g(\n    # in a dotted name\n    load.jsonl(\"p\"),\n)\n"),
    ),
    (
        "a statement's trailing comment stays at its end even when the pipe fits",
        "x = a\n  | b  # on b\ny = (a | b  # inside parens\n)\n",
        "x = a | b  # on b\ny = a | b  # inside parens\n",
    ),
    (
        "only comments, CRLF line endings",
        "\r\n# one\r\n\r\n\r\n   # two  \r\n",
        "# one\n\n# two\n",
    ),
    ("an empty file stays empty", "\n\n  \n", ""),
]


@pytest.mark.parametrize("source,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_exact_layout(source: str, expected: str) -> None:
    assert check_properties(source) == expected


def test_lone_surrogate_escape_stays_an_escape() -> None:
    out = check_properties('x = f(a="\\ud800 \\ud83d\\ude00")\n')
    assert out == 'x = f(a="\\ud800 \U0001f600")\n'
    out.encode("utf-8")


def test_lines_stay_within_100_columns_when_they_can() -> None:
    args = ", ".join(f'arg{i}="{i * "v"}"' for i in range(30))
    pairs = ", ".join(f'"k{i}": [{i}, "{i * "w"}"]' for i in range(30))
    out = check_properties(f"x = src | op({args}) | op2([{{{pairs}}}, [1, 2]])\n")
    assert max(len(line) for line in out.splitlines()) <= 100
    assert '  | op2(\n        [\n            {\n                "k0": [0, ""],\n' in out
    assert "            [1, 2],\n" in out


def test_syntax_errors_are_refused() -> None:
    with pytest.raises(RecipeError) as e:
        fmt("x = f(a=1\ny = 'str'\n")
    assert e.value.diagnostics and all(d.is_error for d in e.value.diagnostics)


def test_unresolved_names_are_fine() -> None:
    assert fmt("x=nowhere.op(y=undefined)") == "x = nowhere.op(y=undefined)\n"


# -- generated recipes -----------------------------------------------------------------------

NAMES = ["a", "b", "raw", "clean", "x1", "_t", "r", "to_", "evolved", "teacher", "Field"]
QUALS = ["select.length", "rewrite.normalize", "load.jsonl", "concat", "f", "a.b.c", "mix", "r"]
NUMBERS = ["0", "16", "-3", "007", "0.85", "1e5", "-2.5E-3", ".5", "3.", "-.25", "123456789"]
STR_CHARS = st.sampled_from(list('ab #|"\\/\n\t\x00\x1f\x7fé中\u2028😀') + ["x", "y"])
RAW_CHARS = st.sampled_from(list("\\d+[^]#|é\t .*(){}") + ["w", "s"])
COMMENT_CHARS = list(' abc#|"\\/\t{}()=é中😀\u00a0\u2028\x0b\x7f')
WORDY = re.compile(r'^[A-Za-z0-9_".\-]|[A-Za-z0-9_".]$')


class Tok:
    """A token of generated text; `nl` says a line break may come before it."""

    def __init__(self, text: str, nl: bool = False) -> None:
        self.text, self.nl = text, nl


def _inside(toks: list[Tok]) -> list[Tok]:
    for t in toks:
        t.nl = True
    return toks


@st.composite
def literal(draw: Any) -> list[Tok]:
    kind = draw(st.sampled_from(["num", "num", "str", "str", "raw", "true", "false", "null"]))
    if kind == "num":
        return [Tok(draw(st.one_of(st.sampled_from(NUMBERS), st.integers(-99, 10**6).map(str))))]
    if kind == "str":
        text = json.dumps(draw(st.text(STR_CHARS, max_size=8)), ensure_ascii=draw(st.booleans()))
        return [Tok(text.replace("/", "\\/") if draw(st.booleans()) else text)]
    if kind == "raw":
        return [Tok('r"' + draw(st.text(RAW_CHARS, max_size=8)) + '"')]
    return [Tok(kind)]


def bracket(open_: str, parts: list[list[Tok]], close: str, comma: bool) -> list[Tok]:
    inner: list[Tok] = []
    for k, part in enumerate(parts):
        if k:
            inner.append(Tok(","))
        inner += part
    if parts and comma:
        inner.append(Tok(","))
    return [Tok(open_)] + _inside(inner + [Tok(close)])


@st.composite
def expr(draw: Any, depth: int) -> list[Tok]:
    if depth > 0 and draw(st.integers(0, 3)) == 0:
        stages = [draw(term(depth - 1)) for _ in range(draw(st.integers(2, 4)))]
        out = list(stages[0])
        for stage in stages[1:]:
            stage[0].nl = True
            out += [Tok("|", nl=True)] + stage
        return out
    return draw(term(depth))


def qualname(name: str) -> list[Tok]:
    parts = name.split(".")
    out = [Tok(parts[0])]
    for p in parts[1:]:
        out += [Tok("."), Tok(p)]
    return out


@st.composite
def args(draw: Any, depth: int, max_n: int = 4) -> list[list[Tok]]:
    out = []
    for _ in range(draw(st.integers(0, max_n))):
        value = draw(expr(depth - 1))
        if draw(st.booleans()):
            out.append([Tok(draw(st.sampled_from(NAMES))), Tok("=")] + value)
        else:
            out.append(value)
    return out


@st.composite
def term(draw: Any, depth: int) -> list[Tok]:
    kinds = ["ref", "lit"] + (["call", "call", "list", "dict", "paren", "evolve"] if depth > 0 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "ref":
        return qualname(draw(st.sampled_from(QUALS)))
    if kind == "lit":
        return draw(literal())
    if kind == "call":
        a = draw(args(depth))
        return qualname(draw(st.sampled_from(QUALS))) + bracket("(", a, ")", draw(st.booleans()))
    if kind == "list":
        items = [draw(expr(depth - 1)) for _ in range(draw(st.integers(0, 4)))]
        return bracket("[", items, "]", draw(st.booleans()))
    if kind == "dict":
        pairs = []
        for _ in range(draw(st.integers(0, 3))):
            key = draw(st.one_of(st.sampled_from(NAMES), literal().filter(
                lambda t: t[0].text.startswith(('"', 'r"'))).map(lambda t: t[0].text)))
            pairs.append([Tok(key), Tok(":")] + draw(expr(depth - 1)))
        return bracket("{", pairs, "}", draw(st.booleans()))
    if kind == "paren":
        return [Tok("(")] + _inside(draw(expr(depth - 1)) + [Tok(")")])
    a = draw(args(depth, 2))
    return ([Tok("evolve")] + bracket("(", a, ")", draw(st.booleans()))
            + [Tok("{")] + _inside(draw(expr(depth - 1)) + [Tok("}")]))


@st.composite
def statement(draw: Any) -> list[Tok]:
    kind = draw(st.sampled_from(["recipe", "param", "use", "bind", "bind", "bind", "pipeline",
                                 "export"]))
    name = draw(st.sampled_from(NAMES))
    depth = draw(st.integers(1, 3))
    if kind == "recipe":
        return [Tok("recipe"), Tok(name)]
    if kind == "use":
        return [Tok("use"), Tok(json.dumps(draw(st.text("ab/.", max_size=6)))), Tok("as"), Tok(name)]
    if kind == "export":
        return ([Tok("export")] + draw(expr(depth)) + [Tok("to"), Tok('"out/x.jsonl"')])
    if kind == "pipeline":
        params = [[Tok(n)] for n in draw(st.lists(st.sampled_from(NAMES), max_size=3))]
        head = [Tok("pipeline"), Tok(name)] + bracket("(", params, ")", draw(st.booleans()))
    else:
        head = ([Tok("param")] if kind == "param" else []) + [Tok(name)]
    value = draw(literal()) if kind == "param" and draw(st.booleans()) else draw(expr(depth))
    value[0].nl = True  # a line may break after '='
    return head + [Tok("=")] + value


@st.composite
def recipe_text(draw: Any) -> str:
    """Statements drawn by hypothesis; the white space, line breaks and comments between their
    tokens come from one seeded Random (far fewer draws, so the test stays fast)."""
    rnd = draw(st.randoms(use_true_random=False))
    nl = rnd.choice(["\n", "\n", "\r\n"])

    def comment() -> str:
        return "#" + "".join(rnd.choice(COMMENT_CHARS) for _ in range(rnd.randint(0, 10)))

    def spaces(minimum: int) -> str:
        return rnd.choice([" ", " ", "  ", "\t", " \t "] if minimum else ["", "", " ", "  ", "\t"])

    def filler(indent_min: int) -> str:
        """End of line (maybe a comment), then blank and comment lines, then indentation."""
        out = (spaces(1) + comment() if rnd.randint(0, 2) == 0 else "") + nl
        for _ in range(rnd.randint(0, 2)):
            out += rnd.choice(["", " ", "  ", "\t"]) + (comment() if rnd.random() < 0.5 else "") + nl
        return out + (" " * rnd.randint(indent_min, 6) if indent_min else "")

    parts = [filler(0)] if rnd.random() < 0.5 else []
    for k in range(draw(st.integers(0, 6))):
        if k:
            parts.append(filler(0))
        toks = draw(statement())
        line = toks[0].text
        for prev, tok in itertools.pairwise(toks):
            if tok.nl and rnd.randint(0, 3) == 0:
                line += filler(1)
            else:
                wordy = WORDY.search(prev.text[-1:]) and WORDY.search(tok.text[:1])
                line += spaces(1 if wordy else 0)
            line += tok.text
        parts.append(line)
    if rnd.random() < 0.5:
        parts.append(filler(0))
    return "".join(parts)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(recipe_text())
def test_generated_recipes(text: str) -> None:
    check_properties(text)


# -- files and the command line --------------------------------------------------------------


def test_format_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.recipe"
    messy = "x=load.jsonl( 'a' )\n".replace("'", '"')
    path.write_bytes(messy.encode())
    os.chmod(path, 0o640)
    assert format_file(str(path), write=False) is True
    assert path.read_bytes() == messy.encode()

    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        replaced.append((os.fspath(src), os.fspath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    assert format_file(str(path), write=True) is True
    assert path.read_text() == 'x = load.jsonl("a")\n'
    (src, dst), = replaced
    assert dst == str(path) and os.path.dirname(src) == str(tmp_path)
    assert os.path.basename(src).startswith(f".dcc-tmp-{os.getpid()}-")
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.recipe"]

    before = os.stat(path)
    assert format_file(str(path), write=True) is False
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns and len(replaced) == 1


def test_format_file_through_a_symlink(tmp_path: Any) -> None:
    target = tmp_path / "real.recipe"
    target.write_text("x=a\n")
    link = tmp_path / "link.recipe"
    link.symlink_to(target)
    assert format_file(str(link), write=True) is True
    assert link.is_symlink() and target.read_text() == "x = a\n"


def test_format_file_crlf_and_errors(tmp_path: Any) -> None:
    path = tmp_path / "r.recipe"
    path.write_bytes(b"recipe r\r\n")
    assert format_file(str(path), write=True) is True
    assert path.read_bytes() == b"recipe r\n"
    path.write_bytes(b"x = f(\n")
    with pytest.raises(RecipeError):
        format_file(str(path), write=True)
    assert path.read_bytes() == b"x = f(\n"


def test_cli_fmt_check(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from dcc.cli import main

    def run(*argv: str) -> int:
        try:
            main(["fmt", *argv])
        except SystemExit as e:
            return int(e.code or 0)
        return 0

    path = tmp_path / "r.recipe"
    path.write_text("x=a|b\n")
    assert run(str(path), "--check") == 1
    assert "would be reformatted" in capsys.readouterr().err
    assert path.read_text() == "x=a|b\n"
    assert run(str(path)) == 0
    assert path.read_text() == "x = a | b\n"
    assert run(str(path), "--check") == 0
    path.write_text("x = f(\n")
    assert run(str(path), "--check") == 1
    assert "unclosed '('" in capsys.readouterr().err

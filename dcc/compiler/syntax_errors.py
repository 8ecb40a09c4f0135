"""Syntax errors classified by example, as lark recommends (`UnexpectedInput.match_examples`).

Each message maps to malformed statements that produce it; an error whose parser state
matches one of them gets that message. Anything unmatched falls back to lark's list of
expected tokens, rephrased for people.
"""

from __future__ import annotations

SYNTAX_EXAMPLES: dict[str, list[str]] = {
    "expected an operator after '|'": [
        "x = a |",
        "x = a | | b",
        "x = a | )",
        "x = a | b |",
        "x = a | b | )",
        "x = (a |)",
        "x = f(a=b |)",
    ],
    "expected a value after the operator": [
        "x = f(a=-)",
        "x = f(a > )",
        "x = f(a >= )",
        "x = f(a == )",
        "x = f(a + )",
        "x = f(a * )",
        "x = f(a / )",
        "x = f(a - )",
        "x = f(a and)",
        "x = f(a or)",
        "x = f(not)",
        "x = f(a in)",
        "x = f(a=not)",
    ],
    "comparisons do not chain; join them with 'and'": [
        "x = f(a < b < c)",
        "x = f(a == b == c)",
        "x = f(a < b in c)",
    ],
    "expected an expression after '='": [
        "x =",
        "x = )",
        "param p =",
        "x = f(a=)",
        "x = f(a=,)",
    ],
    "missing ',' between arguments": [
        "x = f(a=1 b=2)",
        "x = f(1 2)",
        "x = f(a=\"s\" b=2)",
        "x = f(a=[1] b=2)",
        "x = f(a=g() b=2)",
        "x = f(a b)",
        "x = f(a.b c)",
    ],
    "missing ',' between list items": [
        "x = f(a=[1 2])",
        "x = f(a=[\"a\" \"b\"])",
    ],
    "expected 'to \"path\"' after the exported dataset": [
        "export x",
        "export x \"out.jsonl\"",
        "export x | f() \"out.jsonl\"",
        "export x | f \"out.jsonl\"",
        "export x | f | g \"out.jsonl\"",
    ],
    "expected the dataset to export after 'export'": ["export"],
    "expected a double-quoted path after 'to'": [
        "export x to",
        "export x to out",
    ],
    "expected 'as NAME' after the imported path": [
        "use \"lib.recipe\"",
        "use \"lib.recipe\" lib",
    ],
    "expected a name after 'as'": [
        "use \"lib.recipe\" as",
        "use \"lib.recipe\" as 1",
    ],
    "expected a double-quoted path after 'use'": [
        "use lib",
        "use",
    ],
    "a statement must be 'NAME = ...', 'param', 'use', 'pipeline', 'export' or 'recipe'": [
        "x",
        "x | f()",
        "f()",
        "1",
        "\"text\"",
        "x.y = 1",
    ],
    "expected a name after 'recipe'": ["recipe", "recipe \"x\"", "recipe 1"],
    "expected 'NAME = value' after 'param'": ["param", "param p", "param 1 = 2", "param p 1"],
    "expected '=' after the pipeline's parameter list": [
        "pipeline p(a) a",
        "pipeline p(a)",
    ],
    "expected '(' and a parameter list after the pipeline's name": [
        "pipeline p = a",
        "pipeline p",
    ],
    "expected a name after '.'": ["x = a.", "x = a.1"],
    "expected '{' and the chain each round runs after evolve(...)": [
        "x = evolve(a, rounds=1)",
        "x = evolve(a, rounds=1) f()",
    ],
}

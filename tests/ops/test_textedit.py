"""rewrite.* rule operators (dcc/ops/textedit.py): a table of PII cases and PII found by hand
in the shared data, the template sandbox, alpaca <-> chat round trips on real data, and one
end-to-end build of a recipe that uses every operator of rules.py and textedit.py."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest

from dcc import ops
from dcc.errors import ParamError
from dcc.ops.base import RunContext
from dcc.ops.rules import ColumnTypeError
from dcc.ops.textedit import (
    KINDS,
    RewriteFromChat,
    RewritePii,
    RewriteTemplate,
    RewriteToChat,
    TemplateError,
    _luhn,
    redact,
)
from dcc.schema import Schema


def run(op, df: pl.DataFrame, ctx: RunContext | None = None) -> pl.DataFrame:
    return op.run([df], ctx or RunContext(node="t"))


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def pii(*texts: str | None, kinds: tuple[str, ...] = KINDS) -> list[str | None]:
    return redact(pl.Series("t", list(texts), dtype=pl.String), kinds)[0].to_list()


# -- PII: a table of positive and negative cases ----------------------------------------------
@pytest.mark.parametrize("text, expected", [
    # email
    ("write to jane.doe+tag@mail.example.co.uk today", "write to [EMAIL] today"),
    ("(cpurdie@email.com),", "([EMAIL]),"),
    ("a@b.c is too short a TLD; so is @decorator", "a@b.c is too short a TLD; so is @decorator"),
    # credit cards: Luhn-valid numbers only
    ("visa 4111 1111 1111 1111.", "visa [CREDIT_CARD]."),
    ("visa 4111-1111-1111-1111", "visa [CREDIT_CARD]"),
    ("amex 378282246310005 and 3782 822463 10005", "amex [CREDIT_CARD] and [CREDIT_CARD]"),
    ("13 digits 4222222222222", "13 digits [CREDIT_CARD]"),
    ("off by one 4111 1111 1111 1112", "off by one 4111 1111 1111 1112"),
    ("order 1234567890123", "order 1234567890123"),                  # fails Luhn
    ("too long 41111111111111111111", "too long 41111111111111111111"),  # 20 digits
    # IPv4 / IPv6
    ("host 192.168.0.1:8080", "host [IP]:8080"),
    ("not 256.1.1.1 nor 1.2.3", "not 256.1.1.1 nor 1.2.3"),
    ("v6 2001:0db8:85a3:0000:0000:8a2e:0370:7334 up", "v6 [IP] up"),
    ("v6 2001:db8::8a2e:370:7334 and fe80::1ff:fe23:4567:890a", "v6 [IP] and [IP]"),
    ("code x[1::2] std::vector a::b::c 12:30:45", "code x[1::2] std::vector a::b::c 12:30:45"),
    # phones
    ("call 650-636-4884 or (123) 456-7891", "call [PHONE] or [PHONE]"),
    ("intl +44 20 7946 0958, +1 (555) 123-4567", "intl [PHONE], [PHONE]"),
    ("cn +8613800138000", "cn [PHONE]"),
    ("12500+21000-6300=<<12500+21000-6300=27200>>", "12500+21000-6300=<<12500+21000-6300=27200>>"),
    ("id 5551234567 and 2021-03-15", "id 5551234567 and 2021-03-15"),
    # secrets
    ("key sk-proj-abcdefghijklmnopqrstuvwxyz123456", "key [SECRET]"),
    ("ghp_" + "a1B2" * 9 + " and AKIAIOSFODNN7EXAMPLE", "[SECRET] and [SECRET]"),
    ("slack xoxb-123456789012-abcdefghij", "slack [SECRET]"),
    ('api_key = "f3a9c2e1b7d84a6f9e0c"', 'api_key = "[SECRET]"'),
    ("TOKEN: 9f8e7d6c5b4a39281706", "TOKEN: [SECRET]"),
    ("password=correcthorsebatterystaple", "password=correcthorsebatterystaple"),  # no digit
    ("key=lambda x: x[1], tokenizer.encode(x)", "key=lambda x: x[1], tokenizer.encode(x)"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc\n-----END RSA PRIVATE KEY-----\nok",
     "[SECRET]\nok"),
    # unchanged
    ("", ""),
    (None, None),
])
def test_pii_cases(text: str | None, expected: str | None) -> None:
    assert pii(text) == [expected]


def test_pii_kinds_and_counts() -> None:
    df = pl.DataFrame({"a": ["bob@x.org, 10.0.0.1", None], "b": ["4111111111111111", "c@d.io"]})
    ctx = RunContext(node="t")
    out = run(RewritePii(fields=["a", "b"]), df, ctx)
    assert out.rows() == [("[EMAIL], [IP]", "[CREDIT_CARD]"), (None, "[EMAIL]")]
    assert ctx.stats == {"secret": 0, "email": 2, "credit_card": 1, "ip": 1, "phone": 0}
    ctx = RunContext(node="t")
    only = run(RewritePii(fields=["a"], kinds=["ip"]), df, ctx)
    assert only["a"].to_list() == ["bob@x.org, [IP]", None] and ctx.stats == {"ip": 1}


def test_pii_real_data_found_by_hand(data: Path) -> None:
    """The seed tasks hold a made-up resume; the user-oriented tasks a contact table."""
    seeds = lines(data / "self_instruct_seed_tasks.jsonl")
    texts = [r["instances"][0]["input"] + "\n" + r["instances"][0]["output"] for r in seeds]
    out, counts = redact(pl.Series(texts))
    assert counts == {"secret": 0, "email": 3, "credit_card": 0, "ip": 0, "phone": 2}
    changed = [t for t, o in zip(texts, out.to_list()) if t != o]
    assert len(changed) == 2  # the resume (name, phone, email, twice) and a bank alert
    resume = next(o for o in out.to_list() if "Ebony Moore" in o)
    assert "Phone: [PHONE]\nEmail: [EMAIL]" in resume and "(123) 456-7891" not in resume
    assert any("Sender: [EMAIL]\n" in o for o in out.to_list())  # alerts@info6.citi.com
    users = lines(data / "self_instruct_user_oriented_instructions.jsonl")
    texts = [r["instances"][0]["input"] + "\n" + r["instances"][0]["output"] for r in users]
    out, counts = redact(pl.Series(texts))
    assert counts == {"secret": 0, "email": 6, "credit_card": 0, "ip": 0, "phone": 1}
    assert any("Crew Purdie | [EMAIL] | Professor" in o for o in out.to_list())
    assert any("Call us at [PHONE] or visit" in o for o in out.to_list())


def test_pii_no_false_positives_on_math_and_code(data: Path) -> None:
    gsm = pl.DataFrame(lines(data / "gsm8k_train.jsonl"))
    code = pl.DataFrame(lines(data / "humaneval.jsonl"))
    for values in (gsm["question"], gsm["answer"], code["prompt"], code["canonical_solution"],
                   code["test"]):
        out, counts = redact(values)
        assert sum(counts.values()) == 0 and out.equals(values)


def luhn_ref(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = sum(d if i % 2 == 0 else (2 * d - 9 if d >= 5 else 2 * d)
                for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


def test_luhn_is_vectorized_and_matches_python() -> None:
    rng = random.Random(7)
    numbers = ["".join(rng.choice("0123456789") for _ in range(rng.randint(11, 21)))
               for _ in range(3000)]
    numbers += ["4111 1111 1111 1111", "3782-822463-10005", "79927398713"]
    got = pl.DataFrame({"n": numbers}).select(_luhn(pl.col("n")))["n"].to_list()
    assert got == [luhn_ref(n) for n in numbers]
    assert 150 < sum(got) < 250  # about a tenth of the 13-19 digit ones (7 of 11 lengths)


def test_pii_sentinel_characters_in_text_are_safe() -> None:
    text = "\ue000 4111 1111 1111 1111 \ue001 4111 1111 1111 1112 \ue000"
    assert pii(text) == ["\ue000 [CREDIT_CARD] \ue001 4111 1111 1111 1112 \ue000"]


def test_pii_validation_errors_and_schema() -> None:
    with pytest.raises(ParamError, match="unknown kind 'ssn'; the kinds are secret, email"):
        RewritePii(fields=["t"], kinds=["ssn"])
    with pytest.raises(ParamError, match="at least one kind"):
        RewritePii(fields=["t"], kinds=[])
    with pytest.raises(ColumnTypeError, match="rewrite.pii: column 'n' must be str"):
        run(RewritePii(fields=["n"]), pl.DataFrame({"n": [1]}))
    op = RewritePii(fields=["a"])
    assert op.kind == "dataset" and op.rowwise and op.writes() == ["a"] and op.reads() == ["a"]
    assert op.output_schema([Schema({"a": "any", "b": "int"})]).columns == {"a": "str",
                                                                             "b": "int"}
    all_null = pl.DataFrame({"a": [None, None]})
    assert run(op, all_null)["a"].to_list() == [None, None]


# -- rewrite.template ---------------------------------------------------------------------------
def test_template_on_gsm8k(data: Path) -> None:
    gsm = pl.DataFrame(lines(data / "gsm8k_train.jsonl")).head(3)
    op = RewriteTemplate(field="prompt", template="Q: {{ question }}\nA:")
    out = run(op, gsm)
    assert out.columns == ["question", "answer", "prompt"]
    assert out["prompt"][0] == ("Q: Natalia sold clips to 48 of her friends in April, and then "
                                "she sold half as many clips in May. How many clips did Natalia "
                                "sell altogether in April and May?\nA:")
    assert op.reads() == ["question"] and op.writes() == ["prompt"]


def test_template_nulls_loops_nested_and_constants() -> None:
    df = pl.DataFrame({"q": ["a", None], "tags": [["x", None], []], "meta": [{"k": 1}, None]})
    op = RewriteTemplate(field="o", template="{{ q }}|{% if q %}Y{% else %}N{% endif %}|"
                         "{% for t in tags %}[{{ t }}]{% endfor %}|{{ meta.k if meta else '-' }}\n")
    assert run(op, df)["o"].to_list() == ["a|Y|[x][]|1\n", "|N||-\n"]
    const = RewriteTemplate(field="o", template="{{ range(3) | join(',') }}")
    assert const.reads() == [] and run(const, df)["o"].to_list() == ["0,1,2", "0,1,2"]
    over = RewriteTemplate(field="q", template="{{ q | upper }}!")
    assert run(over, df)["q"].to_list() == ["A!", "!"]


@pytest.mark.parametrize("template, message", [
    ("{{ ''.__class__ }}", "may not access the attribute '__class__'"),
    ("{{ q.__class__.__mro__ }}", "may not access the attribute"),
    ("{{ q['__class__'] }}", "may not access the attribute '__class__'"),
    ("{% if q %}", "not a valid Jinja2 template: Unexpected end of template. Jinja was looking"),
    ("{{ q | nosuchfilter }}", "No filter named 'nosuchfilter'. (line 1)"),
    ("{{ q }", "not a valid Jinja2 template"),
])
def test_template_refused_at_compile_time(template: str, message: str) -> None:
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RewriteTemplate(field="o", template=template)


@pytest.mark.parametrize("template, message", [
    ("{{ q | attr('__class__') }}", "access to attribute '__class__' of 'str' object is unsafe"),
    ("{{ tags.append(1) }}", "access to attribute 'append' of 'list' object is unsafe"),
    ("{{ 'x' * 100000000 }}", "at most 1000000"),
    ("{{ 2 ** 100000 }}", "exponent 100000 is too large"),
    ("{{ meta.nope }}", "has no attribute 'nope'"),
])
def test_template_sandbox_refuses_at_run_time(template: str, message: str) -> None:
    df = pl.DataFrame({"q": ["a"], "tags": [["x"]], "meta": [{"k": 1}]})
    with pytest.raises(TemplateError, match=message):
        run(RewriteTemplate(field="o", template=template), df)


def test_template_is_deterministic_and_reads_only_columns() -> None:
    # Jinja's random helpers are gone: lipsum is not a global, so it reads as a column name
    assert RewriteTemplate(field="o", template="{{ lipsum() }}").reads() == ["lipsum"]
    with pytest.raises(ParamError, match="No filter named 'random'"):
        RewriteTemplate(field="o", template="{{ [1, 2] | random }}")
    op = RewriteTemplate(field="o", template="{% set x = 1 %}{% for i in items %}{{ loop.index }}"
                         "{{ x }}{% endfor %}{{ cycler('a').next() }}")
    assert op.reads() == ["items"]


# -- alpaca <-> chat ------------------------------------------------------------------------------
def test_to_chat_joining_rules() -> None:
    df = pl.DataFrame({"instruction": ["Sum.", "Hi", None, "X"], "input": ["1 2", "", None, None],
                       "output": ["3", "Hello", None, "y"]})
    out = run(RewriteToChat(system="Be brief."), df)
    assert out.columns == ["instruction", "input", "output", "messages"]
    first, second, third, _ = out["messages"].to_list()
    assert first == [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Sum.\n\n1 2"},
                     {"role": "assistant", "content": "3"}]
    assert second[1:] == [{"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": "Hello"}]
    assert third[1:] == [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}]
    prompts = run(RewriteToChat(input="", output="", into="m"), df)["m"].to_list()
    assert prompts[0] == [{"role": "user", "content": "Sum."}]
    op = RewriteToChat(instruction="question", input="", output="answer")
    assert op.reads() == ["question", "answer"] and op.writes() == ["messages"]
    assert op.output_schema([Schema({"question": "str", "answer": "str"})]).columns[
        "messages"] == "list"


def test_round_trip_on_seed_tasks(data: Path) -> None:
    seeds = lines(data / "self_instruct_seed_tasks.jsonl")
    alpaca = pl.DataFrame([{"instruction": r["instruction"], "input": r["instances"][0]["input"],
                            "output": r["instances"][0]["output"]} for r in seeds])
    chat = run(RewriteToChat(), alpaca).select("messages")
    back = run(RewriteFromChat(), chat)
    empty = alpaca["input"] == ""
    assert 0 < empty.sum() < alpaca.height
    # exact when the input was empty ...
    assert back.filter(empty).select("instruction", "input", "output").equals(
        alpaca.filter(empty))
    # ... otherwise the user message holds instruction + "\n\n" + input
    joined = alpaca.filter(~empty).select(pl.col("instruction") + "\n\n" + pl.col("input"))
    assert back.filter(~empty)["instruction"].to_list() == joined.to_series().to_list()
    assert (back["input"] == "").all() and back["output"].equals(alpaca["output"])
    # chat -> alpaca -> chat is exact for single-turn conversations
    again = run(RewriteToChat(), back.drop("messages"))
    assert again["messages"].to_list() == chat["messages"].to_list()


def test_from_chat_roles_multi_turn_and_nulls() -> None:
    msgs = [[{"role": "system", "content": "S"}, {"role": "user", "content": "u1"},
             {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"},
             {"role": "assistant", "content": "a2"}],
            [{"role": "assistant", "content": "only"}], [], None]
    df = pl.DataFrame({"c": msgs})
    out = run(RewriteFromChat(messages="c", system="sys", input=""), df)
    assert out.columns == ["c", "instruction", "output", "sys"]
    assert out.drop("c").rows() == [("u1", "a1", "S"), (None, "only", None),
                                    (None, None, None), (None, None, None)]
    full = run(RewriteFromChat(messages="c"), df)
    assert full["input"].to_list() == ["", "", "", None]
    with pytest.raises(ColumnTypeError, match="column 'c' must be list"):
        run(RewriteFromChat(messages="c"), pl.DataFrame({"c": ["text"]}))
    with pytest.raises(ColumnTypeError, match=r"list of \{role, content\} structs"):
        run(RewriteFromChat(messages="c"), pl.DataFrame({"c": [["a"]]}))


def test_contract_signatures() -> None:
    expected = {
        "rewrite.pii": ["fields", "kinds"],
        "rewrite.template": ["field", "template"],
        "rewrite.to_chat": ["instruction", "input", "output", "system", "into"],
        "rewrite.from_chat": ["messages", "instruction", "input", "output", "system"],
    }
    for name, params in expected.items():
        cls = ops.get(name)
        assert cls is not None and [p.name for p in cls.params] == params, name
        assert all(p.doc for p in cls.params) and len(cls.doc().splitlines()) >= 5, name
    assert ops.get("rewrite.pii").spec("kinds").default == list(KINDS) == [
        "secret", "email", "credit_card", "ip", "phone"]


# -- one recipe, every operator, built by the real command ---------------------------------------
RECIPE = """recipe rules_e2e

raw = load.jsonl("data/rows.jsonl")

clean = raw
  | select.alnum_ratio(field="output", min=0.5)
  | select.special_chars_ratio(field="output", max=0.3, keep_score=true)
  | select.repetition(field="output", n=3, unit="word", max=0.5)
  | select.lang(field="instruction", lang=["en"], min_score=0.5)
  | select.field(field="score", ge=2)
  | select.topk(by="score", n=3)
  | rewrite.pii(fields=["output"])
  | rewrite.template(field="prompt", template="### {{ instruction }}")
  | rewrite.to_chat(system="Be kind.")

back = clean | rewrite.from_chat(instruction="i2", input="", output="o2")

export back to "out/back.jsonl"
"""

ROWS = [
    {"instruction": "Tell me the email of the support team please.", "input": "",
     "output": "Write to help@example.com any time you like.", "score": 5},
    {"instruction": "Describe the weather in Paris in spring.", "input": "",
     "output": "Mild and rainy, with sunny days.", "score": 4},
    {"instruction": "Répondez en français à la question suivante.", "input": "",
     "output": "Bien sûr, voici la réponse.", "score": 9},
    {"instruction": "List some symbols for me.", "input": "", "output": "#$%^&*()!@#", "score": 7},
    {"instruction": "Repeat yourself many times over.", "input": "",
     "output": "go go go go go go go go go go", "score": 6},
    {"instruction": "What is the capital city of France?", "input": "",
     "output": "The capital of France is Paris.", "score": 1},
    {"instruction": "Give me a short greeting for my friend.", "input": "",
     "output": "Hello there, my friend!", "score": 3},
    {"instruction": "Name a color that you like to see.", "input": "",
     "output": "Blue, like the sky.", "score": 2},
]


def test_cli_build_uses_every_operator(recipe_dir, run_cli) -> None:
    folder = recipe_dir({"r.recipe": RECIPE, "data/rows.jsonl": ROWS})
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, timeout=120)
    assert code == 0, err
    result = json.loads(out)
    rows = [json.loads(x) for x in (folder / "out" / "back.jsonl").read_text().splitlines()]
    # alnum drops the symbols, repetition the "go go", lang the French row, field score >= 2
    # drops Paris-capital, top-3 by score keeps 5, 4 and 3 in input order
    assert [r["score"] for r in rows] == [5, 4, 3]
    assert rows[0]["output"] == "Write to [EMAIL] any time you like."
    assert rows[0]["prompt"] == "### Tell me the email of the support team please."
    assert rows[0]["messages"][0] == {"role": "system", "content": "Be kind."}
    assert rows[0]["i2"] == rows[0]["instruction"] and rows[0]["o2"] == rows[0]["output"]
    assert 0 <= rows[1]["_special_ratio"] <= 0.3
    pii_node = next(n for n in result["nodes"] if n["op"] == "rewrite.pii")
    assert pii_node.get("stats", {}).get("email") == 1
    code, out, err = run_cli("ops", "select.repetition", cwd=folder)
    assert code == 0 and "n-gram" in out

"""rewrite.normalize(fix_mojibake=true): real mojibake repaired, the default left exactly alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from dcc.errors import ParamError
from dcc.ops.base import RunContext
from dcc.ops.rewrite import RewriteNormalize


def normalize(*texts: str | None, fix: bool | None = None) -> list[str | None]:
    df = pl.DataFrame({"t": list(texts)}, schema={"t": pl.String})
    kw = {} if fix is None else {"fix_mojibake": fix}
    return RewriteNormalize(fields=["t"], **kw).run([df], RunContext(node="t"))["t"].to_list()


def garble(text: str, codec: str = "cp1252") -> str:
    """What a reader that decodes UTF-8 bytes as `codec` shows (how mojibake is made); bytes
    cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) come through as the Latin-1
    control character of the same number, as Windows' decoders pass them."""
    out = []
    for byte in text.encode("utf-8"):
        try:
            out.append(bytes([byte]).decode(codec))
        except UnicodeDecodeError:
            out.append(chr(byte))
    return "".join(out)


@pytest.mark.parametrize("bad, good", [
    ("donâ€™t", "don’t"),                     # U+2019 read as cp1252
    ("cafÃ©", "café"),                        # é read as Latin-1/cp1252
    ("â€œquotedâ€\x9d", "“quoted”"),        # left and right double quotes
    ("naÃ¯ve rÃ©sumÃ©", "naïve résumé"),
    ("â€” dash", "— dash"),
])
def test_real_mojibake_is_repaired(bad: str, good: str) -> None:
    assert normalize(bad, fix=True) == [good]


def test_made_the_way_mojibake_is_made() -> None:
    originals = ["Müller’s “Straße” – 5 €", "日本語のテキスト", "emoji 🙂 ok"]
    garbled = [garble(t) for t in originals[:1]] + [garble(t, "latin-1") for t in
                                                     originals[1:2]] + originals[2:]
    assert garbled[0] != originals[0]
    assert normalize(*garbled, fix=True) == originals


def test_off_by_default_and_clean_text_untouched() -> None:
    # without the repair, NFKC even spells out the garbled '™' (which is why repair runs first)
    assert normalize("donâ€™t cafÃ©") == ["donâ€TMt cafÃ©"]
    assert normalize("donâ€™t cafÃ©", fix=False) == ["donâ€TMt cafÃ©"]
    assert RewriteNormalize(fields=["t"]).p["fix_mojibake"] is False
    clean = ["plain ascii", "curly ‘quotes’ stay curly", "Ünïcödé ok", None, ""]
    assert normalize(*clean, fix=True) == normalize(*clean)


def test_default_output_is_byte_identical_on_real_data(data: Path) -> None:
    """The default pipeline is exactly the old expression chain (no Python step added)."""
    rows = [json.loads(x) for x in (data / "gsm8k_train.jsonl").read_text().splitlines()]
    df = pl.DataFrame(rows).head(2000)
    old = df.with_columns(
        pl.col(f).str.normalize("NFKC").str.replace_all(r"[\p{Cc}\p{Cf}--[\t\n]]", "")
        .str.replace_all(r"[ \t]+", " ").str.replace_all(" \n", "\n", literal=True)
        .str.replace_all(r"\n{3,}", "\n\n").str.strip_chars().alias(f)
        for f in ("question", "answer"))
    new = RewriteNormalize(fields=["question", "answer"]).run([df], RunContext("t"))
    assert new.write_ndjson() == old.write_ndjson()
    fixed = RewriteNormalize(fields=["question", "answer"], fix_mojibake=True)
    assert fixed.run([df], RunContext("t")).equals(new)  # GSM8K has no mojibake


def test_missing_ftfy_is_a_param_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ftfy" else real(name, *a))
    with pytest.raises(ParamError, match="pip install ftfy"):
        RewriteNormalize(fields=["t"], fix_mojibake=True)
    RewriteNormalize(fields=["t"])  # not needed when off


def test_recipe_build_repairs_mojibake(recipe_dir: Callable, run_cli: Callable) -> None:
    rows = [{"t": "donâ€™t  pay"}, {"t": "cafÃ©"}, {"t": "fine"}]
    recipe = ('recipe r\nraw = load.jsonl("d.jsonl")\n'
              'fixed = raw | rewrite.normalize(fields=["t"], fix_mojibake=true)\n'
              'export fixed to "out.jsonl"\n')
    folder = recipe_dir({"r.recipe": recipe, "d.jsonl": rows})
    code, _, err = run_cli("build", "r.recipe", cwd=folder)
    assert code == 0, err
    out = [json.loads(x)["t"] for x in (folder / "out.jsonl").read_text().splitlines()]
    assert out == ["don’t pay", "café", "fine"]

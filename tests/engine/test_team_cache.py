"""The team cache (`--remote-cache`, `dcc cache push|pull`) against real remotes on loopback.

Two kinds of remote: moto's standalone S3 server (`dcc.testing.loopback_s3`, reached by the
child `dcc` through AWS_ENDPOINT_URL and fake credentials in its environment only) and a
shared folder (`file://`). Every scenario ends by checking the remote as a reader would:
every object hashes to its name and every record names objects (and bases) that are there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import Project

from dcc.cache.hashing import digest
from dcc.cache.store import PATCH_MAGIC, VIEW_HEAD, VIEW_MAGIC

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

from dcc.testing.loopback_s3 import LoopbackS3, loopback_s3  # noqa: E402

RECIPE = """src = load.jsonl("data/rows.jsonl")
kept = src | select.length(field="text", min=20)
norm = kept | rewrite.normalize(fields=["text"])
export norm to "out/norm.jsonl"
"""
ROWS = 8_000  # a source table of ~0.6 MB: large enough to cut an upload of it in the middle


@pytest.fixture(scope="module")
def s3() -> Iterator[LoopbackS3]:
    with loopback_s3() as server:
        yield server


def team_project(make_project: Any, name: str) -> Project:
    p = make_project(name)
    p.write_jsonl("data/rows.jsonl", ({"id": i, "text": f"Row  {i}: " + "word " * (i % 9)}
                                      for i in range(ROWS)))
    p.write("r.recipe", RECIPE)
    return p


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {n["name"]: n["status"] for n in report["nodes"]}


def check_remote(fs: Any, root: str) -> dict[str, dict[str, Any]]:
    """The remote as a reader sees it: every object matches its name, every record names
    objects that are there (a view's or patch's base too). Returns key -> record."""
    objects = {}
    for path in fs.find(f"{root}/objects"):
        data = fs.cat_file(path)
        name = path.rsplit("/", 1)[1]
        assert digest(data) == name, f"remote object {name} does not match its hash"
        objects[name] = data
    records = {}
    for path in fs.find(f"{root}/records"):
        record = json.loads(fs.cat_file(path))
        assert record["content"] in objects, f"record {path} names a missing object"
        head = objects[record["content"]][:VIEW_HEAD]
        if head[:len(VIEW_MAGIC)] in (VIEW_MAGIC, PATCH_MAGIC):
            assert head[len(VIEW_MAGIC):].decode() in objects, f"{path}: base missing"
        records[path.rsplit("/", 1)[1].removesuffix(".json")] = record
    assert not fs.exists(f"{root}/tmp") or not fs.find(f"{root}/tmp"), "temps left behind"
    return records


def test_push_then_pull_into_an_empty_cache_gives_identical_exports(
        s3: LoopbackS3, make_project: Any) -> None:
    a, b = team_project(make_project, "a"), team_project(make_project, "b")
    url, env = s3.url("push-pull"), s3.env()
    a.build()
    r = a.run("cache", "push", "r.recipe", "--remote-cache", url, env=env)
    assert r.returncode == 0, r.stderr
    assert "2 results (2 objects uploaded" in r.stderr
    records = check_remote(s3.fs, f"{s3.bucket}/push-pull")
    assert {rec["node"] for rec in records.values()} == {"src", "norm"}

    r = b.run("cache", "pull", "r.recipe", "--remote-cache", url, env=env)
    assert r.returncode == 0, r.stderr
    assert "2 results downloaded (2 objects" in r.stderr and "0 not on the remote" in r.stderr
    report = b.build()  # no remote now: everything is in the local cache
    assert set(statuses(report).values()) == {"cached"}
    assert b.path("out/norm.jsonl").read_bytes() == a.path("out/norm.jsonl").read_bytes()
    assert b.run("cache", "verify").returncode == 0

    again = a.run("cache", "push", "r.recipe", "--remote-cache", url, env=env)
    assert again.returncode == 0 and "0 objects uploaded" in again.stderr  # immutable: kept


def test_read_through_on_a_fresh_cache_and_plan_shows_remote_hits(
        tmp_path: Path, make_project: Any) -> None:
    shared = tmp_path / "shared folder"
    url = shared.as_uri()
    a, b = team_project(make_project, "a"), team_project(make_project, "b")
    first = a.build("--remote-cache", url)
    assert set(statuses(first).values()) == {"ran"}
    assert (first["remote"]["uploaded"], first["remote"]["objects_up"]) == (2, 2)

    r = b.run("plan", "r.recipe", "--json", "--remote-cache", url)
    assert r.returncode == 0, r.stderr
    assert statuses(json.loads(r.stdout)) == {"src": "remote-hit", "kept": "remote-hit",
                                             "norm": "remote-hit"}
    assert not [p for p in b.cache.glob("objects/*/*")]  # a plan downloads nothing
    r = b.run("plan", "r.recipe", "--remote-cache", url)
    assert "remote-hit" in r.stdout

    second = b.build("--remote-cache", url)
    assert set(statuses(second).values()) == {"remote-hit"}
    assert second["remote"]["downloaded"] == 2 and second["remote"]["uploaded"] == 0
    assert b.path("out/norm.jsonl").read_bytes() == a.path("out/norm.jsonl").read_bytes()
    r = b.run("build", "r.recipe", "--remote-cache", url)  # the summary says where hits came from
    assert r.returncode == 0 and "hit" in r.stdout
    import fsspec

    check_remote(fsspec.filesystem("file"), str(shared))


def test_a_poisoned_remote_object_is_reported_skipped_recomputed_and_never_served(
        s3: LoopbackS3, make_project: Any) -> None:
    a, b = team_project(make_project, "a"), team_project(make_project, "b")
    url, env, root = s3.url("poison"), s3.env(), f"{s3.bucket}/poison"
    first = a.build("--remote-cache", url, env=env)
    src = next(n for n in first["nodes"] if n["name"] == "src")
    path = f"{root}/objects/{src['content'][:2]}/{src['content']}"
    data = bytearray(s3.fs.cat_file(path))
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    s3.fs.pipe_file(path, bytes(data))

    r = b.run("build", "r.recipe", "--json", "--remote-cache", url, env=env)
    assert r.returncode == 0, r.stderr
    assert f"object {src['content']}" in r.stderr and "does not match its hash" in r.stderr
    assert "Traceback" not in r.stderr
    report = json.loads(r.stdout)
    # src was computed locally; norm (a patch on src) came from the remote on the good base
    assert statuses(report) == {"src": "ran", "kept": "remote-hit", "norm": "remote-hit"}
    assert report["remote"]["warnings"]
    assert b.path("out/norm.jsonl").read_bytes() == a.path("out/norm.jsonl").read_bytes()
    assert b.run("cache", "verify").returncode == 0  # the bad bytes never reached the store
    check_remote(s3.fs, root)  # and the write-through replaced them with the right ones


def test_a_connection_dropped_mid_upload_leaves_no_half_object_and_the_build_succeeds(
        s3: LoopbackS3, make_project: Any) -> None:
    from cutting_proxy import CuttingProxy

    host, port = s3.endpoint.removeprefix("http://").split(":")
    proxy = CuttingProxy((host, int(port)), cut_after=150_000)
    try:
        a = team_project(make_project, "a")
        url, root = s3.url("dropped"), f"{s3.bucket}/dropped"
        r = a.run("build", "r.recipe", "--json", "--remote-cache", url,
                  env=s3.env(proxy.endpoint))
        assert r.returncode == 0, r.stderr
        assert proxy.cuts >= 1
        report = json.loads(r.stdout)
        assert set(statuses(report).values()) == {"ran"}
        assert "warning" in r.stderr and "not uploaded" in r.stderr
        assert "Traceback" not in r.stderr and "testing-secret" not in r.stderr, r.stderr
        src = next(n for n in report["nodes"] if n["name"] == "src")["content"]
        records = check_remote(s3.fs, root)  # nothing half-written under a final name
        assert not s3.fs.exists(f"{root}/objects/{src[:2]}/{src}")
        assert all(rec["content"] != src for rec in records.values())
        assert a.run("cache", "verify").returncode == 0

        proxy.heal()  # the network is back: a push completes what the build could not
        r = a.run("cache", "push", "r.recipe", "--remote-cache", url,
                  env=s3.env(proxy.endpoint))
        assert r.returncode == 0, r.stderr
        assert {rec["node"] for rec in check_remote(s3.fs, root).values()} == {"src", "norm"}
    finally:
        proxy.close()


def test_two_concurrent_writers_both_succeed_and_the_remote_stays_verifiable(
        s3: LoopbackS3, make_project: Any) -> None:
    a, b = team_project(make_project, "a"), team_project(make_project, "b")
    url, env = s3.url("race"), s3.env()
    procs = [p.popen("build", "r.recipe", "--json", "--remote-cache", url, env=env)
             for p in (a, b)]
    outs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err
        assert "warning" not in err, err
    assert a.path("out/norm.jsonl").read_bytes() == b.path("out/norm.jsonl").read_bytes()
    records = check_remote(s3.fs, f"{s3.bucket}/race")
    assert {rec["node"] for rec in records.values()} == {"src", "norm"}

    c = team_project(make_project, "c")  # a third machine reads what the race left
    report = c.build("--remote-cache", url, env=env)
    assert set(statuses(report).values()) == {"remote-hit"}
    assert c.path("out/norm.jsonl").read_bytes() == a.path("out/norm.jsonl").read_bytes()


def test_remote_errors_are_clear_messages_without_tracebacks(project: Project) -> None:
    project.write("r.recipe", RECIPE)
    project.write_jsonl("data/rows.jsonl", [{"id": 1, "text": "a row of text long enough"}])
    dead = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "very-secret-value", "AWS_MAX_ATTEMPTS": "1",
            "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    cases = [
        (("cache", "push", "r.recipe", "--remote-cache", "nosuch://x/y"), {},
         "Protocol not known"),
        (("cache", "pull", "r.recipe", "--remote-cache", "s3://user:pw@bucket/x"), {},
         "must not carry credentials"),
        (("cache", "push", "r.recipe"), {}, "pass --remote-cache URL or set DCC_REMOTE_CACHE"),
        (("cache", "pull", "r.recipe", "--remote-cache", "s3://bucket/x"), dead,
         "is unreachable"),
        (("build", "r.recipe"), {"DCC_REMOTE_CACHE": "nosuch://x"}, "Protocol not known"),
    ]
    for args, env, message in cases:
        r = project.run(*args, env=env)
        assert r.returncode != 0 and message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr and "very-secret-value" not in r.stderr
    r = project.run("cache", "push", "r.recipe", "--remote-cache", project.root.as_uri())
    assert r.returncode == 1 and "has no build of" in r.stderr

    # a missing driver names the extra to install
    r = project.run("cache", "pull", "r.recipe", "--remote-cache", "s3://bucket/x",
                    python_code="import sys; sys.modules['s3fs'] = None; "
                                "from dcc.cli import main; main()")
    assert r.returncode == 1 and "pip install 'dcc-recipes[remote]'" in r.stderr, r.stderr

    # an unreachable remote does not stop a build: it warns and builds locally
    r = project.run("build", "r.recipe", "--remote-cache", "s3://bucket/x", env=dead)
    assert r.returncode == 0, r.stderr
    assert "unreachable" in r.stderr and "using the local cache only" in r.stderr
    assert "very-secret-value" not in r.stderr + r.stdout

"""The battery's shares and the merge of their reports
(:mod:`customlayers.shards`): every item in exactly one share,
workers together running exactly their share, and a merge that refuses
reports which do not belong together, naming why."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from customlayers import shards
from customlayers.shards import Shard, ShardError


@given(n_items=st.integers(0, 60).map(lambda n: n),
       count=st.integers(1, 9))
def test_every_item_lands_in_exactly_one_share(n_items, count):
    items = list(range(n_items))
    parts = [shards.split(items, Shard(i, count))
             for i in range(1, count + 1)]
    assert sorted(x for p in parts for x in p) == items
    # Shares differ in size by at most one, and keep the battery's order.
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert all(p == sorted(p) for p in parts)


@given(n_items=st.integers(0, 80), count=st.integers(1, 5),
       workers=st.integers(1, 4), data=st.data())
def test_workers_together_run_exactly_their_share(n_items, count, workers,
                                                  data):
    shard = Shard(data.draw(st.integers(1, count), label="share index"),
                  count)
    items = list(range(n_items))
    plan = shards.worker_shards(shard, workers)
    assert len(plan) == workers
    got = sorted(x for s in plan for x in shards.split(items, s))
    assert got == shards.split(items, shard)


@pytest.mark.parametrize("spec, message", [
    ("3", "expected i/n"), ("0/2", "1 <= i <= n"), ("3/2", "1 <= i <= n"),
    ("1/0", "1 <= i <= n"), ("a/b", "expected i/n"), ("-1/2", "expected i/n"),
])
def test_bad_shard_specs_are_refused_naming_them(spec, message):
    with pytest.raises(ShardError, match=message) as info:
        shards.parse_shard(spec)
    assert repr(spec) in str(info.value)


def _report(shard=None, rows=(), profile="ci", failures=(), known=()):
    return {"profile": profile, "backend": "tensorflow", "keras": "3.15.1",
            "seconds": 1.0, "pairs": ["P"], "shard": shard,
            "examples": sum(r["examples"] for r in rows),
            "examples_by_property": {"equivalence": 1}, "rows": list(rows),
            "properties": [{"label": f"p {shard}", "case": "P",
                            "status": "FAIL" if failures else "ok",
                            "seconds": 1.0, "message": ""}],
            "failures": list(failures), "skipped": [],
            "known_differences": list(known),
            "stale_known_differences": []}


def _row(check, result, examples=1, max_abs=0.0):
    numeric = result != "ok"
    return {"pair": "P", "check": check, "dtype": "float32", "mode": "eager",
            "examples": examples, "max_abs": max_abs if numeric else None,
            "max_rel": 0.0 if numeric else None,
            "max_ulp": 0.0 if numeric else None,
            "tol_used": 0.0 if numeric else None, "result": result,
            "expected": []}


@pytest.mark.parametrize("results, merged", [
    (["bit-exact", "bit-exact"], "bit-exact"),
    (["bit-exact", "pass"], "pass"),
    (["pass", "expected"], "expected"),
    (["expected", "FAIL"], "FAIL"),
    (["ok", "ok"], "ok"),
])
def test_merged_rows_sum_examples_and_keep_the_worst(results, merged):
    docs = [_report(f"{k + 1}/{len(results)}",
                    [_row("output", r, examples=k + 2, max_abs=k / 10)])
            for k, r in enumerate(results)]
    (row,) = shards.merge(docs)["rows"]
    assert row["result"] == merged
    assert row["examples"] == sum(k + 2 for k in range(len(results)))
    if merged != "ok":
        assert row["max_abs"] == (len(results) - 1) / 10


def test_merge_counts_known_differences_across_shares():
    known = [{"label": "K", "why": "w", "applied": 3, "needed": 0}]
    needed = [{"label": "K", "why": "w", "applied": 2, "needed": 1}]
    merged = shards.merge([_report("1/2", known=known),
                           _report("2/2", known=needed)])
    assert merged["known_differences"] == [
        {"label": "K", "why": "w", "applied": 5, "needed": 1}]
    assert merged["stale_known_differences"] == []
    stale = shards.merge([_report("1/2", known=known),
                          _report("2/2", known=known)])
    assert stale["stale_known_differences"] == ["K"]


@pytest.mark.parametrize("docs, message", [
    ([], "nothing to merge"),
    ([_report("1/3"), _report("2/3")], r"shares missing: 3/3"),
    ([_report("1/2"), _report("1/2")], r"share 1/2 given twice"),
    ([_report("1/2"), _report("2/3")], "different splits"),
    ([_report("1/2"), _report("2/2", profile="thorough")],
     "profile 'thorough', but report 1 has 'ci'"),
    ([_report("1/2"), _report(None)], "is a whole run, not a share"),
])
def test_merge_refuses_reports_that_do_not_belong_together(docs, message):
    with pytest.raises(ShardError, match=message):
        shards.merge(docs)


def test_merge_with_expected_shares_refuses_others():
    with pytest.raises(ShardError, match="unexpected shares: 1/4"):
        shards.merge([_report("1/4"), _report("3/4")],
                     expect=[Shard(2, 4), Shard(3, 4)])
    merged = shards.merge([_report("2/4"), _report("4/4")],
                          expect=shards.worker_shards(Shard(2, 2), 2))
    assert merged["merged_from"] == ["2/4", "4/4"]


@pytest.mark.parametrize("content, message", [
    (None, "cannot read it"),
    ("{not json", "not JSON"),
    ('{"rows": []}', "no properties, examples"),
    ("[1, 2]", "not a `customlayers verify --json` report"),
])
def test_corrupt_reports_get_a_clear_error(tmp_path, content, message):
    path = tmp_path / "share.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ShardError, match=message) as info:
        shards.load_report(path)
    assert str(path) in str(info.value)


def test_a_report_round_trips_through_json(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_report("1/1", [_row("output", "pass")])))
    assert shards.merge([shards.load_report(path)])["rows"][0]["result"] \
        == "pass"

"""Role: splitting a battery into deterministic shares, and merging the
JSON reports of the shares back into one.

A share is named ``i/n`` (1-based): it takes the items whose position in
the battery's fixed order is ``i - 1`` modulo ``n``. Every item lands in
exactly one share, and the same command line always gives the same share,
on any machine. ``customlayers verify --workers N`` runs ``N`` shares in
parallel processes; ``customlayers verify --shard i/n`` runs one (one CI
machine each), and ``customlayers verify-merge`` (or :func:`merge`) puts
their JSON reports together: one table, one list of failures, one ledger of
known differences. The merge refuses reports that do not belong together
(another profile, backend or Keras, another ``n``, a share twice or
missing), naming what was wrong.

This module itself imports no Keras (the ``customlayers`` package does).
"""

from __future__ import annotations

import json
import re

__all__ = ["Shard", "parse_shard", "split", "worker_shards", "load_report",
           "merge", "merge_rows", "ShardError"]


class ShardError(ValueError):
    """A bad share spec, or reports that cannot be merged."""


class Shard(tuple):
    """``(index, count)``, 1-based: share ``index`` of ``count``."""

    def __new__(cls, index: int, count: int):
        if not (isinstance(index, int) and isinstance(count, int)) or \
                count < 1 or not 1 <= index <= count:
            raise ShardError(f"shard {index}/{count}: expected i/n with "
                             "1 <= i <= n")
        return super().__new__(cls, (index, count))

    index = property(lambda self: self[0])
    count = property(lambda self: self[1])

    def __str__(self):
        return f"{self.index}/{self.count}"


def parse_shard(spec: str) -> Shard:
    """``"2/4"`` -> ``Shard(2, 4)``; anything else is a :class:`ShardError`
    that names it."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(spec))
    if not m:
        raise ShardError(f"--shard {spec!r}: expected i/n, e.g. 1/4 "
                         "(share i of n, counted from 1)")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ShardError(f"--shard {spec!r}: expected 1 <= i <= n")
    return Shard(index, count)


def split(seq, shard: Shard | None) -> list:
    """The items of ``seq`` in share ``shard`` (all of them for ``None``),
    in their order."""
    seq = list(seq)
    if shard is None:
        return seq
    return [x for k, x in enumerate(seq) if k % shard.count == shard.index - 1]


def worker_shards(shard: Shard | None, workers: int) -> list:
    """The shares ``workers`` processes run so that together they run
    exactly ``shard`` (the whole battery for ``None``).

    Worker ``k`` (1-based) of ``N`` inside share ``i/n`` runs share
    ``i + n (k - 1)`` of ``n N``: positions ``j`` with
    ``j mod nN = (i - 1) + n (k - 1)``, all of which are ``i - 1``
    modulo ``n``."""
    if workers < 1:
        raise ShardError(f"--workers {workers}: expected at least 1")
    base = shard or Shard(1, 1)
    return [Shard(base.index + base.count * k, base.count * workers)
            for k in range(workers)]


# -- merging ----------------------------------------------------------------

_SAME = ("profile", "backend", "keras")


def load_report(path) -> dict:
    """One ``verify --json`` report; a clear :class:`ShardError` for a file
    that is missing, not JSON, or not such a report."""
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise ShardError(f"{path}: cannot read it ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise ShardError(f"{path}: not JSON ({exc.msg} at line "
                         f"{exc.lineno}); expected a `customlayers verify "
                         "--json` report") from exc
    missing = [k for k in ("rows", "properties", "examples")
               if not isinstance(doc, dict) or k not in doc]
    if missing:
        raise ShardError(f"{path}: not a `customlayers verify --json` "
                         f"report (no {', '.join(missing)})")
    return doc


def _verdict(results: list) -> str:
    if "FAIL" in results:
        return "FAIL"
    if all(r == "ok" for r in results):
        return "ok"
    if "expected" in results:
        return "expected"
    numeric = [r for r in results if r != "ok"]
    return "bit-exact" if all(r == "bit-exact" for r in numeric) else "pass"


def merge_rows(row_lists) -> list:
    """Rows of several reports, one per (pair, check, dtype, mode): examples
    summed, worst errors the worst of them, the verdict recomputed."""
    merged = {}
    for rows in row_lists:
        for r in rows:
            key = (r["pair"], r["check"], r["dtype"] or "", r["mode"] or "")
            merged.setdefault(key, []).append(r)
    out = []
    for key in sorted(merged):
        group = merged[key]
        row = dict(group[0])
        row["examples"] = sum(r["examples"] for r in group)
        for f in ("max_abs", "max_rel", "max_ulp", "tol_used"):
            values = [r[f] for r in group if r[f] is not None]
            row[f] = max(values) if values else None
        row["result"] = _verdict([r["result"] for r in group])
        row["expected"] = sorted({e for r in group for e in r["expected"]})
        out.append(row)
    return out


def merge(docs: list, names=None, expect=None) -> dict:
    """One report from the JSON reports of the shares of one battery.

    ``names`` label the reports in errors (their paths). Refuses reports of
    other profiles, backends or Keras versions, other share counts, a share
    given twice or one missing: every share ``1..n`` of the split, or
    exactly the shares in ``expect`` when given."""
    names = list(names or [f"report {k + 1}" for k in range(len(docs))])
    if not docs:
        raise ShardError("nothing to merge: give the JSON reports of the "
                         "shares")
    first = docs[0]
    for doc, name in zip(docs[1:], names[1:]):
        for key in _SAME:
            if doc.get(key) != first.get(key):
                raise ShardError(
                    f"{name}: {key} {doc.get(key)!r}, but {names[0]} has "
                    f"{first.get(key)!r}; shares of one battery run under "
                    "the same profile, backend and Keras")
    shards = [doc.get("shard") for doc in docs]
    if any(s is not None for s in shards):
        counts = {parse_shard(s).count for s in shards if s}
        if len(counts) != 1:
            raise ShardError(f"the reports are shares of different splits: "
                             f"{dict(zip(names, shards))}")
        (count,) = counts
        seen = {}
        for s, name in zip(shards, names):
            if s is None:
                raise ShardError(f"{name} is a whole run, not a share; "
                                 f"the others are shares of {count}")
            index = parse_shard(s).index
            if index in seen:
                raise ShardError(f"share {s} given twice: {seen[index]} and "
                                 f"{name}")
            seen[index] = name
        wanted = ({Shard(*e).index for e in expect} if expect is not None
                  else set(range(1, count + 1)))
        extra = sorted(set(seen) - wanted)
        if extra:
            raise ShardError(f"unexpected shares: "
                             f"{', '.join(f'{i}/{count}' for i in extra)}")
        lost = sorted(wanted - set(seen))
        if lost:
            raise ShardError(f"shares missing: "
                             f"{', '.join(f'{i}/{count}' for i in lost)} "
                             f"(got {', '.join(sorted(shards))})")
    by_prop = {}
    for doc in docs:
        for k, v in doc.get("examples_by_property", {}).items():
            by_prop[k] = by_prop.get(k, 0) + v
    known = {}
    for doc in docs:
        for d in doc.get("known_differences", []):
            entry = known.setdefault(d["label"], dict(d, applied=0,
                                                      needed=0))
            entry["applied"] += d["applied"]
            entry["needed"] += d["needed"]
    properties = [p for doc in docs for p in doc["properties"]]
    return {
        **{k: first.get(k) for k in _SAME},
        "seconds": max(doc.get("seconds", 0.0) for doc in docs),
        "seconds_total": sum(doc.get("seconds", 0.0) for doc in docs),
        "pairs": sorted({p for doc in docs for p in doc.get("pairs", [])}),
        "merged_from": [doc.get("shard") or n for doc, n in
                        zip(docs, names)],
        "examples": sum(doc["examples"] for doc in docs),
        "examples_by_property": by_prop,
        "rows": merge_rows(doc["rows"] for doc in docs),
        "properties": properties,
        "failures": [f for doc in docs for f in doc.get("failures", [])],
        "skipped": [s for doc in docs for s in doc.get("skipped", [])],
        "known_differences": [known[k] for k in sorted(known)],
        "stale_known_differences": sorted(
            k for k, d in known.items() if not d["needed"]),
    }

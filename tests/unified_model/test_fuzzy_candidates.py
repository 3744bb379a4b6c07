"""The name candidates of identity resolution, scored in bulk (``process.cdist`` / ``cpdist``),
are exactly those of scoring one record at a time (``process.extract`` and the scorer per
pair, the form they had before): same pairs, same float scores, same comparison counts.

Generated names from a small vocabulary with typos, so blocks, near misses and exact ties
occur; some records are merged beforehand (pairs already in one customer are no candidates).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

import pytest
from rapidfuzz import process

from unified_model import identity
from unified_model.identity import _SCORERS, MatchConfig, _Resolver
from unified_model.tables import SourceAccount

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
WORDS = [
    "kestrel", "robotics", "robotic", "systems", "alpenway", "alpenbay", "networks", "acme",
    "nordic", "brightwave", "brightway", "analytics", "analytica", "solutions", "group", "ab",
]  # fmt: skip


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    return word[:i] + rng.choice("aeioustrn") + word[i + 1 :]


def _accounts(seed: int, n: int) -> dict[tuple[str, str], Any]:
    rng = random.Random(seed)
    out: dict[tuple[str, str], Any] = {}
    for k in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.3:
            words[0] = _typo(words[0], rng)
        source = rng.choice(["salesforce", "hubspot"])
        acc = SourceAccount(
            source=source, source_id=f"{source[0]}{k:04d}", name=" ".join(words), modified_at=T0
        )
        out[(acc.source, acc.source_id)] = acc
    return out


def _old_block(r: _Resolver, members: list[int], cands: dict[tuple[int, int], float]) -> None:
    """The per-record form: one ``process.extract`` per left record."""
    cfg, names, cl = r.config, r.names, r.clusters
    members = sorted(members)
    if cfg.fuzzy_within_crm:
        lefts, rights = members, members
    else:
        lefts = [i for i in members if r.sources[i] == "salesforce"]
        rights = [i for i in members if r.sources[i] == "hubspot"]
    if not lefts or not rights:
        return
    choices = [names[j] for j in rights]
    for a in lefts:
        for _, score, pos in process.extract(
            names[a],
            choices,
            scorer=_SCORERS[cfg.fuzzy_scorer],
            score_cutoff=cfg.review_floor,
            limit=None,
        ):
            b = rights[pos]
            if a == b or (cfg.fuzzy_within_crm and b < a):
                continue
            pair = (min(a, b), max(a, b))
            if pair in cands or cl.find(a) == cl.find(b):
                continue
            cands[pair] = float(score)
        r.stats["fuzzy_comparisons"] += len(choices)


def _old_neighbourhood(r: _Resolver, cands: dict[tuple[int, int], float]) -> None:
    """The per-pair form: the scorer called for each neighbour in turn."""
    cfg, names, cl = r.config, r.names, r.clusters
    scorer = _SCORERS[cfg.fuzzy_scorer]
    order = sorted(
        (i for i, n in enumerate(names) if len(n) >= cfg.min_name_length),
        key=lambda i: (names[i], i),
    )
    sources = [r.sources[i] for i in order]
    for pos, a in enumerate(order):
        for nxt in range(pos + 1, min(pos + 1 + cfg.neighbourhood_window, len(order))):
            if sources[nxt] == sources[pos] and not cfg.fuzzy_within_crm:
                continue
            b = order[nxt]
            pair = (min(a, b), max(a, b))
            if pair in cands:
                continue
            score = scorer(names[a], names[b], score_cutoff=cfg.review_floor)
            r.stats["fuzzy_comparisons"] += 1
            if score and cl.find(a) != cl.find(b):
                cands[pair] = float(score)


def _candidates(r: _Resolver, *, old: bool) -> tuple[dict[tuple[int, int], float], int]:
    """Every block of every record's name tokens, then the neighbourhood (as ``fuzzy_names``)."""
    r.stats = Counter()
    blocks: dict[str, list[int]] = {}
    for i, name in enumerate(r.names):
        for token in sorted(set(name.split())):
            blocks.setdefault(token, []).append(i)
    cands: dict[tuple[int, int], float] = {}
    for key in sorted(blocks):
        if len(blocks[key]) > 1:
            if old:
                _old_block(r, blocks[key], cands)
            else:
                r._compare_block(blocks[key], cands)
    if old:
        _old_neighbourhood(r, cands)
    else:
        r._sorted_neighbourhood(cands)
    return cands, r.stats["fuzzy_comparisons"]


CONFIGS = [
    {},
    {"review_floor": 0.0},  # every pair a candidate, a score of 0 included in the blocks
    {"fuzzy_within_crm": True},
    {"fuzzy_scorer": "WRatio", "review_floor": 60.0},
    {"fuzzy_scorer": "ratio", "neighbourhood_window": 2},
]


@pytest.mark.parametrize("threads", [False, True], ids=["one-thread", "threads"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(c) or "default")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_scores_give_the_same_candidates(
    seed: int, config: dict[str, Any], threads: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if threads:  # every call on several threads, as large blocks are
        monkeypatch.setattr(identity, "PARALLEL_PAIRS", 1)
        monkeypatch.setattr(identity.os, "cpu_count", lambda: 4)
    r = _Resolver(_accounts(seed, 400), [], {}, MatchConfig(**config), T0)
    rng = random.Random(seed)
    for _ in range(40):  # some records already one customer: their pairs are no candidates
        r.clusters.union(rng.randrange(400), rng.randrange(400))
    want, want_compared = _candidates(r, old=True)
    got, got_compared = _candidates(r, old=False)
    assert want, "the generated names must give candidates"
    assert got == want
    assert got_compared == want_compared

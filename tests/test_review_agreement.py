"""Agreement between reviewers: Cohen's and Fleiss' kappa against hand-computed and published
examples and against statsmodels, both on tables and on verdicts given through the API."""

from __future__ import annotations

import random

import numpy as np
import pytest
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa

from gateway.review.agreement import LABELS, FleissTally, cohen_kappa
from tests.conftest import RigFactory
from tests.test_review import enqueue
from tests.test_review_multi import judge_all, multi_rig, stats

# Fleiss (1971) as worked through on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters,
# 5 categories; P-bar 0.378, P-bar-e 0.213, kappa 0.210.
PUBLISHED_FLEISS = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]  # fmt: skip


def tally(table: list[list[int]]) -> FleissTally:
    result = FleissTally(raters=sum(table[0]))
    for row in table:
        result.add({f"c{j}": c for j, c in enumerate(row) if c})
    return result


def test_cohen_kappa_of_a_hand_computed_table() -> None:
    # 10 items: observed agreement 7/10; marginals 5,3,2 and 5,4,1 give chance agreement
    # (25 + 12 + 2) / 100 = 0.39; kappa = (0.7 - 0.39) / 0.61.
    assert cohen_kappa([[4, 1, 0], [1, 2, 0], [0, 1, 1]]) == pytest.approx(0.31 / 0.61)


def test_fleiss_kappa_of_a_hand_computed_and_a_published_example() -> None:
    # Three items, three raters: squares 9 + 5 + 5, P-bar = (19 - 9) / 18 = 5/9; label shares
    # 5/9, 2/9, 2/9 give P-bar-e = 33/81; kappa = (45/81 - 33/81) / (48/81) = 1/4.
    assert tally([[3, 0, 0], [2, 1, 0], [0, 1, 2]]).kappa() == pytest.approx(0.25)
    published = tally(PUBLISHED_FLEISS)
    assert published.observed == pytest.approx(0.378, abs=5e-4)
    assert published.kappa() == pytest.approx(0.210, abs=5e-4)


def test_kappa_is_undefined_when_everyone_always_gives_one_label() -> None:
    assert cohen_kappa([[5, 0, 0], [0, 0, 0], [0, 0, 0]]) is None
    assert tally([[3, 0], [3, 0]]).kappa() is None
    assert FleissTally(raters=3).kappa() is None


@pytest.mark.parametrize("seed", range(20))
def test_kappa_matches_statsmodels_on_random_tables(seed: int) -> None:
    rng = random.Random(seed)
    pairs = [[rng.randrange(0, 9) for _ in range(3)] for _ in range(3)]
    assert cohen_kappa(pairs) == pytest.approx(cohens_kappa(np.array(pairs)).kappa)
    raters = rng.randrange(2, 7)
    rows = []
    for _ in range(rng.randrange(2, 40)):
        counts = [0, 0, 0]
        for _ in range(raters):
            counts[rng.choices(range(3), weights=(5, 3, 2))[0]] += 1
        rows.append(counts)
    assert tally(rows).kappa() == pytest.approx(fleiss_kappa(np.array(rows), method="fleiss"))


async def test_two_reviewers_agreement_is_cohens_kappa_of_their_verdicts(
    make_rig: RigFactory,
) -> None:
    r, a, i = LABELS
    ann = [r, r, r, r, a, a, a, a, i, i, i, i]
    bob = [r, r, r, a, a, a, a, i, i, i, r, a]
    rig = await multi_rig(make_rig, 2)
    await enqueue(rig, [float(20 - n) for n in range(len(ann) + 1)])
    await judge_all(rig, "ann", [*ann, "regression"])  # the last item waits for bob
    await judge_all(rig, "bob", bob, limit=len(bob))
    codes = {label: n for n, label in enumerate(LABELS)}
    table = np.zeros((3, 3))
    for a, b in zip(ann, bob, strict=True):
        table[codes[a], codes[b]] += 1
    agreement = (await stats(rig))["agreement"]
    assert agreement["items"] == len(ann)
    assert agreement["method"] == "cohen"
    assert agreement["kappa"] == pytest.approx(cohens_kappa(table).kappa)
    assert agreement["fleiss_kappa"] == pytest.approx(fleiss_kappa(aggregate_raters(
        np.array([[codes[a], codes[b]] for a, b in zip(ann, bob, strict=True)]))[0]))  # fmt: skip


async def test_several_reviewers_agreement_is_fleiss_kappa_of_their_verdicts(
    make_rig: RigFactory,
) -> None:
    rng = random.Random(7)
    votes = [[rng.choice(LABELS) for _ in range(4)] for _ in range(10)]
    rig = await multi_rig(make_rig, 4)
    await enqueue(rig, [float(20 - n) for n in range(len(votes))])
    for k, reviewer in enumerate(("ann", "bob", "cid", "dee")):
        await judge_all(rig, reviewer, [v[k] for v in votes])
    codes = {label: n for n, label in enumerate(LABELS)}
    counts, _ = aggregate_raters(np.array([[codes[x] for x in v] for v in votes]), n_cat=3)
    agreement = (await stats(rig))["agreement"]
    assert (agreement["items"], agreement["method"]) == (10, "fleiss")
    assert agreement["kappa"] == pytest.approx(fleiss_kappa(counts, method="fleiss"))

"""The matcher's assignment (xpbase/matching.py) against a brute-force optimum, and its slot arithmetic."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from xpbase.matching import Pair, Weights, intersect, slot_starts, solve


@st.composite
def instances(draw: st.DrawFn) -> tuple[list[int], dict[str, int], dict[tuple[int, str], Pair]]:
    """Up to 5 requests, 3 professionals with capacity 0-2, some pairs infeasible, scores in 0..max."""
    requests = list(range(draw(st.integers(1, 5))))
    capacity = {f"p{j}": draw(st.integers(0, 2)) for j in range(draw(st.integers(1, 3)))}
    pairs: dict[tuple[int, str], Pair] = {}
    for r in requests:
        for p in capacity:
            if draw(st.booleans()) or draw(st.booleans()):
                score = draw(st.floats(0, Weights().max_score, allow_nan=False))
                pairs[(r, p)] = Pair(r, p, score, {}, (0,))
    return requests, capacity, pairs


def brute_force(
    requests: list[int], capacity: dict[str, int], pairs: dict[tuple[int, str], Pair]
) -> tuple[int, float]:
    """The best (matched count, total score) over every assignment of requests to a professional or none."""
    best = (0, 0.0)
    for choice in itertools.product([None, *capacity], repeat=len(requests)):
        used: dict[str, int] = {}
        total, count, ok = 0.0, 0, True
        for r, p in zip(requests, choice, strict=True):
            if p is None:
                continue
            if (r, p) not in pairs:
                ok = False
                break
            used[p] = used.get(p, 0) + 1
            total += pairs[(r, p)].score
            count += 1
        if ok and all(used[p] <= capacity[p] for p in used) and (count, total) > best:
            best = (count, total)
    return best


@settings(max_examples=100, deadline=None)
@given(instances())
def test_assignment_equals_the_brute_force_optimum(
    instance: tuple[list[int], dict[str, int], dict[tuple[int, str], Pair]],
) -> None:
    """Most matches first, then the highest total score: the solver's answer equals exhaustive search."""
    requests, capacity, pairs = instance
    columns = [p for p, k in capacity.items() for _ in range(k)]
    chosen = solve(requests, columns, pairs, Weights().max_score)
    assert len({c.request_id for c in chosen}) == len(chosen)
    assert all(sum(c.professional_id == p for c in chosen) <= k for p, k in capacity.items())
    count, total = brute_force(requests, capacity, pairs)
    assert len(chosen) == count
    assert abs(sum(c.score for c in chosen) - total) < 1e-6


def test_intersection_and_slots_on_the_quarter_hour_grid() -> None:
    """Common time of two interval lists, then back-to-back slots starting on quarter hours."""
    common = intersect([(0, 3600), (7200, 14400)], [(1800, 9000), (10000, 20000)])
    assert common == [(1800, 3600), (7200, 9000), (10000, 14400)]
    assert slot_starts(common, 2700) == [10800]
    assert slot_starts([(100, 5500)], 1800) == [900, 2700]

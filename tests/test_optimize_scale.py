"""What makes the exact MCLP fast at city size stays exact, and the early answer is honest.

The westlake figures themselves are in bench/bench_optimize.py (instance (c)); here the pieces
behind them are checked against brute force: HiGHS given the incumbent as a cutoff, the
Lagrangian continued from an earlier run, and the ``on_incumbent`` callback of ``solve``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from coverage.optimize import CoverageProblem, solve
from coverage.optimize.heuristics import dot, greedy, lagrangian_coverage, undominated
from coverage.optimize.saving import _saving_milp, coverage_instance

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def coverage_instances(draw, max_demand=30, max_cand=9):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_d = draw(st.integers(1, max_demand))
    n_c = draw(st.integers(1, max_cand))
    a = rng.random((n_d, n_c)) < draw(st.sampled_from([0.15, 0.3, 0.6]))
    w = rng.integers(0, 50, n_d).astype(float)
    return w, a


def problem_of(w, a):
    d, c = np.nonzero(a)
    return CoverageProblem.from_pairs(
        w, d, c, np.zeros(d.size), threshold_min=1.0, n_candidates=a.shape[1]
    )


def brute(w, a, p):
    best = 0.0
    for S in itertools.combinations(range(a.shape[1]), min(p, a.shape[1])):
        best = max(best, float(w[a[:, list(S)].any(axis=1)].sum()))
    return best


def city(seed=3, n_d=1500, n_c=250, side_m=3000.0, radius_m=400.0):
    """A small stand-in for the westlake instance: random points, pairs within a radius."""
    rng = np.random.default_rng(seed)
    dxy, cxy = rng.uniform(0, side_m, (n_d, 2)), rng.uniform(0, side_m, (n_c, 2))
    coo = cKDTree(dxy).sparse_distance_matrix(cKDTree(cxy), radius_m, output_type="coo_matrix")
    return CoverageProblem.from_pairs(
        rng.integers(0, 400, n_d).astype(float),
        coo.row,
        coo.col,
        coo.data / 60.0,
        threshold_min=radius_m / 60.0,
        n_candidates=n_c,
    )


# --------------------------------------------------------------------------------------------
# HiGHS with the incumbent as a cutoff


@SETTINGS
@given(coverage_instances(), st.integers(1, 4), st.sampled_from([0.0, 0.5, 0.9, 1.0, 1.1]))
def test_milp_with_a_cutoff_bounds_every_site_set_and_finds_better_ones(wa, p, share):
    w, a = wa
    inst, _ = coverage_instance(problem_of(w, a))
    assume(inst.n_pairs > 0)  # solve_saving never asks HiGHS about an empty model
    best = brute(w, a, p)
    cutoff = share * best - 1e-9
    out, sites, bound, _ = _saving_milp(inst, p, True, 30.0, 0.0, cutoff=cutoff)
    assert out.status in (0, 2)
    assert bound >= best - 1e-6  # what HiGHS proves holds for every site set, cut off or not
    if share < 1.0 and best > 0:
        # a better set exists: HiGHS must find the optimum itself
        assert sites.size <= p
        assert inst.saving(sites) == pytest.approx(best)
    if out.status == 2:
        assert best <= cutoff + 1e-6  # "infeasible" only when nothing beats the cutoff


# --------------------------------------------------------------------------------------------
# dominated candidates


@SETTINGS
@given(coverage_instances(max_demand=12, max_cand=9), st.integers(1, 4))
def test_dropping_dominated_candidates_keeps_the_optimum(wa, p):
    w, a = wa
    a = a.copy()
    a[:, -1] |= a[:, 0]  # make sure some candidate contains another's set
    inst, _ = coverage_instance(problem_of(w, a))
    useful = inst.useful_candidates()
    kept = undominated(inst, useful)
    assert set(kept) <= set(useful)
    sets = [
        set(inst.pair_demand[inst.cand_ptr[j] : inst.cand_ptr[j + 1]]) for j in range(a.shape[1])
    ]
    for r in set(useful) - set(kept):
        assert any(sets[r] <= sets[c] for c in kept)  # each dropped one is covered by a kept one
    for x, y in itertools.combinations(kept, 2):
        assert sets[x] != sets[y]  # of equal sets one stays
    keep_cols = np.zeros(a.shape[1], dtype=bool)
    keep_cols[kept] = True
    assert brute(w, a & keep_cols, p) == pytest.approx(brute(w, a, p))


# --------------------------------------------------------------------------------------------
# the Lagrangian continued from an earlier run


@SETTINGS
@given(coverage_instances(max_demand=40, max_cand=10), st.integers(1, 4))
def test_lagrangian_continued_keeps_a_valid_and_no_worse_bound(wa, p):
    w, a = wa
    p = min(p, a.shape[1])
    inst, _ = coverage_instance(problem_of(w, a))
    best = brute(w, a, p)
    start = greedy(inst, p).order
    first = lagrangian_coverage(inst, p, start=start, tol=1e-9, max_iter=20, swap_every=10)
    more = lagrangian_coverage(
        inst, p, start=first.sites, tol=1e-9, max_iter=50, swap_every=25, warm=first
    )
    assert first.bound >= best - 1e-6 and more.bound >= best - 1e-6
    assert more.bound <= first.bound + 1e-9
    assert more.value >= first.value
    assert more.value == pytest.approx(inst.saving(more.sites))


def test_dot_without_blas_equals_numpy_dot():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=30_000), rng.normal(size=30_000)
    assert dot(a, b) == pytest.approx(float(np.dot(a, b)), rel=1e-12)
    assert dot(np.empty(0), np.empty(0)) == 0.0


# --------------------------------------------------------------------------------------------
# the early answer: solve(..., on_incumbent=)


def test_on_incumbent_gets_the_heuristic_answer_before_the_exact_one():
    problem = city()
    seen = []
    exact = solve(problem, "mclp", p=12, method="exact", mip_rel_gap=0.0, on_incumbent=seen.append)
    heuristic = solve(problem, "mclp", p=12, method="heuristic")
    assert len(seen) == 1
    first = seen[0]
    # this instance is chosen so that HiGHS has to run: the heuristic is not proven optimal
    assert first is not exact and first.method == "heuristic" and not first.optimal
    assert exact.optimal and exact.method == "exact"
    # the same iterations as method="heuristic": the same sites and bound, shown early
    assert first.objective == pytest.approx(heuristic.objective)
    assert first.bound == pytest.approx(heuristic.bound)
    assert np.array_equal(np.sort(first.selected), np.sort(heuristic.selected))
    # honest: no better than the optimum, and its bound holds for it
    assert first.objective <= exact.objective + 1e-6
    assert first.bound >= exact.objective - 1e-6
    assert first.gap == pytest.approx((first.bound - first.objective) / first.objective)


@pytest.mark.parametrize(
    ("model", "kw"),
    [
        ("mclp", {"p": 12, "method": "heuristic"}),
        ("pmedian", {"p": 5, "method": "heuristic"}),
        ("lscp", {"method": "exact"}),
        ("capacitated", {"p": 4, "method": "heuristic"}),
    ],
)
def test_on_incumbent_gets_the_returned_answer_when_nothing_follows(model, kw):
    problem = city(n_d=300, n_c=40)
    if model == "capacitated":
        problem = CoverageProblem.from_pairs(
            problem.demand_weight,
            problem.pair_demand,
            problem.pair_candidate,
            problem.pair_minutes,
            threshold_min=problem.threshold_min,
            n_candidates=problem.n_candidates,
            candidate_capacity=np.full(problem.n_candidates, 2000.0),
        )
    seen = []
    sol = solve(problem, model, on_incumbent=seen.append, **kw)
    assert seen == [sol]


def test_an_exception_in_on_incumbent_propagates():
    def fail(_solution):
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="client went away"):
        solve(city(), "mclp", p=12, method="exact", on_incumbent=fail)

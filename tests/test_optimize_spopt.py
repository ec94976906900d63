"""Same answers as PySAL spopt (with CBC) on seeded instances: MCLP, LSCP and p-median.

spopt is the reference implementation planners know; it works on dense cost matrices and knows
nothing about existing facilities, so these instances have none, and the dense matrices are built
here only because the instances are small.  Our models get the same data as sparse pairs.
"""

from __future__ import annotations

import numpy as np
import pytest

from coverage.optimize import CoverageProblem, solve

pulp = pytest.importorskip("pulp")
spopt_locate = pytest.importorskip("spopt.locate")

SEEDS = (11, 22, 33)
METRES_PER_MIN = 60.0


def cbc():
    return pulp.PULP_CBC_CMD(msg=False)


def town(seed: int, n_demand: int = 60, n_cand: int = 15):
    """Demand and candidate points in a 3 x 3 km square; minutes = 1.3 x straight line / 60."""
    rng = np.random.default_rng(seed)
    dxy = rng.uniform(0, 3000, (n_demand, 2))
    cxy = rng.uniform(0, 3000, (n_cand, 2))
    minutes = 1.3 * np.linalg.norm(dxy[:, None] - cxy[None], axis=2) / METRES_PER_MIN
    weight = rng.integers(1, 200, n_demand).astype(float)
    return minutes, weight


def sparse_pairs(minutes: np.ndarray, cutoff_min: float):
    d, c = np.nonzero(minutes <= cutoff_min)
    return d, c, minutes[d, c]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [2, 4])
def test_mclp_equals_spopt(seed, p):
    minutes, weight = town(seed)
    threshold = 12.0
    d, c, m = sparse_pairs(minutes, threshold)
    problem = CoverageProblem.from_pairs(
        weight, d, c, m, threshold_min=threshold, n_candidates=minutes.shape[1]
    )
    ours = solve(problem, "mclp", p=p, method="exact", mip_rel_gap=0.0)
    ref = spopt_locate.MCLP.from_cost_matrix(
        minutes, weight, service_radius=threshold, p_facilities=p
    ).solve(cbc())
    assert ref.problem.status == 1
    assert ours.objective == pytest.approx(pulp.value(ref.problem.objective), rel=1e-9)
    assert ours.optimal


@pytest.mark.parametrize("seed", SEEDS)
def test_lscp_equals_spopt(seed):
    minutes, weight = town(seed)
    threshold = 10.0
    # spopt's LSCP is infeasible when a unit is beyond every candidate: keep coverable units
    keep = (minutes <= threshold).any(axis=1)
    minutes, weight = minutes[keep], weight[keep]
    d, c, m = sparse_pairs(minutes, threshold)
    problem = CoverageProblem.from_pairs(
        weight, d, c, m, threshold_min=threshold, n_candidates=minutes.shape[1]
    )
    ours = solve(problem, "lscp", method="exact")
    ref = spopt_locate.LSCP.from_cost_matrix(minutes, service_radius=threshold).solve(cbc())
    assert ref.problem.status == 1
    assert ours.objective == pulp.value(ref.problem.objective)
    assert ours.optimal
    assert ours.unreachable.size == 0
    assert ours.covered_after_population == pytest.approx(weight.sum())


def test_lscp_reports_what_spopt_calls_infeasible():
    minutes, weight = town(SEEDS[0])
    threshold = 6.0
    assert not (minutes <= threshold).any(axis=1).all()  # some units are beyond every site
    d, c, m = sparse_pairs(minutes, threshold)
    problem = CoverageProblem.from_pairs(
        weight, d, c, m, threshold_min=threshold, n_candidates=minutes.shape[1]
    )
    ours = solve(problem, "lscp", method="exact")
    beyond = np.flatnonzero(~(minutes <= threshold).any(axis=1))
    assert ours.unreachable.tolist() == beyond.tolist()
    assert ours.unreachable_population == pytest.approx(weight[beyond].sum())
    assert "beyond reach of every candidate" in ours.status
    # spopt's answer on the coverable units equals ours
    keep = ~np.isin(np.arange(weight.size), beyond)
    ref = spopt_locate.LSCP.from_cost_matrix(minutes[keep], service_radius=threshold).solve(cbc())
    assert ours.objective == pulp.value(ref.problem.objective)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [2, 3])
def test_pmedian_equals_spopt(seed, p):
    minutes, weight = town(seed, n_demand=40, n_cand=10)
    cutoff = 25.0
    penalty = 2 * cutoff
    # every unit needs at least one reachable candidate (spopt assigns all demand)
    keep = (minutes <= cutoff).any(axis=1)
    minutes, weight = minutes[keep], weight[keep]
    d, c, m = sparse_pairs(minutes, cutoff)
    problem = CoverageProblem.from_pairs(
        weight, d, c, m, threshold_min=15.0, cutoff_min=cutoff, n_candidates=minutes.shape[1]
    )
    ours = solve(problem, "pmedian", p=p, method="exact", mip_rel_gap=0.0, unserved_min=penalty)
    # spopt sees the same costs densely: pairs beyond the cutoff cost the penalty
    dense = np.where(minutes <= cutoff, minutes, penalty)
    ref = spopt_locate.PMedian.from_cost_matrix(dense, weight, p_facilities=p).solve(cbc())
    assert ref.problem.status == 1
    assert ours.objective == pytest.approx(pulp.value(ref.problem.objective), rel=1e-7)
    assert ours.optimal

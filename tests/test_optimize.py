"""Location optimization: exact answers equal brute force, heuristics are honest, inputs checked.

Brute force here is deliberately dense and naive (itertools.combinations over candidate sets,
a dense LP per set for capacitated coverage) so that it shares no code with the sparse models.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import coverage.optimize as opt
import coverage.optimize.highs as highs
from coverage.optimize import CoverageProblem, evaluate, solve, solve_colocated

THRESHOLD = 10.0
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------
# random small instances


@st.composite
def instances(draw, *, max_demand=10, max_cand=6, existing=True, capacity=False):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_d = draw(st.integers(1, max_demand))
    n_c = draw(st.integers(1, max_cand))
    density = draw(st.sampled_from([0.2, 0.5, 0.9]))
    mask = rng.random((n_d, n_c)) < density
    minutes = np.round(rng.uniform(0, 20, (n_d, n_c)), 1)
    weight = rng.integers(0, 60, n_d).astype(float)
    minutes_before = np.full(n_d, np.inf)
    if existing:
        has = rng.random(n_d) < 0.3
        minutes_before[has] = np.round(rng.uniform(0, 25, has.sum()), 1)
    d, c = np.nonzero(mask)
    cap = rng.uniform(10, 120, n_c).round() if capacity else None
    return {
        "weight": weight,
        "mask": mask,
        "minutes": minutes,
        "minutes_before": minutes_before,
        "d": d,
        "c": c,
        "n_c": n_c,
        "cap": cap,
        "rng": rng,
    }


def build(inst, **kw):
    return CoverageProblem.from_pairs(
        inst["weight"],
        inst["d"],
        inst["c"],
        inst["minutes"][inst["d"], inst["c"]],
        threshold_min=THRESHOLD,
        n_candidates=inst["n_c"],
        minutes_before=inst["minutes_before"],
        candidate_capacity=inst["cap"],
        **kw,
    )


def dense_cover(inst):
    a = inst["mask"] & (inst["minutes"] <= THRESHOLD)
    before = inst["minutes_before"] <= THRESHOLD
    return a, before


def brute_mclp(inst, p):
    a, before = dense_cover(inst)
    w = inst["weight"]
    best = 0.0
    for S in itertools.combinations(range(inst["n_c"]), p):
        hit = a[:, list(S)].any(axis=1) & ~before
        best = max(best, float(w[hit].sum()))
    return best


def brute_max_new(inst, k):
    return brute_mclp(inst, k)


def brute_pmedian(inst, p, penalty):
    w = inst["weight"]
    m = np.where(inst["mask"], inst["minutes"], np.inf)
    mb = inst["minutes_before"]
    has_option = np.isfinite(mb) | inst["mask"].any(axis=1)
    units = (w > 0) & has_option
    base = np.where(np.isfinite(mb), mb, penalty)
    best = math.inf
    for S in itertools.combinations(range(inst["n_c"]), p):
        cost = np.minimum(base, m[:, list(S)].min(axis=1)) if S else base
        best = min(best, float((w * cost)[units].sum()))
    return best


def lp_served(w, a, cap, sites, free, ex_a=None, ex_cap=None):
    """Dense LP: most weight served by the open ``sites`` (+ existing) within capacities.

    ``free`` are units already served by uncapacitated existing facilities.
    """
    n_d = w.size
    cols = [(i, j) for j in sites for i in range(n_d) if a[i, j] and not free[i] and w[i] > 0]
    ecols = []
    if ex_a is not None:
        ecols = [
            (i, e) for e in range(ex_a.shape[1]) for i in range(n_d) if ex_a[i, e] and w[i] > 0
        ]
    nv = len(cols) + len(ecols)
    if nv == 0:
        return 0.0
    c = -np.array([w[i] for i, _ in cols] + [w[i] for i, _ in ecols])
    A, b = [], []
    for i in range(n_d):
        row = [1.0 if ci == i else 0.0 for ci, _ in cols] + [
            1.0 if ci == i else 0.0 for ci, _ in ecols
        ]
        A.append(row)
        b.append(1.0)
    for j in sites:
        if np.isfinite(cap[j]):
            A.append([w[i] if cj == j else 0.0 for i, cj in cols] + [0.0] * len(ecols))
            b.append(cap[j])
    if ex_a is not None:
        for e in range(ex_a.shape[1]):
            if np.isfinite(ex_cap[e]):
                A.append([0.0] * len(cols) + [w[i] if ce == e else 0.0 for i, ce in ecols])
                b.append(ex_cap[e])
    res = linprog(c, A_ub=np.array(A), b_ub=np.array(b), bounds=(0, 1), method="highs")
    assert res.status == 0
    return -res.fun


def brute_capacitated(inst, p, ex_a=None, ex_cap=None):
    a, before = dense_cover(inst)
    w = inst["weight"]
    free = before if ex_a is None else np.zeros(w.size, dtype=bool)
    base = lp_served(w, a, inst["cap"], [], free, ex_a, ex_cap)
    best = 0.0
    for S in itertools.combinations(range(inst["n_c"]), p):
        best = max(best, lp_served(w, a, inst["cap"], list(S), free, ex_a, ex_cap) - base)
    return best


def close(a, b, tol=1e-6):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


# ---------------------------------------------------------------------------------------------
# exact = brute force; heuristics never beat exact; bounds hold


@SETTINGS
@given(instances(), st.data())
def test_mclp_matches_brute_force(inst, data):
    p = data.draw(st.integers(0, inst["n_c"]))
    problem = build(inst)
    best = brute_mclp(inst, p)
    exact = solve(problem, "mclp", p=p, method="exact", mip_rel_gap=0.0)
    heur = solve(problem, "mclp", p=p, method="heuristic")
    assert close(exact.objective, best)
    assert exact.optimal
    assert heur.objective <= exact.objective + 1e-6
    for s in (exact, heur):
        assert s.bound >= best - 1e-6  # a bound must hold for the true optimum
        assert s.bound >= s.objective - 1e-9
        assert s.gap >= 0
        assert s.n_sites <= p
        assert close(float(s.gains.sum()), s.objective)
        assert np.all(np.diff(s.gains) <= 1e-9)  # ranked by marginal gain
        assert np.all(s.gains > 0)
        # the curve starts at existing coverage and ends at coverage after
        assert s.curve[0] == (0, pytest.approx(s.covered_before_population))
        assert s.curve[-1][1] == pytest.approx(s.covered_after_population)
        again = evaluate(problem, "mclp", s.selected)
        assert close(again.objective, s.objective)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_demand=40, max_cand=11), st.integers(2, 4))
def test_mclp_lagrangian_fixing_keeps_the_optimum(inst, p):
    # larger instances, where greedy+swap is rarely proven optimal by its own bound, so the
    # exact path runs the Lagrangian relaxation and fixes sites before HiGHS
    p = min(p, inst["n_c"])
    problem = build(inst)
    best = brute_mclp(inst, p)
    exact = solve(problem, "mclp", p=p, method="exact", mip_rel_gap=0.0)
    heur = solve(problem, "mclp", p=p, method="heuristic", mip_rel_gap=0.0)
    assert close(exact.objective, best)
    assert exact.bound >= best - 1e-6
    assert heur.bound >= best - 1e-6
    assert heur.objective <= best + 1e-6


@SETTINGS
@given(instances(), st.data())
def test_lscp_reaches_target_with_minimum_count(inst, data):
    target = data.draw(st.sampled_from([None, 0.3, 0.6, 0.9, 1.0]))
    problem = build(inst)
    a, before = dense_cover(inst)
    w = inst["weight"]
    total = w.sum()
    reach_all = float(w[a.any(axis=1) & ~before & (w > 0)].sum())
    covered = float(w[before].sum())
    need = reach_all if target is None else target * total - covered
    need = min(need, reach_all)
    best_k = next(k for k in range(inst["n_c"] + 1) if brute_max_new(inst, k) >= need - 1e-6)
    exact = solve(problem, "lscp", target_coverage=target, method="exact", mip_rel_gap=0.0)
    heur = solve(problem, "lscp", target_coverage=target, method="heuristic")
    assert exact.n_sites == best_k
    assert exact.objective == best_k
    assert exact.optimal
    assert heur.n_sites >= best_k
    for s in (exact, heur):
        assert s.bound <= best_k + 1e-9  # a lower bound for a minimisation
        newly = s.covered_after_population - s.covered_before_population
        assert newly >= need - 1e-6
        if target is not None and target * total > covered + reach_all + 1e-6:
            assert s.shortfall_population == pytest.approx(target * total - covered - reach_all)
            assert "cannot be reached" in s.status


@SETTINGS
@given(instances(), st.data())
def test_pmedian_matches_brute_force(inst, data):
    p = data.draw(st.integers(0, inst["n_c"]))
    problem = build(inst)
    penalty = 2 * problem.cutoff_min
    best = brute_pmedian(inst, p, penalty)
    exact = solve(problem, "pmedian", p=p, method="exact", mip_rel_gap=0.0)
    heur = solve(problem, "pmedian", p=p, method="heuristic")
    assert close(exact.objective, best)
    assert heur.objective >= exact.objective - 1e-6
    for s in (exact, heur):
        assert s.bound <= best + 1e-6
        assert s.objective_curve[-1][1] == pytest.approx(s.objective)
        assert np.all(s.gains > 0)
        assert close(s.objective_curve[0][1] - float(s.gains.sum()), s.objective)
        assert np.all(s.minutes_after <= inst["minutes_before"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_demand=7, max_cand=5, capacity=True), st.data())
def test_capacitated_matches_brute_force(inst, data):
    p = data.draw(st.integers(0, inst["n_c"]))
    problem = build(inst)
    best = brute_capacitated(inst, p)
    exact = solve(problem, "capacitated", p=p, method="exact", mip_rel_gap=0.0)
    heur = solve(problem, "capacitated", p=p, method="heuristic")
    assert close(exact.objective, best, 1e-5)
    assert heur.objective <= exact.objective + 1e-5
    for s in (exact, heur):
        assert s.bound >= best - 1e-5
        assert np.all((s.covered_after >= -1e-9) & (s.covered_after <= 1 + 1e-9))
        assert close(float(s.gains.sum()), s.objective, 1e-5)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_demand=6, max_cand=4, capacity=True), st.data())
def test_capacitated_with_existing_capacities_matches_brute_force(inst, data):
    rng = inst["rng"]
    n_e = data.draw(st.integers(1, 2))
    n_d = inst["weight"].size
    ex_a = rng.random((n_d, n_e)) < 0.5
    ex_min = np.round(rng.uniform(0, 9, (n_d, n_e)), 1)  # all within the threshold
    ex_cap = rng.uniform(5, 80, n_e).round()
    ed, ef = np.nonzero(ex_a)
    p = data.draw(st.integers(0, inst["n_c"]))
    problem = CoverageProblem.from_pairs(
        inst["weight"],
        inst["d"],
        inst["c"],
        inst["minutes"][inst["d"], inst["c"]],
        threshold_min=THRESHOLD,
        n_candidates=inst["n_c"],
        candidate_capacity=inst["cap"],
        existing_pairs=(ed, ef, ex_min[ed, ef]),
        existing_capacity=ex_cap,
    )
    best = brute_capacitated(inst, p, ex_a, ex_cap)
    exact = solve(problem, "capacitated", p=p, method="exact", mip_rel_gap=0.0)
    assert close(exact.objective, best, 1e-5)
    base = lp_served(
        inst["weight"], dense_cover(inst)[0], inst["cap"], [], np.zeros(n_d, bool), ex_a, ex_cap
    )
    assert exact.covered_before_population == pytest.approx(base, rel=1e-6, abs=1e-6)


@SETTINGS
@given(instances())
def test_more_sites_never_lower_mclp(inst):
    problem = build(inst)
    values = [
        solve(problem, "mclp", p=p, method="exact", mip_rel_gap=0.0).objective
        for p in range(inst["n_c"] + 1)
    ]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(values))


@SETTINGS
@given(instances(existing=False, max_demand=8, max_cand=5), st.data())
def test_colocated_maximises_weighted_sum(inst, data):
    rng = inst["rng"]
    second = dict(inst)
    second["weight"] = rng.integers(0, 40, inst["weight"].size).astype(float)
    second["mask"] = rng.random(inst["mask"].shape) < 0.5
    second["d"], second["c"] = np.nonzero(second["mask"])
    wa, wb = data.draw(st.sampled_from([(1.0, 1.0), (1.0, 3.0), (2.0, 0.5)]))
    p = data.draw(st.integers(1, inst["n_c"]))
    res = solve_colocated(
        {"canteen": build(inst), "elderly_station": build(second)},
        {"canteen": wa, "elderly_station": wb},
        p=p,
        method="exact",
        mip_rel_gap=0.0,
    )
    a1, _ = dense_cover(inst)
    a2, _ = dense_cover(second)
    best = 0.0
    for S in itertools.combinations(range(inst["n_c"]), p):
        v = wa * inst["weight"][a1[:, list(S)].any(axis=1)].sum()
        v += wb * second["weight"][a2[:, list(S)].any(axis=1)].sum()
        best = max(best, float(v))
    assert close(res.combined.objective, best)
    layers = res.per_layer
    got = wa * layers["canteen"].objective + wb * layers["elderly_station"].objective
    assert close(got, best)
    assert np.array_equal(layers["canteen"].selected, res.combined.selected)


# ---------------------------------------------------------------------------------------------
# fixed cases: reporting, unreachable demand, explanations


def line_problem(**kw):
    """Five units on a line, three candidates; unit 4 is beyond every candidate."""
    w = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    d = np.array([0, 1, 1, 2, 3, 2])
    c = np.array([0, 0, 1, 1, 2, 2])
    m = np.array([2.0, 5.0, 3.0, 8.0, 4.0, 12.0])
    return CoverageProblem.from_pairs(w, d, c, m, threshold_min=10.0, n_candidates=3, **kw)


def test_unreachable_demand_is_reported_with_population():
    problem = line_problem()
    sol = solve(problem, "lscp")
    assert sol.unreachable.tolist() == [4]
    assert sol.unreachable_population == 50.0
    assert "1 demand units (50 people)" in sol.status
    assert "beyond reach of every candidate" in sol.status
    # every reachable unit is covered with the fewest sites: {0 or 1}, 1, 2 -> 3 sites
    assert sol.n_sites == 3
    assert sol.covered_after[:4].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert sol.covered_after[4] == 0.0


def test_lscp_explains_an_unreachable_target():
    problem = line_problem()
    sol = solve(problem, "lscp", target_coverage=0.95)
    assert sol.shortfall_population == pytest.approx(0.95 * 150 - 100)
    assert "cannot be reached" in sol.status
    assert "42 people short" in sol.status
    assert sol.n_sites == 3


def test_lscp_target_already_met_needs_no_site():
    problem = line_problem(minutes_before=np.array([1.0, 1.0, np.inf, 1.0, 1.0]))
    sol = solve(problem, "lscp", target_coverage=0.7)
    assert sol.n_sites == 0
    assert sol.optimal
    assert "already meet" in sol.status


def test_mclp_drops_sites_that_add_nothing():
    problem = line_problem()
    sol = solve(problem, "mclp", p=3, method="exact")
    assert sol.objective == 100.0
    assert sol.gains.tolist() == [50.0, 40.0, 10.0]
    assert sol.selected.tolist() == [1, 2, 0]
    sol2 = solve(
        line_problem(minutes_before=np.array([1.0, np.inf, np.inf, np.inf, np.inf])),
        "mclp",
        p=3,
    )
    assert sol2.selected.tolist() == [1, 2]
    assert "only 2 of the 3 sites" in sol2.status
    assert sol2.curve == ((0, 10.0), (1, 60.0), (2, 100.0))


def test_solution_table_and_per_area():
    area = np.array(["湖滨", "湖滨", "清波", "清波", "小营"])
    problem = line_problem(demand_area=area)
    sol = solve(problem, "mclp", p=2)
    table = sol.table()
    assert table["rank"].tolist() == [1, 2]
    assert table["added_population"].tolist() == [50.0, 40.0]
    assert table["coverage_rate_after"].iloc[-1] == pytest.approx(90 / 150)
    per = sol.per_area.set_index("area")
    assert per["population"].sum() == 150.0
    assert per.loc["小营", "coverage_rate_after"] == 0.0
    assert per["covered_after"].sum() == pytest.approx(sol.covered_after_population)
    assert per["added_population"].sum() == pytest.approx(sol.objective)


def test_pmedian_penalty_and_assignment():
    problem = line_problem(minutes_before=np.array([1.0, np.inf, np.inf, np.inf, np.inf]))
    sol = solve(problem, "pmedian", p=1, unserved_min=30.0)
    # candidate 1 serves units 1 (3 min) and 2 (8 min); units 3 and 4 pay the penalty / are out
    # candidate 2 serves 2 (12) and 3 (4): 10*1 + 20*30 + 30*12 + 40*4 = 1130
    # candidate 1: 10*1 + 20*3 + 30*8 + 40*30 = 1510 ; candidate 0: 10 + 20*5 + 30*30 + 40*30
    assert sol.selected.tolist() == [2]
    assert sol.objective == pytest.approx(1130.0)
    assert sol.unreachable.tolist() == [4]
    assert sol.assigned_candidate.tolist() == [-1, -1, 2, 2, -1]
    assert sol.minutes_after[4] == math.inf
    assert "count 30 min each" in sol.status


def test_resolve_curve_is_at_least_the_nested_curve():
    rng = np.random.default_rng(3)
    n_d, n_c = 60, 12
    mask = rng.random((n_d, n_c)) < 0.25
    d, c = np.nonzero(mask)
    problem = CoverageProblem.from_pairs(
        rng.integers(1, 50, n_d).astype(float),
        d,
        c,
        rng.uniform(0, 9, d.size),
        threshold_min=10.0,
        n_candidates=n_c,
    )
    sol = solve(problem, "mclp", p=4, resolve_curve=True)
    assert len(sol.best_curve) == 5
    for (k, nested), (k2, best) in zip(sol.objective_curve, sol.best_curve, strict=False):
        assert k == k2
        assert best >= nested - 1e-9


def test_swap_improves_on_greedy_where_greedy_is_myopic():
    # classic trap: one big site covering half of two clusters; two small sites cover each
    # cluster fully.  Greedy takes the big one first; swap must fix it.
    w = np.ones(6) * 10
    d = np.array([1, 2, 3, 4, 0, 1, 2, 3, 4, 5])
    c = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    problem = CoverageProblem.from_pairs(w, d, c, np.ones(d.size), threshold_min=5.0)
    sol = solve(problem, "mclp", p=2, method="heuristic")
    assert sol.objective == 60.0
    assert sorted(sol.selected.tolist()) == [1, 2]
    assert sol.source == "greedy+swap"


def test_fallback_to_heuristic_when_highs_stops_with_a_worse_incumbent(monkeypatch):
    rng = np.random.default_rng(7)
    n_d, n_c = 80, 15
    mask = rng.random((n_d, n_c)) < 0.2
    d, c = np.nonzero(mask)
    problem = CoverageProblem.from_pairs(
        rng.integers(1, 50, n_d).astype(float),
        d,
        c,
        rng.uniform(0, 9, d.size),
        threshold_min=10.0,
        n_candidates=n_c,
    )
    heur = solve(problem, "mclp", p=3, method="heuristic")
    real_milp = highs.milp
    calls = []

    def timed_out(cost, **kw):
        calls.append(1)
        res = real_milp(cost, **kw)
        x = np.zeros_like(res.x)  # a poor incumbent: no site open
        return type(res)(
            x=x,
            status=1,
            message="Time limit reached",
            fun=0.0,
            mip_dual_bound=res.fun,
            mip_node_count=10,
            mip_gap=1.0,
            success=False,
        )

    monkeypatch.setattr(highs, "milp", timed_out)
    sol = solve(problem, "mclp", p=3, method="exact", time_limit_s=1)
    assert calls, "the heuristic was proven optimal: pick an instance where HiGHS has to run"
    assert sol.objective == pytest.approx(heur.objective)
    assert sol.source in {"greedy", "greedy+swap"}
    assert "time limit" in sol.status
    assert "beat HiGHS's incumbent" in sol.status
    assert sol.bound_kind.startswith("HiGHS dual bound")
    assert sol.bound >= sol.objective


def test_auto_picks_heuristic_above_the_size_limit(monkeypatch):
    problem = line_problem()
    assert solve(problem, "mclp", p=1).method == "exact"
    monkeypatch.setitem(opt.AUTO_EXACT_MAX_PAIRS, "mclp", 0)
    assert solve(problem, "mclp", p=1).method == "heuristic"


def test_inputs_are_not_modified():
    w = np.array([1.0, 2.0, 3.0])
    d = np.array([2, 0, 1, 0])
    c = np.array([0, 1, 1, 1])
    m = np.array([1.0, 9.0, 2.0, 3.0])  # duplicate (0, 1): the shorter one counts
    mb = np.array([np.inf, 20.0, np.inf])
    copies = [a.copy() for a in (w, d, c, m, mb)]
    problem = CoverageProblem.from_pairs(w, d, c, m, threshold_min=5.0, minutes_before=mb)
    solve(problem, "pmedian", p=1)
    for a, b in zip((w, d, c, m, mb), copies, strict=True):
        assert np.array_equal(a, b)
    assert problem.n_pairs == 3
    assert problem.pair_minutes[problem.pair_demand == 0].tolist() == [3.0]
    assert not problem.demand_weight.flags.writeable


# ---------------------------------------------------------------------------------------------
# invalid input -> ValueError with a clear message (a library API: misuse is a programmer's error)


@pytest.mark.parametrize(
    ("kwargs", "solve_kw", "fragment"),
    [
        ({}, {"model": "mclp", "p": 4}, "only 3 candidate sites"),
        ({}, {"model": "mclp"}, "`p` (number of new sites)"),
        ({}, {"model": "mclp", "p": -1}, "`p` must be >= 0"),
        ({}, {"model": "lscp", "p": 2}, "LSCP finds the number"),
        ({}, {"model": "lscp", "target_coverage": 1.5}, "share in (0, 1]"),
        ({}, {"model": "mclp", "p": 1, "target_coverage": 0.5}, "only used by LSCP"),
        ({}, {"model": "pcenter", "p": 1}, "unknown model"),
        ({}, {"model": "mclp", "p": 1, "method": "fast"}, "unknown method"),
        ({}, {"model": "mclp", "p": 1, "time_limit_s": 0}, "time_limit_s"),
        ({}, {"model": "pmedian", "p": 1, "unserved_min": -3}, "unserved_min"),
    ],
)
def test_bad_solve_arguments(kwargs, solve_kw, fragment):
    problem = line_problem(**kwargs)
    model = solve_kw.pop("model")
    with pytest.raises(ValueError, match=None) as err:
        solve(problem, model, **solve_kw)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


W = np.array([1.0, 2.0, 3.0])
D = np.array([0, 1, 2])
C = np.array([0, 1, 1])
M = np.array([1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("args", "kwargs", "fragment"),
    [
        ((np.array([1.0, -2.0, 3.0]), D, C, M), {}, "negative (-2)"),
        ((np.array([1.0, np.nan, 3.0]), D, C, M), {}, "demand weight of unit 1 is nan"),
        ((W, D, C[:2], M), {}, "pair arrays differ in length"),
        ((W, np.array([0, 1, 3]), C, M), {}, "outside 0..2"),
        ((W, D, np.array([0, 1, 5]), M), {"n_candidates": 2}, "candidate 5, outside 0..1"),
        ((W, D, C, np.array([1.0, np.inf, 3.0])), {}, "leave unreachable pairs out"),
        ((W, D, C, np.array([1.0, -1.0, 3.0])), {}, "negative minutes"),
        ((W, D, C, M), {"threshold_min": 0}, "threshold_min` must be > 0"),
        ((W, D, C, M), {"minutes_before": np.ones(2)}, "has 2 entries but there are 3"),
        (
            (W, D, C, M),
            {"covered_before": [True, False, False], "minutes_before": [30.0, 1.0, 1.0]},
            "marked covered",
        ),
        ((W, D, C, M), {"candidate_capacity": [1.0, np.nan]}, "use inf for unlimited"),
        ((W, D, C, M), {"existing_capacity": [5.0]}, "given together"),
        ((W, D, C, M), {"threshold_min": 1.0, "cutoff_min": 2.0}, "beyond cutoff_min"),
        ((W, D, C, M), {"cutoff_min": 2.0}, "must be finite and >= threshold_min"),
        ((W, np.array([0.5, 1, 2]), C, M), {}, "whole-number indices"),
        ((W, D, C, M), {"demand_area": ["a", "b"]}, "demand_area"),
    ],
)
def test_bad_problem_inputs(args, kwargs, fragment):
    kwargs = {"threshold_min": 10.0, **kwargs}
    with pytest.raises(ValueError) as err:
        CoverageProblem.from_pairs(*args, **kwargs)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_colocated_inputs():
    a = line_problem()
    b = CoverageProblem.from_pairs(W, D, C, M, threshold_min=10.0, n_candidates=2)
    with pytest.raises(ValueError, match="different numbers of candidates"):
        solve_colocated({"x": a, "y": b}, {"x": 1.0, "y": 1.0}, p=1)
    with pytest.raises(ValueError, match="name different layers"):
        solve_colocated({"x": a}, {"y": 1.0}, p=1)
    with pytest.raises(ValueError, match="lists a candidate twice"):
        evaluate(a, "mclp", [1, 1])

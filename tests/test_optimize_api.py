"""The optimizer's library face: from_cost_matrix, the documented API, and a cycle-free package.

``CoverageProblem.from_cost_matrix`` is for programmers with a cost matrix from any tool, so it
raises plain ValueError/TypeError (never the user-facing InputError), reads dense and sparse
matrices the same way, and does not care about the unit.
"""

from __future__ import annotations

import ast
import doctest
import graphlib
import inspect
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import coverage.optimize as opt
from coverage.optimize import CoverageProblem, solve
from layers.errors import InputError

PACKAGE = Path(opt.__file__).parent
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------
# the package


def test_docstring_example_runs():
    result = doctest.testmod(opt, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5
    assert result.failed == 0


def test_public_api_is_listed_and_documented():
    assert sorted(opt.__all__) == sorted(set(opt.__all__))
    for name in opt.__all__:
        obj = getattr(opt, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert (obj.__doc__ or "").strip(), name
    # p counts new sites: said where a caller reads it
    assert "Number of *new* sites" in " ".join((opt.solve.__doc__ or "").split())
    assert "``p`` counts *new* sites" in " ".join((opt.__doc__ or "").split())


def _internal_imports(path: Path) -> set[str]:
    """Modules of coverage.optimize that ``path`` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name == "coverage.optimize" or name.startswith("coverage.optimize."):
                found.add(name)
    return found


def test_submodules_import_each_other_without_cycles():
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert {"problem", "solution", "heuristics", "highs", "api"} <= set(modules)
    graph = {}
    for stem, path in modules.items():
        deps = _internal_imports(path)
        # a submodule importing the package itself would run __init__ half-way: a cycle
        assert "coverage.optimize" not in deps, f"{stem} imports the package __init__"
        graph[stem] = {d.rsplit(".", 1)[1] for d in deps}
        assert graph[stem] <= set(modules), stem
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError
    assert order.index("heuristics") < order.index("problem") < order.index("api")


# ---------------------------------------------------------------------------------------------
# from_cost_matrix


def random_costs(seed: int, n_d: int = 30, n_c: int = 8, density: float = 0.4):
    rng = np.random.default_rng(seed)
    cost = np.round(rng.uniform(0, 20, (n_d, n_c)), 1)
    cost[rng.random((n_d, n_c)) > density] = np.inf
    cost[rng.random((n_d, n_c)) < 0.05] = 0.0  # exact zeros are costs, not "absent"
    weights = rng.integers(0, 50, n_d).astype(float)
    existing = np.where(rng.random(n_d) < 0.3, np.round(rng.uniform(0, 25, n_d), 1), np.inf)
    return cost, weights, existing


def to_sparse(cost: np.ndarray) -> sp.csr_array:
    """Finite entries stored explicitly (zeros too), unreachable ones absent."""
    d, c = np.nonzero(np.isfinite(cost))
    return sp.csr_array((cost[d, c], (d, c)), shape=cost.shape)


def same_solution(a, b):
    assert a.selected.tolist() == b.selected.tolist()
    assert a.objective == pytest.approx(b.objective, rel=1e-12)
    assert a.covered_after_population == pytest.approx(b.covered_after_population, rel=1e-12)
    np.testing.assert_array_equal(a.minutes_after, b.minutes_after)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), model=st.sampled_from(["mclp", "lscp", "pmedian"]))
def test_dense_and_sparse_give_the_same_solution(seed, model):
    cost, weights, existing = random_costs(seed)
    sparse = to_sparse(cost)
    assert sparse.nnz == int(np.isfinite(cost).sum())
    p = None if model == "lscp" else 3
    sols = []
    for matrix in (cost, sparse, sparse.tocoo(), sp.csc_matrix(sparse)):
        problem = CoverageProblem.from_cost_matrix(
            matrix, weights, threshold=10.0, existing_cost=existing
        )
        assert problem.n_pairs == int(np.isfinite(cost).sum())
        sols.append(solve(problem, model, p=p, method="exact", mip_rel_gap=0.0))
    for other in sols[1:]:
        same_solution(sols[0], other)


def test_explicit_sparse_zero_is_a_cost_and_absent_is_unreachable():
    sparse = sp.csr_array(([0.0, 0.0], ([0, 1], [1, 1])), shape=(3, 2))
    problem = CoverageProblem.from_cost_matrix(sparse, [5.0, 7.0, 11.0], threshold=1.0)
    assert problem.n_pairs == 2
    sol = solve(problem, "mclp", p=1)
    assert sol.selected.tolist() == [1]
    assert sol.objective == 12.0  # rows 0 and 1 at cost 0; row 2 reaches nothing
    assert sol.unreachable.tolist() == [2]


def test_from_cost_matrix_equals_from_pairs():
    cost, weights, existing = random_costs(4)
    d, c = np.nonzero(np.isfinite(cost))
    a = CoverageProblem.from_cost_matrix(cost, weights, threshold=10.0, existing_cost=existing)
    b = CoverageProblem.from_pairs(
        weights,
        d,
        c,
        cost[d, c],
        threshold_min=10.0,
        n_candidates=cost.shape[1],
        minutes_before=existing,
    )
    for name in ("pair_demand", "pair_candidate", "pair_minutes", "covered_before"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.cutoff_min == b.cutoff_min
    for model in ("mclp", "pmedian"):
        same_solution(solve(a, model, p=2), solve(b, model, p=2))


def test_the_unit_does_not_matter():
    """Minutes, or the same walk in metres (80 m/min) or seconds: the same sites."""
    cost, weights, existing = random_costs(9)
    sols = {}
    for unit, scale in (("min", 1.0), ("m", 80.0), ("s", 60.0)):
        problem = CoverageProblem.from_cost_matrix(
            cost * scale, weights, threshold=10.0 * scale, existing_cost=existing * scale
        )
        sols[unit] = {
            model: solve(problem, model, p=None if model == "lscp" else 2, method="exact")
            for model in ("mclp", "lscp", "pmedian")
        }
    for unit, scale in (("m", 80.0), ("s", 60.0)):
        for model in ("mclp", "lscp"):
            assert sols[unit][model].selected.tolist() == sols["min"][model].selected.tolist()
            assert sols[unit][model].objective == pytest.approx(sols["min"][model].objective)
        # p-median's objective is in the cost unit
        pm, ref = sols[unit]["pmedian"], sols["min"]["pmedian"]
        assert sorted(pm.selected.tolist()) == sorted(ref.selected.tolist())
        assert pm.objective == pytest.approx(scale * ref.objective)


def test_cutoff_drops_longer_pairs():
    cost, weights, _ = random_costs(2)
    problem = CoverageProblem.from_cost_matrix(cost, weights, threshold=10.0, cutoff=15.0)
    assert problem.n_pairs == int((cost <= 15.0).sum())
    assert problem.cutoff_min == 15.0
    assert problem.pair_minutes.max() <= 15.0


def test_p_counts_new_sites_existing_facilities_stay():
    # row 0 is covered by an existing facility; p = 1 adds one site, which covers rows 1 and 2
    cost = np.array([[3.0, 12.0], [14.0, 4.0], [np.inf, 9.0]])
    weights = [100.0, 80.0, 50.0]
    with_existing = CoverageProblem.from_cost_matrix(
        cost, weights, threshold=10.0, existing_cost=[6.0, np.inf, np.inf]
    )
    sol = solve(with_existing, "mclp", p=1)
    assert sol.n_sites == 1
    assert sol.covered_before_population == 100.0
    assert sol.objective == 130.0  # newly covered only
    assert sol.covered_after_population == 230.0
    without = solve(CoverageProblem.from_cost_matrix(cost, weights, threshold=10.0), "mclp", p=1)
    assert without.covered_before_population == 0.0
    assert without.objective == 130.0


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"cost": np.array([[1.0, np.nan]])}, ValueError, "NaN at (demand 0, candidate 1)"),
        ({"cost": np.array([[1.0], [-2.0]])}, ValueError, "negative at (demand 1, candidate 0)"),
        ({"cost": np.array([[1.0], [-np.inf]])}, ValueError, "negative"),
        (
            {"cost": sp.csr_array(([-1.0], ([0], [1])), shape=(2, 2))},
            ValueError,
            "negative at (demand 0, candidate 1)",
        ),
        ({"cost": np.ones(2)}, ValueError, "two-dimensional"),
        ({"cost": np.array([["a", "b"]])}, TypeError, "must hold numbers"),
        ({"cost": np.ones((2, 2), dtype=bool)}, TypeError, "must hold numbers"),
        ({"weights": [1.0, 2.0, 3.0]}, ValueError, "`weights` has shape (3,)"),
        ({"weights": [1.0, -2.0]}, ValueError, "row 1"),
        ({"weights": [1.0, np.inf]}, ValueError, "finite"),
        ({"threshold": 0.0}, ValueError, "`threshold`"),
        ({"threshold": np.nan}, ValueError, "`threshold`"),
        ({"threshold": True}, ValueError, "`threshold`"),
        ({"cutoff": 1.0}, ValueError, "`cutoff`"),
        ({"existing_cost": [1.0]}, ValueError, "`existing_cost` has shape (1,)"),
        ({"existing_cost": [1.0, np.nan]}, ValueError, "`existing_cost` of row 1"),
        ({"existing_cost": [-1.0, 2.0]}, ValueError, "`existing_cost` of row 0"),
        ({"candidate_capacity": [1.0]}, ValueError, "candidate_capacity"),
    ],
)
def test_misuse_raises_plain_errors(kwargs, error, words):
    args = {"cost": np.array([[1.0, 2.0], [3.0, np.inf]]), "weights": [1.0, 2.0]}
    args.update(kwargs)
    cost, weights = args.pop("cost"), args.pop("weights")
    args.setdefault("threshold", 5.0)
    with pytest.raises(error) as err:
        CoverageProblem.from_cost_matrix(cost, weights, **args)
    assert not isinstance(err.value, InputError)
    assert words in str(err.value)


def test_numpy_scalars_are_accepted():
    problem = CoverageProblem.from_cost_matrix(
        np.array([[1.0, 2.0]]), np.array([3]), threshold=np.float32(5.0), cutoff=np.int64(9)
    )
    assert problem.threshold_min == 5.0
    assert problem.cutoff_min == 9.0

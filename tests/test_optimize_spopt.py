"""Same answers as PySAL spopt (with CBC): MCLP, LSCP and p-median, on our instances and spopt's.

spopt is the reference implementation planners know; it works on dense cost matrices and knows
nothing about existing facilities, so these instances have none, and the dense matrices are built
here only because the instances are small.  Our models get the same data as sparse pairs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

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


# ---------------------------------------------------------------------------------------------
# spopt's own test instances, through CoverageProblem.from_cost_matrix
#
# spopt/tests/test_locate builds two instances: a synthetic 10 x 10 lattice (spaghetti network,
# 100 clients and 5 facilities simulated with seeds 5 and 6, network distances) and a real one
# (205 San Francisco census tracts x 16 stores, network metres, shipped as CSV).  Both are
# rebuilt here from the installed package; the lattice's weights are seeded (spopt draws them
# from numpy's unseeded global generator).


def spopt_data_dir():
    import spopt

    return Path(spopt.__file__).parent / "tests" / "test_locate" / "data"


@pytest.fixture(scope="module")
def lattice():
    """spopt's network_instance(100, 5): (cost matrix in lattice units, weights)."""
    spaghetti = pytest.importorskip("spaghetti")
    geopandas = pytest.importorskip("geopandas")
    from spopt.locate.util import simulated_geo_points

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ntw = spaghetti.Network(in_data=spaghetti.regular_lattice((0, 0, 10, 10), 9, exterior=True))
        arcs = spaghetti.element_as_gdf(ntw, arcs=True)
        street = geopandas.GeoDataFrame(
            geopandas.GeoSeries(arcs["geometry"].buffer(0.2).union_all()),
            crs=arcs.crs,
            columns=["geometry"],
        )
        ntw.snapobservations(simulated_geo_points(street, needed=100, seed=5), "clients")
        ntw.snapobservations(simulated_geo_points(street, needed=5, seed=6), "facilities")
        cost = ntw.allneighbordistances(
            sourcepattern=ntw.pointpatterns["clients"],
            destpattern=ntw.pointpatterns["facilities"],
        )
    weights = np.random.default_rng(5).integers(1, 12, 100).astype(float)
    return np.asarray(cost, dtype=float), weights


@pytest.fixture(scope="module")
def san_francisco():
    """spopt's TestRealWorldLocate: (205 x 16 network metres, POP2000 per tract)."""
    pd = pytest.importorskip("pandas")
    data = spopt_data_dir()
    if not (data / "SF_demand_205_centroid_uniform_weight.csv").exists():
        pytest.skip("spopt's test data is not installed")
    dist = pd.read_csv(data / "SF_network_distance_candidateStore_16_censusTract_205_new.csv")
    cost = dist.pivot_table(values="distance", index="DestinationName", columns="name")
    demand = pd.read_csv(data / "SF_demand_205_centroid_uniform_weight.csv")
    demand = demand.sort_values(by=["NAME"]).reset_index()
    # spopt pairs the pivot's sorted tract names with the tracts sorted by NAME: check that
    assert cost.index.tolist() == demand["NAME"].tolist()
    return cost.to_numpy(), demand["POP2000"].to_numpy(dtype=float)


def spopt_instance(name, request):
    return request.getfixturevalue(name)


INSTANCES = {
    # name: (MCLP service radius, p), LSCP radius, p-median p; radii and p as in spopt's tests
    "lattice": ((7.0, 4), (10.0, 8.0), 4),
    "san_francisco": ((5000.0, 4), (5000.0,), 4),
}


@pytest.mark.parametrize("name", INSTANCES)
def test_mclp_equals_spopt_on_its_own_instances(name, request):
    cost, weights = spopt_instance(name, request)
    (radius, p), _, _ = INSTANCES[name]
    ours = solve(
        CoverageProblem.from_cost_matrix(cost, weights, threshold=radius),
        "mclp",
        p=p,
        method="exact",
        mip_rel_gap=0.0,
    )
    ref = spopt_locate.MCLP.from_cost_matrix(cost, weights, radius, p).solve(cbc())
    assert ref.problem.status == 1
    assert ours.optimal
    assert ours.objective == pytest.approx(pulp.value(ref.problem.objective), rel=1e-9)
    # the same clients stay uncovered (spopt's own assertions count them)
    assert int((ours.covered_after < 1).sum()) == ref.n_cli_uncov
    assert 100 * ours.coverage_rate_after == pytest.approx(
        100 * pulp.value(ref.problem.objective) / weights.sum()
    )


@pytest.mark.parametrize("name", INSTANCES)
def test_lscp_equals_spopt_on_its_own_instances(name, request):
    cost, weights = spopt_instance(name, request)
    for radius in INSTANCES[name][1]:
        assert (cost <= radius).any(axis=1).all()  # spopt's LSCP needs every client coverable
        ours = solve(
            CoverageProblem.from_cost_matrix(cost, weights, threshold=radius),
            "lscp",
            method="exact",
        )
        ref = spopt_locate.LSCP.from_cost_matrix(cost, radius).solve(cbc())
        assert ref.problem.status == 1
        assert ours.optimal
        assert ours.objective == pulp.value(ref.problem.objective)
        assert ours.covered_after_population == pytest.approx(weights.sum())


@pytest.mark.parametrize("name", INSTANCES)
def test_pmedian_equals_spopt_on_its_own_instances(name, request):
    cost, weights = spopt_instance(name, request)
    p = INSTANCES[name][2]
    # the threshold only matters for coverage figures; p-median uses every finite cost
    problem = CoverageProblem.from_cost_matrix(cost, weights, threshold=float(np.median(cost)))
    ours = solve(problem, "pmedian", p=p, method="exact", mip_rel_gap=0.0)
    ref = spopt_locate.PMedian.from_cost_matrix(cost, weights, p_facilities=p).solve(cbc())
    assert ref.problem.status == 1
    assert ours.optimal
    assert ours.objective == pytest.approx(pulp.value(ref.problem.objective), rel=1e-7)
    assert ours.objective / weights.sum() == pytest.approx(ref.mean_dist, rel=1e-7)


def test_predefined_facilities_are_existing_ones_and_p_counts_new_sites(lattice):
    """spopt's preselected-facility MCLP: facilities 0, 1 and 3 forced open, p = 4 in total.

    Ours keeps them as existing facilities (``existing_cost``) and asks for p = 1 new site
    among the other two: the same covered population.
    """
    cost, weights = lattice
    radius, forced = 7.0, np.array([1, 1, 0, 1, 0])
    ref = spopt_locate.MCLP.from_cost_matrix(
        cost, weights, radius, 4, predefined_facilities_arr=forced
    ).solve(cbc())
    assert ref.problem.status == 1
    free = np.flatnonzero(forced == 0)
    problem = CoverageProblem.from_cost_matrix(
        cost[:, free],
        weights,
        threshold=radius,
        existing_cost=cost[:, forced == 1].min(axis=1),
    )
    ours = solve(problem, "mclp", p=1, method="exact", mip_rel_gap=0.0)
    assert ours.n_sites <= 1
    assert ours.covered_after_population == pytest.approx(pulp.value(ref.problem.objective))
    assert ours.covered_before_population == pytest.approx(
        weights[(cost[:, forced == 1] <= radius).any(axis=1)].sum()
    )

"""Gaussian 2SFCA: a fully hand-worked example, then conservation and scaling on random pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage.access2sfca import Access2SFCA, gaussian_2sfca, gaussian_decay

E = math.exp(-0.5)  # 0.6065306597...


def test_decay_by_hand() -> None:
    # g(d) = (exp(-0.5 (d/d0)^2) - e^-0.5) / (1 - e^-0.5), d0 = 10
    #   d = 0:  (1 - E) / (1 - E) = 1
    #   d = 5:  (exp(-0.125) - E) / (1 - E) = (0.8824969 - 0.6065307) / 0.3934693 = 0.7013666
    #   d = 2:  (exp(-0.02) - E) / (1 - E)  = (0.9801987 - 0.6065307) / 0.3934693 = 0.9496750
    #   d = 10: (E - E) / (1 - E) = 0; beyond the catchment and inf: 0
    g = gaussian_decay(np.array([0.0, 5.0, 2.0, 10.0, 12.0, np.inf]), 10.0)
    assert g[0] == 1.0
    assert g[1] == pytest.approx((math.exp(-0.125) - E) / (1 - E))
    assert g[1] == pytest.approx(0.7013666, abs=1e-7)
    assert g[2] == pytest.approx(0.9496750, abs=1e-7)
    assert g[3] == pytest.approx(0.0, abs=1e-15)
    assert (g[4], g[5]) == (0.0, 0.0)
    with pytest.raises(ValueError, match="catchment_min"):
        gaussian_decay(np.array([1.0]), 0.0)


def test_two_facilities_three_residents_by_hand() -> None:
    # catchment d0 = 10 min; demand P = (100, 200, 50); capacity S = (30, 250)
    #   pair (resident, facility, minutes)  g
    #   (0, 0, 0)                           1
    #   (1, 0, 5)                           gA = 0.70136657 (see test_decay_by_hand)
    #   (1, 1, 0)                           1
    #   (2, 1, 10)                          0  (at the catchment edge)
    #   (2, 0, 12)                          0  (beyond it)
    # step 1, loads and ratios:
    #   L0 = 1*100 + gA*200 = 100 + 140.27331 = 240.27331;  R0 = 30 / 240.27331 = 0.12485781
    #   L1 = 1*200 + 0*50 = 200;                            R1 = 250 / 200 = 1.25
    # step 2, scores:
    #   A0 = 1*R0 = 0.12485781
    #   A1 = gA*R0 + 1*R1 = 0.70136657*0.12485781 + 1.25 = 0.08757109 + 1.25 = 1.33757109
    #   A2 = 0 (nothing within the catchment)
    # conservation: 100*0.12485781 + 200*1.33757109 + 50*0 = 12.485781 + 267.514218 = 280 = 30 + 250
    # load vs capacity: L0/S0 = 8.0091 (over-subscribed), L1/S1 = 0.8 (not)
    ga = (math.exp(-0.125) - E) / (1 - E)
    res = gaussian_2sfca(
        np.array([0, 1, 1, 2, 2]),
        np.array([0, 0, 1, 1, 0]),
        np.array([0.0, 5.0, 0.0, 10.0, 12.0]),
        np.array([100.0, 200.0, 50.0]),
        np.array([30.0, 250.0]),
        catchment_min=10.0,
    )
    assert res.load[0] == pytest.approx(100 + 200 * ga)
    assert res.load[0] == pytest.approx(240.27331, abs=1e-5)
    assert res.load[1] == pytest.approx(200.0)
    assert res.supply_ratio[0] == pytest.approx(0.12485781, abs=1e-8)
    assert res.supply_ratio[1] == pytest.approx(1.25)
    assert res.score[0] == pytest.approx(0.12485781, abs=1e-8)
    assert res.score[1] == pytest.approx(1.33757109, abs=1e-8)
    assert res.score[2] == 0.0
    assert float(res.score @ np.array([100.0, 200.0, 50.0])) == pytest.approx(280.0)
    assert res.load_ratio[0] == pytest.approx(8.00911, abs=1e-5)
    assert res.load_ratio[1] == pytest.approx(0.8)
    assert res.oversubscribed.tolist() == [0]
    assert res.excluded.tolist() == []
    assert not res.reaches_excluded.any()
    assert res.catchment_min == 10.0


def test_unknown_capacity_is_excluded_and_reported() -> None:
    # the same two facilities plus a third of unknown capacity that resident 2 reaches in
    # 2 minutes (g = 0.9496750): its load is 0.949675*50 = 47.48375, it adds nothing to scores,
    # and resident 2 is flagged as reaching it (its score of 0 understates its access)
    demand = np.array([100.0, 200.0, 50.0])
    base = gaussian_2sfca(
        np.array([0, 1, 1]),
        np.array([0, 0, 1]),
        np.array([0.0, 5.0, 0.0]),
        demand,
        np.array([30.0, 250.0]),
        catchment_min=10.0,
    )
    res = gaussian_2sfca(
        np.array([0, 1, 1, 2]),
        np.array([0, 0, 1, 2]),
        np.array([0.0, 5.0, 0.0, 2.0]),
        demand,
        np.array([30.0, 250.0, np.nan]),
        catchment_min=10.0,
    )
    np.testing.assert_allclose(res.score, base.score)
    assert res.excluded.tolist() == [2]
    assert res.reaches_excluded.tolist() == [False, False, True]
    assert res.load[2] == pytest.approx(0.9496750 * 50, abs=1e-5)
    assert math.isnan(res.supply_ratio[2]) and math.isnan(res.load_ratio[2])
    assert 2 not in res.oversubscribed.tolist()


def test_oversubscribed_order_and_zero_capacity() -> None:
    # one resident of 10 people at 0 minutes from three facilities of capacity 0, 5 and 20:
    # every load is 10; ratios inf, 2, 0.5 -> over-subscribed: facility 0 (inf) then 1 (2)
    res = gaussian_2sfca(
        np.array([0, 0, 0]),
        np.array([0, 1, 2]),
        np.zeros(3),
        np.array([10.0]),
        np.array([0.0, 5.0, 20.0]),
        catchment_min=15.0,
    )
    assert res.oversubscribed.tolist() == [0, 1]
    assert math.isinf(res.load_ratio[0])
    # score = 0/10 + 5/10 + 20/10 = 2.5 seats per person
    assert res.score[0] == pytest.approx(2.5)


def test_bad_inputs_are_refused() -> None:
    one = np.array([0])
    with pytest.raises(ValueError, match="more than once"):
        gaussian_2sfca(
            np.array([0, 0]), np.array([0, 0]), np.ones(2), np.ones(1), np.ones(1), catchment_min=10
        )
    with pytest.raises(ValueError, match="outside"):
        gaussian_2sfca(one, np.array([3]), np.ones(1), np.ones(1), np.ones(1), catchment_min=10)
    with pytest.raises(ValueError, match="capacity"):
        gaussian_2sfca(one, one, np.ones(1), np.ones(1), np.array([-1.0]), catchment_min=10)
    with pytest.raises(ValueError, match="demand"):
        gaussian_2sfca(one, one, np.ones(1), np.array([np.nan]), np.ones(1), catchment_min=10)
    with pytest.raises(ValueError, match="NaN"):
        gaussian_2sfca(one, one, np.array([np.nan]), np.ones(1), np.ones(1), catchment_min=10)


@st.composite
def instances(draw: st.DrawFn) -> dict[str, np.ndarray]:
    n_res = draw(st.integers(min_value=1, max_value=12))
    n_fac = draw(st.integers(min_value=1, max_value=6))
    keys = draw(
        st.lists(st.integers(min_value=0, max_value=n_res * n_fac - 1), unique=True, max_size=40)
    )
    keys_arr = np.array(keys, dtype=np.int64)
    m = len(keys)
    minutes = draw(st.lists(st.floats(min_value=0.0, max_value=20.0), min_size=m, max_size=m))
    # people: zero or at least a hundredth of a person (no subnormal crowds)
    people = st.one_of(st.just(0.0), st.floats(min_value=0.01, max_value=500.0))
    demand = draw(st.lists(people, min_size=n_res, max_size=n_res))
    capacity = draw(
        st.lists(
            st.one_of(
                st.floats(min_value=0.0, max_value=200.0, allow_subnormal=False), st.just(math.nan)
            ),
            min_size=n_fac,
            max_size=n_fac,
        )
    )
    return {
        "resident_idx": keys_arr // n_fac,
        "facility_idx": keys_arr % n_fac,
        "minutes": np.array(minutes, dtype=float),
        "demand": np.array(demand, dtype=float),
        "capacity": np.array(capacity, dtype=float),
    }


def _run(inst: dict[str, np.ndarray], capacity: np.ndarray | None = None) -> Access2SFCA:
    return gaussian_2sfca(
        inst["resident_idx"],
        inst["facility_idx"],
        inst["minutes"],
        inst["demand"],
        inst["capacity"] if capacity is None else capacity,
        catchment_min=15.0,
    )


@settings(max_examples=200, deadline=None)
@given(instances())
def test_total_supply_is_conserved(inst: dict[str, np.ndarray]) -> None:
    res = _run(inst)
    known = ~np.isnan(inst["capacity"])
    served = known & (res.load > 0)
    supply = float(inst["capacity"][served].sum())
    assert float(res.score @ inst["demand"]) == pytest.approx(supply, rel=1e-9, abs=1e-6)
    assert (res.score >= 0).all()
    # over-subscribed means load above a known capacity, nothing else
    expected = set(np.flatnonzero(known & (res.load > inst["capacity"])).tolist())
    assert set(res.oversubscribed.tolist()) == expected


@settings(max_examples=200, deadline=None)
@given(instances(), st.floats(min_value=0.01, max_value=100.0))
def test_scaling_capacity_scales_scores(inst: dict[str, np.ndarray], c: float) -> None:
    base = _run(inst)
    scaled = _run(inst, capacity=inst["capacity"] * c)
    np.testing.assert_allclose(scaled.score, base.score * c, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(scaled.load, base.load)  # demand side does not move


# ------------------------------------------------------------------ on a network, end to end


def _split_graph_minutes(net, fac, res, metres_per_minute: float) -> np.ndarray:
    """Dense (facility, resident) minutes by networkx on a graph split at every snapped point."""
    import networkx as nx

    from .test_geo_routing import split_graph

    H = split_graph(net, fac, res)
    out = np.full((len(fac), len(res)), np.inf)
    for j in range(len(fac)):
        if fac.edge[j] < 0:
            continue
        d = nx.single_source_dijkstra_path_length(H, ("s", j), weight="weight")
        for i in range(len(res)):
            out[j, i] = d.get(("t", i), np.inf)
    return out / metres_per_minute


@pytest.fixture(scope="module")
def district():
    from bench.synthetic import grid_network, random_points
    from geo.snap import snap_points

    net = grid_network(900, seed=11)  # about 1.8 x 1.8 km
    rng = np.random.default_rng(12)
    far = net.node_xy.max(axis=0) + 300.0  # beyond the snapping limit
    res_xy = np.vstack([random_points(net, 400, seed=13), far])
    fac_xy = np.vstack([net.node_xy[rng.integers(0, net.n_nodes, 5)], res_xy[:3] + 5.0])
    return net, snap_points(net, fac_xy, max_snap_m=100), snap_points(net, res_xy, max_snap_m=100)


def test_reachable_pairs_equal_networkx(district) -> None:
    """The pairs measured only on reached edges are every pair networkx finds, same metres."""
    from geo.routing import reachable_pairs

    net, fac, res = district
    assert res.unsnapped.any()
    for cutoff_m in (150.0, 600.0):
        got = reachable_pairs(net, fac, res, cutoff_m=cutoff_m)
        want = _split_graph_minutes(net, fac, res, 1.0)
        j, i = np.nonzero(want <= cutoff_m - 1e-6)
        pairs = set(zip(got["source"].tolist(), got["target"].tolist(), strict=True))
        assert set(zip(j.tolist(), i.tolist(), strict=True)) <= pairs
        assert (np.abs(got["distance_m"] - want[got["source"], got["target"]]) < 1e-6).all()
        assert (want[got["source"], got["target"]] <= cutoff_m + 1e-6).all()


def test_network_2sfca_equals_a_brute_force(district) -> None:
    from geo.routing import reachable_pairs

    net, fac, res = district
    rng = np.random.default_rng(14)
    demand = rng.integers(0, 300, len(res)).astype(float)
    capacity = rng.integers(10, 90, len(fac)).astype(float)
    capacity[1] = np.nan
    d0, speed = 8.0, 80.0  # minutes, metres per minute
    pairs = reachable_pairs(net, fac, res, cutoff_m=d0 * speed)
    got = gaussian_2sfca(
        pairs["target"].to_numpy(),
        pairs["source"].to_numpy(),
        pairs["distance_m"].to_numpy() / speed,
        demand,
        capacity,
        catchment_min=d0,
    )
    # the same sums written out as double loops over the dense networkx minutes
    minutes = _split_graph_minutes(net, fac, res, speed)

    def g(d: float) -> float:
        return 0.0 if d > d0 else max((math.exp(-0.5 * (d / d0) ** 2) - E) / (1 - E), 0.0)

    load = [sum(g(minutes[j, i]) * demand[i] for i in range(len(res))) for j in range(len(fac))]
    ratio = [
        capacity[j] / load[j] if load[j] > 0 and not math.isnan(capacity[j]) else 0.0
        for j in range(len(fac))
    ]
    score = [sum(g(minutes[j, i]) * ratio[j] for j in range(len(fac))) for i in range(len(res))]
    np.testing.assert_allclose(got.load, load, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.score, score, rtol=1e-9, atol=1e-12)
    assert got.excluded.tolist() == [1]
    assert got.score.max() > 0

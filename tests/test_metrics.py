"""Coverage metrics: hand-worked numbers, then invariants on random residents (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage.metrics import (
    COVER_TOL_MIN,
    METRIC_COLUMNS,
    area_codes,
    completeness_table,
    coverage_metrics,
    layers_covered,
    weighted_quantile,
)

INF = math.inf

# Seven resident units, thresholds 5, 10, 15 minutes:
#
#   unit  area  weight  minutes  unsnapped   note
#   0     A     10      3        no
#   1     A     20      8        no
#   2     A     30      14       no
#   3     B     40      inf      no          unreachable (snapped, no facility on its component)
#   4     B     50      4        yes         unsnapped: never covered despite 4 minutes
#   5     ""    60      9        no          outside every area: district only
#   6     C     0       2        no          no target population
#
# District: population = 10+20+30+40+50+60+0 = 210
#   covered@5  = unit 0 (10) + unit 6 (0)            = 10   -> 10/210
#   covered@10 = 10 + unit 1 (20) + unit 5 (60)      = 90   -> 90/210 = 3/7
#   covered@15 = 90 + unit 2 (30)                    = 120  -> 120/210 = 4/7
#   reachable with weight: units 0, 1, 2, 5 (weights 10, 20, 30, 60; total 120)
#   mean = (10*3 + 20*8 + 30*14 + 60*9) / 120 = (30+160+420+540)/120 = 1150/120
#   P90: sorted minutes 3, 8, 9, 14 with cumulative weight 10, 30, 90, 120;
#        90% of 120 = 108 is first reached at 14 minutes -> 14
#   unsnapped = 1 (unit 4), unreachable = 1 (unit 3)
# A: population 60; covered 10, 30, 60 -> 1/6, 1/2, 1
#   mean = (30+160+420)/60 = 610/60; P90: cumulative 10, 30, 60, 90% of 60 = 54 -> 14 minutes
# B: population 90, nothing covered -> rate 0; nobody reachable -> mean, P90 NaN;
#   unsnapped 1, unreachable 1
# C: population 0 -> rate NaN, mean/P90 NaN (unit 6 weighs nothing)
# D: listed but empty -> population 0, rate NaN
MINUTES = np.array([3.0, 8.0, 14.0, INF, 4.0, 9.0, 2.0])
WEIGHT = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 0.0])
UNSNAPPED = np.array([False, False, False, False, True, False, False])
AREA = np.array(["A", "A", "A", "B", "B", "", "C"], dtype=object)


def _hand_table() -> pd.DataFrame:
    return coverage_metrics(
        MINUTES,
        WEIGHT,
        thresholds_min=[15, 5, 10, 10],
        unsnapped=UNSNAPPED,
        area=AREA,
        area_names=["B", "A", "C", "D"],
        kind="canteen",
        target_group="elderly",
    )


def _row(table: pd.DataFrame, area: str, minutes: float) -> pd.Series:
    rows = table[(table["area"] == area) & (table["minutes"] == minutes)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_hand_worked_district_rows() -> None:
    table = _hand_table()
    expected = {5.0: (10.0, 10 / 210), 10.0: (90.0, 3 / 7), 15.0: (120.0, 4 / 7)}
    for minutes, (covered, rate) in expected.items():
        row = _row(table, "", minutes)
        assert row["level"] == "district"
        assert row["population"] == 210.0
        assert row["covered_population"] == covered
        assert row["coverage_rate"] == pytest.approx(rate)
        assert row["mean_minutes"] == pytest.approx(1150 / 120)
        assert row["p90_minutes"] == 14.0
        assert row["unsnapped"] == 1
        assert row["unreachable"] == 1


def test_hand_worked_area_rows() -> None:
    table = _hand_table()
    for minutes, covered in ((5.0, 10.0), (10.0, 30.0), (15.0, 60.0)):
        a = _row(table, "A", minutes)
        assert (a["level"], a["population"], a["covered_population"]) == ("street", 60.0, covered)
        assert a["coverage_rate"] == pytest.approx(covered / 60)
        assert a["mean_minutes"] == pytest.approx(610 / 60)
        assert a["p90_minutes"] == 14.0
        assert (a["unsnapped"], a["unreachable"]) == (0, 0)
        b = _row(table, "B", minutes)
        assert (b["population"], b["covered_population"], b["coverage_rate"]) == (90.0, 0.0, 0.0)
        assert math.isnan(b["mean_minutes"]) and math.isnan(b["p90_minutes"])
        assert (b["unsnapped"], b["unreachable"]) == (1, 1)
        for empty in ("C", "D"):
            e = _row(table, empty, minutes)
            assert e["population"] == 0.0 and e["covered_population"] == 0.0
            assert math.isnan(e["coverage_rate"])
            assert math.isnan(e["mean_minutes"]) and math.isnan(e["p90_minutes"])


def test_table_shape_order_and_types() -> None:
    table = _hand_table()
    assert tuple(table.columns) == METRIC_COLUMNS
    # thresholds sorted and de-duplicated; per threshold the district row, then areas as listed
    assert table["minutes"].tolist() == [5.0] * 5 + [10.0] * 5 + [15.0] * 5
    assert table["area"].tolist()[:5] == ["", "B", "A", "C", "D"]
    assert set(table["kind"]) == {"canteen"} and set(table["target_group"]) == {"elderly"}
    assert table["unsnapped"].dtype == np.int64 and table["unreachable"].dtype == np.int64


def test_inputs_are_not_modified() -> None:
    m, w, u, a = MINUTES.copy(), WEIGHT.copy(), UNSNAPPED.copy(), AREA.copy()
    coverage_metrics(
        m, w, thresholds_min=[5], unsnapped=u, area=a, kind="k", target_group="population"
    )
    np.testing.assert_array_equal(m, MINUTES)
    np.testing.assert_array_equal(w, WEIGHT)
    np.testing.assert_array_equal(u, UNSNAPPED)
    assert a.tolist() == AREA.tolist()


def test_district_only_and_area_only() -> None:
    district = coverage_metrics(
        MINUTES, WEIGHT, thresholds_min=[10], unsnapped=UNSNAPPED, kind="k", target_group="p"
    )
    assert district["level"].tolist() == ["district"]
    assert district["covered_population"].tolist() == [90.0]
    areas = coverage_metrics(
        MINUTES,
        WEIGHT,
        thresholds_min=[10],
        unsnapped=UNSNAPPED,
        area=AREA,
        level="community",
        include_district=False,
        kind="k",
        target_group="p",
    )
    # without area_names: the names found, sorted; "" (outside) gets no row
    assert areas["area"].tolist() == ["A", "B", "C"]
    assert set(areas["level"]) == {"community"}


def _run(minutes: np.ndarray, weight: np.ndarray, unsnapped: np.ndarray) -> pd.DataFrame:
    return coverage_metrics(
        minutes, weight, thresholds_min=[5], unsnapped=unsnapped, kind="k", target_group="p"
    )


def test_bad_inputs_are_refused() -> None:
    ok = np.zeros(2, dtype=bool)
    with pytest.raises(ValueError, match="NaN"):
        _run(np.array([1.0, np.nan]), np.ones(2), ok)
    with pytest.raises(ValueError, match="negative"):
        _run(np.array([1.0, 2.0]), np.array([1.0, -1.0]), ok)
    with pytest.raises(ValueError, match="entries"):
        _run(np.ones(2), np.ones(3), ok)
    with pytest.raises(ValueError, match="boolean"):
        _run(np.ones(2), np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match="thresholds_min"):
        coverage_metrics(
            np.ones(2), np.ones(2), unsnapped=ok, thresholds_min=[], kind="k", target_group="p"
        )
    with pytest.raises(ValueError, match="more than once"):
        area_codes(["A"], area_names=["A", "A"])


def test_area_codes_keep_unlisted_names() -> None:
    codes, names = area_codes(["X", None, "A", np.nan, "", "B"], area_names=["B", "Q"])
    # listed first in the given order, then unlisted names found (sorted); blanks are -1
    assert names == ["B", "Q", "A", "X"]
    assert codes.tolist() == [3, -1, 2, -1, -1, 0]


def test_weighted_quantile_by_hand() -> None:
    # values 5, 1, 3 weighing 1, 8, 1: sorted 1 (8), 3 (1), 5 (1); cumulative shares .8, .9, 1
    v = np.array([5.0, 1.0, 3.0])
    w = np.array([1.0, 8.0, 1.0])
    assert weighted_quantile(v, w, 0.5) == 1.0  # .8 >= .5 at the first value
    assert weighted_quantile(v, w, 0.8) == 1.0  # a share of exactly q counts
    assert weighted_quantile(v, w, 0.85) == 3.0
    assert weighted_quantile(v, w, 0.9) == 3.0
    assert weighted_quantile(v, w, 0.95) == 5.0
    assert weighted_quantile(v, w, 1.0) == 5.0
    # ten equal weights of 0.1: the float running sum reaches 0.8999999999999999 at the 9th
    # value, which still is exactly 90% of the (also rounded) total: the answer is 9, not 10
    assert weighted_quantile(np.arange(1.0, 11.0), np.full(10, 0.1), 0.9) == 9.0
    # inf and zero weights are ignored; nothing left -> NaN
    assert weighted_quantile(np.array([INF, 7.0, 1.0]), np.array([5.0, 1.0, 0.0]), 0.9) == 7.0
    assert math.isnan(weighted_quantile(np.array([INF]), np.array([1.0]), 0.9))


def test_layers_covered_and_completeness_by_hand() -> None:
    # four units, two layers with headline 15 min
    #   unit  canteen  center  unsnapped  -> layers
    #   0     10       12      no         2
    #   1     20       5       no         1
    #   2     inf      16      no         0
    #   3     3        3       yes        0 (unsnapped reaches nothing)
    minutes = {
        "canteen": np.array([10.0, 20.0, INF, 3.0]),
        "center": np.array([12.0, 5.0, 16.0, 3.0]),
    }
    headline = {"canteen": 15.0, "center": 15.0}
    unsnapped = np.array([False, False, False, True])
    k = layers_covered(minutes, headline, unsnapped=unsnapped)
    assert k.tolist() == [2, 1, 0, 0] and k.dtype == np.int64
    assert layers_covered(minutes, headline).tolist() == [2, 1, 0, 2]
    # population 100, 50, 30, 20 in areas A, A, B, "" (outside)
    # district: 200 people; all layers: 100 -> 0.5; exactly 1: 50 -> .25; none: 50 -> .25
    #   mean layers = (2*100 + 1*50) / 200 = 1.25
    # A: 150 people; all: 100 -> 2/3; one: 50 -> 1/3; mean (200 + 50) / 150 = 5/3
    # B: 30 people, none -> share_0 = 1, mean 0
    table = completeness_table(
        k, np.array([100.0, 50.0, 30.0, 20.0]), np.array(["A", "A", "B", ""]), n_layers=2
    )
    d, a, b = (table.iloc[i] for i in range(3))
    assert (d["level"], d["area"], d["population"]) == ("district", "", 200.0)
    assert d["all_layers_population"] == 100.0 and d["all_layers_share"] == 0.5
    assert (d["share_0"], d["share_1"], d["share_2"]) == (0.25, 0.25, 0.5)
    assert d["mean_layers"] == 1.25
    assert (a["area"], a["population"]) == ("A", 150.0)
    assert a["all_layers_share"] == pytest.approx(2 / 3)
    assert a["mean_layers"] == pytest.approx(5 / 3)
    assert (b["area"], b["share_0"], b["all_layers_share"], b["mean_layers"]) == ("B", 1, 0, 0)
    # n_layers matters: nobody has 3 of 3 here but the column is still there
    wider = completeness_table(k, np.ones(4), n_layers=3)
    assert wider["share_3"].tolist() == [0.0]
    with pytest.raises(ValueError, match="lie in"):
        completeness_table(k, np.ones(4), n_layers=1)
    with pytest.raises(ValueError, match="headline"):
        layers_covered(minutes, {"canteen": 15.0})


# ---------------------------------------------------------------------------------------------
# properties on random residents

_minutes = st.one_of(st.floats(min_value=0.0, max_value=40.0, allow_nan=False), st.just(INF))


@st.composite
def residents(draw: st.DrawFn) -> dict[str, np.ndarray]:
    n = draw(st.integers(min_value=0, max_value=40))
    minutes = np.array(draw(st.lists(_minutes, min_size=n, max_size=n)), dtype=float)
    # integer weights keep sums exact, so the brute force below can compare shares exactly
    weight = np.array(
        draw(st.lists(st.integers(min_value=0, max_value=50), min_size=n, max_size=n)),
        dtype=float,
    )
    unsnapped = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    area = np.array(
        draw(st.lists(st.sampled_from(["A", "B", "C", ""]), min_size=n, max_size=n)), dtype=object
    )
    return {"minutes": minutes, "weight": weight, "unsnapped": unsnapped, "area": area}


_thresholds = st.lists(st.sampled_from([0.0, 2.5, 5.0, 10.0, 15.0, 30.0]), min_size=1, max_size=4)


def _metrics(
    r: dict[str, np.ndarray],
    thresholds: list[float],
    *,
    minutes: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    unsnapped: np.ndarray | None = None,
) -> pd.DataFrame:
    """The metrics of residents ``r``, with one of its arrays swapped for another."""
    return coverage_metrics(
        r["minutes"] if minutes is None else minutes,
        r["weight"] if weight is None else weight,
        thresholds_min=thresholds,
        unsnapped=r["unsnapped"] if unsnapped is None else unsnapped,
        area=r["area"],
        area_names=["A", "B", "C"],
        kind="k",
        target_group="p",
    )


def _brute_force(r: dict[str, np.ndarray], thresholds: list[float]) -> list[dict[str, object]]:
    """Plain loops over residents, written from the definitions in the module docstring."""
    rows = []
    for t in sorted(set(thresholds)):
        for level, name in (("district", ""), ("street", "A"), ("street", "B"), ("street", "C")):
            idx = [
                i for i in range(len(r["minutes"])) if level == "district" or r["area"][i] == name
            ]
            pop = sum(r["weight"][i] for i in idx)
            cov = sum(  # the documented definition: within t up to a nanosecond of float noise
                r["weight"][i]
                for i in idx
                if not r["unsnapped"][i] and r["minutes"][i] <= t + COVER_TOL_MIN
            )
            reach = [
                i
                for i in idx
                if not r["unsnapped"][i] and r["minutes"][i] < INF and r["weight"][i] > 0
            ]
            total = sum(r["weight"][i] for i in reach)
            mean = sum(r["weight"][i] * r["minutes"][i] for i in reach) / total if total else None
            p90 = None
            for m in sorted(r["minutes"][i] for i in reach):
                # exact integer comparison of the share with 9/10
                if 10 * sum(r["weight"][i] for i in reach if r["minutes"][i] <= m) >= 9 * total:
                    p90 = m
                    break
            rows.append(
                {
                    "area": name,
                    "minutes": t,
                    "population": pop,
                    "covered_population": cov,
                    "mean_minutes": mean,
                    "p90_minutes": p90,
                    "unsnapped": sum(1 for i in idx if r["unsnapped"][i]),
                    "unreachable": sum(
                        1 for i in idx if not r["unsnapped"][i] and r["minutes"][i] == INF
                    ),
                }
            )
    return rows


@settings(max_examples=100, deadline=None)
@given(residents(), _thresholds)
def test_matches_brute_force(r: dict[str, np.ndarray], thresholds: list[float]) -> None:
    table = _metrics(r, thresholds)
    expected = _brute_force(r, thresholds)
    assert len(table) == len(expected)
    for (_, row), exp in zip(table.iterrows(), expected, strict=True):
        assert row["area"] == exp["area"] and row["minutes"] == exp["minutes"]
        assert row["population"] == exp["population"]
        assert row["covered_population"] == exp["covered_population"]
        for col in ("mean_minutes", "p90_minutes"):
            if exp[col] is None:
                assert math.isnan(row[col])
            else:
                assert row[col] == pytest.approx(exp[col], rel=1e-12)
        assert row["unsnapped"] == exp["unsnapped"]
        assert row["unreachable"] == exp["unreachable"]


@settings(max_examples=100, deadline=None)
@given(residents(), _thresholds)
def test_rates_are_shares(r: dict[str, np.ndarray], thresholds: list[float]) -> None:
    table = _metrics(r, thresholds)
    rate = table["coverage_rate"]
    empty = table["population"] == 0
    assert rate[empty].isna().all()
    assert ((rate[~empty] >= 0) & (rate[~empty] <= 1)).all()
    assert (table["covered_population"] <= table["population"]).all()


@settings(max_examples=100, deadline=None)
@given(residents(), _thresholds)
def test_more_minutes_never_lowers_coverage(
    r: dict[str, np.ndarray], thresholds: list[float]
) -> None:
    table = _metrics(r, thresholds)
    for _, group in table.groupby(["level", "area"], sort=False):
        covered = group.sort_values("minutes")["covered_population"].to_numpy()
        assert (np.diff(covered) >= 0).all()


@settings(max_examples=100, deadline=None)
@given(residents(), _thresholds, st.floats(min_value=0.05, max_value=1.0))
def test_faster_walking_never_lowers_coverage(
    r: dict[str, np.ndarray], thresholds: list[float], factor: float
) -> None:
    # a uniformly faster speed divides every travel time by the same number
    before = _metrics(r, thresholds)
    after = _metrics(r, thresholds, minutes=r["minutes"] * factor)
    assert (after["covered_population"] >= before["covered_population"]).all()
    np.testing.assert_array_equal(after["population"], before["population"])


@settings(max_examples=100, deadline=None)
@given(residents(), _thresholds, st.data())
def test_adding_weight_to_a_covered_resident_never_lowers_coverage(
    r: dict[str, np.ndarray], thresholds: list[float], data: st.DataObject
) -> None:
    n = len(r["minutes"])
    if n == 0:
        return
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    extra = data.draw(st.integers(min_value=1, max_value=100))
    weight = r["weight"].copy()
    weight[i] += extra
    before = _metrics(r, thresholds)
    after = _metrics(r, thresholds, weight=weight)
    assert (after["covered_population"] >= before["covered_population"]).all()
    assert (after["population"] >= before["population"]).all()


@settings(max_examples=100, deadline=None)
@given(residents(), _thresholds)
def test_unsnapped_residents_are_never_covered(
    r: dict[str, np.ndarray], thresholds: list[float]
) -> None:
    everyone_unsnapped = np.ones(len(r["minutes"]), dtype=bool)
    table = _metrics(r, thresholds, unsnapped=everyone_unsnapped)
    assert (table["covered_population"] == 0).all()
    assert table["mean_minutes"].isna().all()
    # unsnapping one more unit never raises coverage
    before = _metrics(r, thresholds)
    more = r["unsnapped"] | (r["minutes"] < 5)
    after = _metrics(r, thresholds, unsnapped=more)
    assert (after["covered_population"] <= before["covered_population"]).all()

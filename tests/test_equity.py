"""Equity indices: hand-worked values, a brute-force Gini, and the equity table from metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage.equity import EQUITY_COLUMNS, coefficient_of_variation, equity_table, gini
from coverage.metrics import coverage_metrics


def _gini_brute_force(x: list[float], w: list[float]) -> float:
    """Weighted mean absolute difference over twice the mean, summed pair by pair."""
    total = sum(w)
    mean = sum(wi * xi for wi, xi in zip(w, x, strict=True)) / total
    pairs = sum(
        wi * wj * abs(xi - xj)
        for wi, xi in zip(w, x, strict=True)
        for wj, xj in zip(w, x, strict=True)
    )
    return pairs / (2 * total**2 * mean)


def test_gini_by_hand() -> None:
    # [0, 1]: ordered pairs |0-1| + |1-0| = 2; n = 2, mean 1/2 -> 2 / (2 * 4 * 1/2) = 1/2
    assert gini(np.array([0.0, 1.0])) == pytest.approx(0.5)
    # [0, 0, 0, 1]: 6 ordered pairs differ by 1; n = 4, mean 1/4 -> 6 / (2 * 16 * 1/4) = 3/4
    assert gini(np.array([0.0, 0.0, 0.0, 1.0])) == pytest.approx(0.75)
    # weights 3 and 1 on [0, 1] are the same distribution as [0, 0, 0, 1]
    assert gini(np.array([0.0, 1.0]), np.array([3.0, 1.0])) == pytest.approx(0.75)
    # equal values: perfect equality
    assert gini(np.array([0.4, 0.4, 0.4])) == 0.0
    assert gini(np.array([0.7])) == 0.0
    # all zero or nothing at all: undefined
    assert math.isnan(gini(np.zeros(3)))
    assert math.isnan(gini(np.array([])))
    with pytest.raises(ValueError, match=">= 0"):
        gini(np.array([-1.0, 1.0]))
    with pytest.raises(ValueError, match="NaN"):
        gini(np.array([np.nan, 1.0]))


def test_cv_by_hand() -> None:
    # [0.5, 1.0]: mean 0.75, population std 0.25 -> 1/3
    assert coefficient_of_variation(np.array([0.5, 1.0])) == pytest.approx(1 / 3)
    # weights 1, 3 on [0, 1]: mean 3/4, variance (1*(9/16) + 3*(1/16)) / 4 = 3/16,
    # so cv = (sqrt(3)/4) / (3/4) = sqrt(3)/3
    got = coefficient_of_variation(np.array([0.0, 1.0]), np.array([1.0, 3.0]))
    assert got == pytest.approx(math.sqrt(3) / 3)
    assert math.isnan(coefficient_of_variation(np.zeros(2)))


_value = st.floats(min_value=0.0, max_value=1000.0, allow_nan=False, allow_subnormal=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_value, st.floats(min_value=0.0, max_value=100.0)), min_size=1, max_size=25)
)
def test_gini_matches_brute_force(pairs: list[tuple[float, float]]) -> None:
    x = [p[0] for p in pairs]
    w = [p[1] for p in pairs]
    unweighted = gini(np.array(x))
    if sum(x) > 1e-9:
        assert unweighted == pytest.approx(
            _gini_brute_force(x, [1.0] * len(x)), rel=1e-9, abs=1e-12
        )
        assert 0.0 <= unweighted <= 1.0
    if sum(w) > 1e-6 and sum(a * b for a, b in zip(w, x, strict=True)) > 1e-6:
        weighted = gini(np.array(x), np.array(w))
        assert weighted == pytest.approx(_gini_brute_force(x, w), rel=1e-7, abs=1e-10)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(_value, min_size=2, max_size=20).filter(lambda v: sum(v) > 1e-3),
    st.floats(min_value=0.01, max_value=100.0),
    st.randoms(use_true_random=False),
)
def test_gini_is_scale_and_order_free(x: list[float], scale: float, rnd: object) -> None:
    base = gini(np.array(x))
    shuffled = list(x)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert gini(np.array(shuffled)) == pytest.approx(base, abs=1e-9)
    assert gini(np.array(x) * scale) == pytest.approx(base, abs=1e-9)
    # the population form: every area twice gives the same index
    assert gini(np.array(x + x)) == pytest.approx(base, abs=1e-9)


def _metrics() -> pd.DataFrame:
    # three 街道 at 15 minutes: A all covered (10/10), B half (10/20), C none (0/10), D empty
    minutes = np.array([5.0, 5.0, 20.0, np.inf, 3.0])
    weight = np.array([10.0, 10.0, 10.0, 10.0, 0.0])
    area = np.array(["A", "B", "B", "C", "D"], dtype=object)
    table = coverage_metrics(
        minutes,
        weight,
        thresholds_min=[10, 15],
        unsnapped=np.zeros(5, dtype=bool),
        area=area,
        kind="canteen",
        target_group="elderly",
    )
    # a second layer where every area has the same rate
    other = coverage_metrics(
        np.full(5, 1.0),
        weight,
        thresholds_min=[5],
        unsnapped=np.zeros(5, dtype=bool),
        area=area,
        kind="center",
        target_group="population",
    )
    return pd.concat([table, other], ignore_index=True)


def test_equity_table_by_hand() -> None:
    metrics = _metrics()
    table = equity_table(metrics, headline_by_kind={"canteen": 15, "center": 5})
    assert tuple(table.columns) == EQUITY_COLUMNS
    canteen, center = table.iloc[0], table.iloc[1]
    # rates 1, 1/2, 0 (D has no population and is left out)
    #   Gini: ordered pairs 2 * (1/2 + 1 + 1/2) = 4; n = 3, mean 1/2 -> 4 / (2 * 9 * 1/2) = 4/9
    #   CV: mean 1/2, variance (1/4 + 0 + 1/4) / 3 = 1/6 -> sqrt(1/6) / (1/2) = sqrt(2/3)
    assert canteen["kind"] == "canteen"
    assert canteen["gini"] == pytest.approx(4 / 9)
    assert canteen["cv"] == pytest.approx(math.sqrt(2 / 3))
    assert (canteen["worst_area"], canteen["worst_rate"]) == ("C", 0.0)
    assert (canteen["best_area"], canteen["best_rate"]) == ("A", 1.0)
    assert canteen["best_worst_gap"] == 1.0
    # all areas at rate 1: no inequality; ties go to the first area listed
    assert (center["gini"], center["cv"], center["best_worst_gap"]) == (0.0, 0.0, 0.0)
    assert center["worst_area"] == "A" and center["best_area"] == "A"


def test_equity_table_weighted() -> None:
    # populations 10, 20, 10 at rates 1, 1/2, 0: like four people at 1, 1/2, 1/2, 0
    #   Gini: unordered pairs 1/2 + 1/2 + 1 + 1/2 + 1/2 + 0 = 3 -> 6 ordered; n = 4, mean 1/2
    #         -> 6 / (2 * 16 * 1/2) = 3/8
    #   CV: variance (1/4 + 0 + 0 + 1/4) / 4 = 1/8 -> sqrt(1/8) / (1/2) = sqrt(1/2)
    table = equity_table(_metrics(), headline_by_kind={"canteen": 15}, weighted=True)
    assert table.loc[0, "gini"] == pytest.approx(3 / 8)
    assert table.loc[0, "cv"] == pytest.approx(math.sqrt(0.5))
    # the unweighted table carries the weighted Gini beside its own (places vs people)
    plain = equity_table(_metrics(), headline_by_kind={"canteen": 15})
    assert plain.loc[0, "gini_weighted"] == pytest.approx(3 / 8)
    assert plain.loc[0, "gini"] == pytest.approx(4 / 9)


def test_equity_table_edge_cases() -> None:
    metrics = _metrics()
    # no areas at this level: NaN indices, empty names
    row = equity_table(metrics, headline_by_kind={"canteen": 15}, level="community").iloc[0]
    assert math.isnan(row["gini"]) and math.isnan(row["cv"]) and row["worst_area"] == ""
    # a kind absent from the metrics gives a NaN row too
    assert math.isnan(equity_table(metrics, headline_by_kind={"hostel": 15}).loc[0, "gini"])
    # a headline that was never analysed is a caller mistake
    with pytest.raises(ValueError, match="headline"):
        equity_table(metrics, headline_by_kind={"canteen": 12})
    with pytest.raises(ValueError, match="lacks columns"):
        equity_table(metrics.drop(columns="coverage_rate"), headline_by_kind={"canteen": 15})

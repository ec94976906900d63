"""Equity of coverage across areas: is service spread evenly over the 街道 (布局均衡).

The district rate can look fine while one 街道 is badly served; these indices say how uneven the
per-area rates are.  Gini and the coefficient of variation are the two indices the Chinese
accessibility-equity literature finds most telling for public facilities (陶卓霖, 戴特奇, 宋长青
2023, 地理学报 78(2)), and "worst area" and "best minus worst" are what a district leader acts on.

Choice of weighting
-------------------
By default every area with target population counts once (unweighted): the question is whether
*places* are served alike, and a population-weighted index would let a few large 街道 hide a
small one left behind.  ``weighted=True`` weights each area by its target population instead,
which answers "how unequal is coverage between the people of the district" at area resolution.
Areas with no target population have no rate (NaN) and are left out either way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from coverage.schema import EQUITY_COLUMNS

logger = logging.getLogger(__name__)


def _values_weights(
    values: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        msg = f"`values` must be one-dimensional, got shape {x.shape}"
        raise ValueError(msg)
    if not np.isfinite(x).all():
        msg = "`values` contains NaN or inf; drop areas without a rate first"
        raise ValueError(msg)
    if weights is None:
        w = np.ones_like(x)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != x.shape:
            msg = f"`weights` has shape {w.shape}, expected {x.shape}"
            raise ValueError(msg)
        if not np.isfinite(w).all() or (w < 0).any():
            msg = "`weights` must be finite and >= 0"
            raise ValueError(msg)
    return x, w


def gini(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Gini coefficient of non-negative values (optionally weighted).

    ``G = sum_i sum_j w_i w_j |x_i - x_j| / (2 W^2 mu)`` with ``W = sum w`` and ``mu`` the weighted
    mean: half the relative mean absolute difference.  0 when all values are equal, approaching 1
    when one unit holds everything.  This is the population form (no ``n / (n - 1)`` small-sample
    correction), so a handful of 街道 gives the same figure as the Lorenz-curve area.

    Computed in O(n log n) from the sorted values: with the units in ascending order, the pair
    sum equals ``2 sum_j w_j x_j (W_before_j - W_after_j)``.

    Returns
    -------
    float
        ``NaN`` when there is no weight or the mean is 0 (all areas at zero coverage: inequality
        is undefined, not perfect equality).
    """
    x, w = _values_weights(values, weights)
    if (x < 0).any():
        msg = "the Gini coefficient needs values >= 0"
        raise ValueError(msg)
    total_w = float(w.sum())
    total_wx = float((w * x).sum())
    if total_w <= 0 or total_wx <= 0:
        return float("nan")
    order = np.argsort(x, kind="stable")
    xs = x[order]
    ws = w[order]
    cum = np.cumsum(ws)
    before = cum - ws
    after = total_w - cum
    pair_sum = float(np.sum(ws * xs * (before - after)))  # = half the double sum over pairs
    g = pair_sum / (total_w * total_wx)
    return float(min(max(g, 0.0), 1.0))


def coefficient_of_variation(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Standard deviation over mean (population form, ``ddof=0``, optionally weighted).

    ``NaN`` when there is no weight or the mean is 0.
    """
    x, w = _values_weights(values, weights)
    total_w = float(w.sum())
    if total_w <= 0:
        return float("nan")
    mean = float((w * x).sum()) / total_w
    if mean == 0:
        return float("nan")
    var = float((w * (x - mean) ** 2).sum()) / total_w
    return float(np.sqrt(var) / abs(mean))


def equity_table(
    metrics: pd.DataFrame,
    *,
    headline_by_kind: Mapping[str, float],
    level: str = "street",
    weighted: bool = False,
) -> pd.DataFrame:
    """One row per layer: how evenly its headline coverage is spread over the areas.

    Parameters
    ----------
    metrics
        The long ``metrics`` table (:func:`coverage.metrics.coverage_metrics`).  Not modified.
    headline_by_kind
        Kind -> headline minutes; rows come out in this order.
    level
        Which areas to compare: ``"street"`` (街道, the default), ``"community"`` or ``"hex"``.
    weighted
        Weight areas by their target population (see the module docstring); default off.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EQUITY_COLUMNS`; ``gini`` follows ``weighted``, ``gini_weighted`` is
        always the population-weighted Gini, so both readings stand side by side.  Worst and
        best are the lowest and highest rates (ties go to the area listed first in
        ``metrics``); ``best_worst_gap`` is their difference in rate points (0-1).  A layer
        with no area carrying target population at ``level`` gets NaN indices and empty area
        names; a single area gives Gini 0 and CV 0.

    Raises
    ------
    ValueError
        When a kind has metrics rows but none at its headline minutes (the headline must be one
        of the thresholds analysed).
    """
    needed = {"kind", "minutes", "level", "area", "population", "coverage_rate"}
    missing = needed - set(metrics.columns)
    if missing:
        msg = f"`metrics` lacks columns {sorted(missing)}"
        raise ValueError(msg)
    # columns as arrays once: a what-if edit rebuilds this table, pandas masks per layer cost ms
    kinds = metrics["kind"].to_numpy()
    minutes = metrics["minutes"].to_numpy(dtype=float)
    levels = metrics["level"].to_numpy()
    population = metrics["population"].to_numpy(dtype=float)
    rate_all = metrics["coverage_rate"].to_numpy(dtype=float)
    area_all = metrics["area"].to_numpy()
    usable = (levels == level) & (population > 0) & ~np.isnan(rate_all)
    rows = []
    for kind, headline in headline_by_kind.items():
        of_kind = kinds == kind
        at = of_kind & np.isclose(minutes, float(headline))
        if of_kind.any() and not at.any():
            have = sorted(set(minutes[of_kind].tolist()))
            msg = f"no metrics for '{kind}' at its headline {headline} min (have {have})"
            raise ValueError(msg)
        sel = at & usable
        rates = rate_all[sel]
        names = np.asarray([str(a) for a in area_all[sel]], dtype=object)
        if rates.size == 0:
            rows.append((kind, np.nan, np.nan, np.nan, "", np.nan, "", np.nan, np.nan))
            continue
        pop = population[sel]
        w = pop if weighted else None
        worst = int(np.argmin(rates))  # first occurrence on ties
        best = int(np.argmax(rates))
        rows.append(
            (
                kind,
                gini(rates, w),
                gini(rates, pop),  # always beside it: readers compare places and people
                coefficient_of_variation(rates, w),
                str(names[worst]),
                float(rates[worst]),
                str(names[best]),
                float(rates[best]),
                float(rates[best] - rates[worst]),
            )
        )
    return pd.DataFrame.from_records(rows, columns=list(EQUITY_COLUMNS))

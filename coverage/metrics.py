"""Coverage metrics from travel minutes: the numbers a planner reads per layer, threshold and area.

Everything here works on plain arrays aligned with the residents table (one entry per resident
unit), so the same code serves the district, its 街道, its 社区 and an H3 grid, and scenario runs
(before/after new sites) only swap the minutes array.  Routing, snapping and the assembly of the
:class:`~coverage.result.StudyResult` live elsewhere (``coverage.analysis``).

Definitions (one place, used by every table)
--------------------------------------------
population
    Sum of the target-group weight of every resident unit in the group, *including* unsnapped and
    unreachable units: a household the street network cannot reach still needs the service, so
    it stays in the denominator.
covered
    :func:`is_covered`: ``minutes <= threshold`` up to :data:`COVER_TOL_MIN` of float noise.
    ``inf`` (unreachable) is never covered and an unsnapped unit is never covered whatever
    minutes it carries.  Every module (metrics, targets, the what-if edits) uses this one test.
mean / P90 minutes
    Population-weighted over *reachable* units only (snapped, finite minutes, weight > 0); ``NaN``
    when there are none.  The weighted quantile is defined in :func:`weighted_quantile`.
unsnapped / unreachable
    Counts of resident units (not people), whatever their weight: an unsnapped unit is farther
    than the snapping limit from any walkable edge; an unreachable unit is snapped but has no
    facility of the layer on its network component (``inf`` minutes).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from coverage.schema import METRIC_COLUMNS

logger = logging.getLogger(__name__)

#: Float noise allowed at a threshold: a walk of exactly 15 minutes computed as 15.000000000002
#: is covered.  A nanosecond's walk, far below any distance the network resolves.
COVER_TOL_MIN = 1e-9


def is_covered(minutes: np.ndarray, threshold_min: float) -> np.ndarray:
    """Within ``threshold_min`` walking minutes: the one definition of "covered".

    ``inf`` and NaN are never covered.
    """
    with np.errstate(invalid="ignore"):
        return np.asarray(minutes) <= float(threshold_min) + COVER_TOL_MIN


#: Quantile reported as ``p90_minutes``.
P90 = 0.9

# Relative slack when comparing a cumulative weight share with a quantile: sums of floats drift
# by a few ulps, and a group whose share is exactly 0.9 must pick the unit that reaches it.
_QUANTILE_RTOL = 1e-9


def _as_float(values: object, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        msg = f"`{name}` must be one-dimensional, got shape {arr.shape}"
        raise ValueError(msg)
    if n is not None and arr.shape[0] != n:
        msg = f"`{name}` has {arr.shape[0]} entries, expected {n} (one per resident unit)"
        raise ValueError(msg)
    return arr


def _check_minutes(minutes: np.ndarray, name: str = "minutes") -> None:
    if np.isnan(minutes).any():
        msg = f"`{name}` contains NaN; unreachable residents must carry inf, not NaN"
        raise ValueError(msg)
    if (minutes < 0).any():
        msg = f"`{name}` contains negative travel times"
        raise ValueError(msg)


def _check_weight(weight: np.ndarray, name: str = "weight") -> None:
    if not np.isfinite(weight).all():
        msg = f"`{name}` contains NaN or inf; population columns must be checked when read"
        raise ValueError(msg)
    if (weight < 0).any():
        msg = f"`{name}` contains negative population"
        raise ValueError(msg)


def _as_bool(values: object, name: str, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        msg = f"`{name}` has shape {arr.shape}, expected ({n},)"
        raise ValueError(msg)
    if arr.dtype != bool:
        msg = f"`{name}` must be boolean, got {arr.dtype}"
        raise ValueError(msg)
    return arr


def _thresholds(thresholds_min: Sequence[float]) -> np.ndarray:
    t = np.unique(np.asarray(list(thresholds_min), dtype=float))
    if t.size == 0:
        msg = "`thresholds_min` is empty; give at least one number of minutes"
        raise ValueError(msg)
    if not np.isfinite(t).all() or (t < 0).any():
        msg = f"`thresholds_min` must be finite minutes >= 0, got {list(thresholds_min)}"
        raise ValueError(msg)
    return t


#: The last few area arrays' codes: every layer, threshold and edit groups the same residents.
_CODES_MEMO: dict[tuple[int, int], tuple[Any, Any, np.ndarray, tuple[str, ...]]] = {}


def area_codes(
    area: Sequence[object] | np.ndarray | pd.Series,
    *,
    area_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Integer group codes for an area label per resident unit.

    Parameters
    ----------
    area
        Area name per resident unit; ``""``, ``None`` and NaN mean "outside every area" and get
        code ``-1`` (such units count in the district but in no area row).
    area_names
        Every area to report, in report order, so that areas without any resident unit still
        get a row.  Names found in ``area`` but not listed are appended in sorted order rather
        than dropped.  ``None``: the names found, sorted.

    Returns
    -------
    codes, names
        ``codes[i]`` indexes ``names`` (or is ``-1``).
    """
    memo = _CODES_MEMO.get((id(area), id(area_names)))
    if memo is not None and memo[0] is area and memo[1] is area_names:
        return memo[2], list(memo[3])
    raw_codes, uniques = pd.factorize(np.asarray(area, dtype=object), use_na_sentinel=True)
    labels = [str(u) for u in uniques]
    found = sorted(set(labels) - {""})
    if area_names is None:
        names = found
    else:
        listed = [str(a) for a in area_names if str(a) != ""]
        if len(set(listed)) != len(listed):
            dup = sorted({a for a in listed if listed.count(a) > 1})
            msg = f"`area_names` lists {dup} more than once"
            raise ValueError(msg)
        known = set(listed)
        names = listed + [a for a in found if a not in known]
    position = {name: i for i, name in enumerate(names)}
    # one extra slot at the end so that the NaN/None sentinel (-1) maps to -1 too
    lookup = np.array([position.get(label, -1) for label in labels] + [-1], dtype=np.int64)
    codes = lookup[raw_codes]
    if isinstance(area, np.ndarray):  # arrays are shared, never modified (see coverage.state)
        if len(_CODES_MEMO) >= 8:
            _CODES_MEMO.pop(next(iter(_CODES_MEMO)))
        codes.flags.writeable = False
        _CODES_MEMO[(id(area), id(area_names))] = (area, area_names, codes, tuple(names))
    return codes, names


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value ``m`` whose weight share ``sum(w[v <= m]) / sum(w)`` reaches ``q``.

    This is the inverse of the weighted empirical distribution (no interpolation), so the result
    is always a travel time some resident actually has: "90% of the target population is within
    ``m`` minutes".  Units with zero weight and non-finite values are ignored; ``NaN`` when no
    weight is left.  Shares are compared with a slack of 1e-9 (``share >= q - 1e-9``) so that a
    share of exactly ``q`` is not lost to rounding.

    Parameters
    ----------
    values, weights
        One entry per unit; weights >= 0.
    q
        Quantile in (0, 1].
    """
    v = _as_float(values, "values")
    w = _as_float(weights, "weights", v.shape[0])
    if not 0.0 < q <= 1.0:
        msg = f"`q` must be in (0, 1], got {q}"
        raise ValueError(msg)
    _check_weight(w, "weights")
    keep = np.isfinite(v) & (w > 0)
    codes = np.zeros(int(keep.sum()), dtype=np.int64)
    return float(_grouped_quantile(codes, v[keep], w[keep], 1, q)[0])


def _grouped_quantile(
    codes: np.ndarray, values: np.ndarray, weights: np.ndarray, n_groups: int, q: float
) -> np.ndarray:
    """:func:`weighted_quantile` per group; inputs already filtered to finite values, w > 0."""
    out = np.full(n_groups, np.nan)
    if codes.size == 0:
        return out
    # sort by minutes (ties in any order: tied values are one value, so the quantile is the
    # same), then stably by group: small integer keys take numpy's radix sort, linear in n
    order = np.argsort(values)
    if n_groups > 1:
        keys = codes[order]
        if n_groups <= np.iinfo(np.uint16).max:
            keys = keys.astype(np.uint16)
        order = order[np.argsort(keys, kind="stable")]
    c = codes[order]
    v = values[order]
    w = weights[order]
    # running weight restarted per group (a global running sum minus an offset would carry the
    # rounding of the whole district into small groups)
    within = pd.Series(w).groupby(c, sort=False).cumsum().to_numpy()
    total = np.bincount(c, weights=w, minlength=n_groups)
    hit = np.flatnonzero(within >= (q - _QUANTILE_RTOL) * total[c])
    # the running share only grows inside a group, so the first hit per group is the answer
    groups, first = np.unique(c[hit], return_index=True)
    out[groups] = v[hit[first]]
    return out


def _group_stats(
    codes: np.ndarray,
    n_groups: int,
    minutes: np.ndarray,
    weight: np.ndarray,
    unsnapped: np.ndarray,
    thresholds: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per-group totals; ``minutes`` already carries inf for unsnapped units.

    Units with ``codes == -1`` are left out.  Arrays of covered population are (thresholds,
    groups); everything else is (groups,).
    """
    inside = codes >= 0
    c = codes[inside]
    m = minutes[inside]
    w = weight[inside]
    u = unsnapped[inside]
    reachable = np.isfinite(m)
    population = np.bincount(c, weights=w, minlength=n_groups)
    covered = np.vstack(
        [
            np.bincount(c, weights=np.where(is_covered(m, t), w, 0.0), minlength=n_groups)
            for t in thresholds
        ]
    )
    w_reach = np.where(reachable, w, 0.0)
    sum_w = np.bincount(c, weights=w_reach, minlength=n_groups)
    sum_wm = np.bincount(c, weights=w_reach * np.where(reachable, m, 0.0), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(sum_w > 0, sum_wm / np.where(sum_w > 0, sum_w, 1.0), np.nan)
    keep = reachable & (w > 0)
    p90 = _grouped_quantile(c[keep], m[keep], w[keep], n_groups, P90)
    n_unsnapped = np.bincount(c[u], minlength=n_groups).astype(np.int64)
    n_unreachable = np.bincount(c[~u & ~reachable], minlength=n_groups).astype(np.int64)
    return {
        "population": population,
        "covered": covered,
        "mean": mean,
        "p90": p90,
        "unsnapped": n_unsnapped,
        "unreachable": n_unreachable,
    }


def coverage_metrics(
    minutes: np.ndarray,
    weight: np.ndarray,
    *,
    thresholds_min: Sequence[float],
    unsnapped: np.ndarray,
    area: np.ndarray | Sequence[object] | pd.Series | None = None,
    area_names: Sequence[str] | None = None,
    level: str = "street",
    kind: str,
    target_group: str,
    include_district: bool = True,
) -> pd.DataFrame:
    """Coverage of one layer for one target group, as rows of the long ``metrics`` table.

    Parameters
    ----------
    minutes
        Travel minutes from each resident unit to the nearest facility of the layer; ``inf``
        when unreachable.  Never modified.
    weight
        Target-group population of each unit (``population``, ``elderly``...), >= 0.
    thresholds_min
        Minutes at which coverage is reported (duplicates merged, sorted ascending).
    unsnapped
        True for units farther than the snapping limit from any walkable edge.  They count in
        ``population`` and are **never covered**, whatever ``minutes`` says, and are left out of
        the mean and P90 (which describe those who can reach a facility at all).
    area
        Area name per unit (``""``/None = outside all areas, counted only in the district row);
        ``None`` gives the district row only.
    area_names
        Every area to report, in order; see :func:`area_codes`.  Areas with no target
        population get a row with ``population`` 0 and ``coverage_rate`` NaN.
    level
        ``level`` written on the area rows: ``"street"`` (街道), ``"community"`` (社区) or
        ``"hex"``.
    kind, target_group
        Written on every row.
    include_district
        Add the district row (``level="district"``, ``area=""``) per threshold; turn off when
        the district rows come from another call (e.g. the community-level pass).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`METRIC_COLUMNS`; per threshold ascending, the district row then one row
        per area.  See the module docstring for the definitions.
    """
    m = _as_float(minutes, "minutes")
    n = m.shape[0]
    w = _as_float(weight, "weight", n)
    u = _as_bool(unsnapped, "unsnapped", n)
    _check_minutes(m)
    _check_weight(w)
    t = _thresholds(thresholds_min)
    if area is None and not include_district:
        msg = "no rows requested: give `area` or keep `include_district`"
        raise ValueError(msg)
    eff = np.where(u, np.inf, m)

    blocks: list[tuple[str, list[str], dict[str, np.ndarray]]] = []
    if include_district:
        stats = _group_stats(np.zeros(n, dtype=np.int64), 1, eff, w, u, t)
        blocks.append(("district", [""], stats))
    if area is not None:
        if len(area) != n:
            msg = f"`area` has {len(area)} entries, expected {n} (one per resident unit)"
            raise ValueError(msg)
        codes, names = area_codes(area, area_names=area_names)
        blocks.append((level, names, _group_stats(codes, len(names), eff, w, u, t)))

    levels = np.concatenate([np.full(len(names), lev, dtype=object) for lev, names, _ in blocks])
    areas = np.concatenate([np.asarray(names, dtype=object) for _, names, _ in blocks])
    joined = {key: np.concatenate([s[key] for _, _, s in blocks], axis=-1) for key in blocks[0][2]}
    g = levels.shape[0]
    k = t.shape[0]
    population = np.tile(joined["population"], k)
    covered = joined["covered"].reshape(-1)  # (thresholds, groups) -> threshold-major rows
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(population > 0, covered / np.where(population > 0, population, 1.0), np.nan)
    # a covered share can exceed 1 only by float noise in the sums; keep rates in [0, 1]
    rate = np.minimum(rate, 1.0)
    return pd.DataFrame(
        {
            "kind": np.full(g * k, kind, dtype=object),
            "target_group": np.full(g * k, target_group, dtype=object),
            "minutes": np.repeat(t, g),
            "level": np.tile(levels, k),
            "area": np.tile(areas, k),
            "population": population,
            "covered_population": covered,
            "coverage_rate": rate,
            "mean_minutes": np.tile(joined["mean"], k),
            "p90_minutes": np.tile(joined["p90"], k),
            "unsnapped": np.tile(joined["unsnapped"], k).astype(np.int64),
            "unreachable": np.tile(joined["unreachable"], k).astype(np.int64),
        },
        columns=list(METRIC_COLUMNS),
    )


def layers_covered(
    minutes_by_kind: Mapping[str, np.ndarray],
    headline_by_kind: Mapping[str, float],
    *,
    unsnapped: np.ndarray | None = None,
) -> np.ndarray:
    """How many layers each resident unit reaches within the layer's headline minutes.

    This is the life-circle completeness of one unit: a household with a canteen, a
    neighbourhood centre and an elderly station within 15 minutes but no youth hostel scores 3
    of 4.  Each layer uses its own minutes (so its own target group's walking speed).

    Parameters
    ----------
    minutes_by_kind
        Kind -> minutes per unit (``inf`` when unreachable), all the same length.
    headline_by_kind
        Kind -> headline minutes; must name every kind in ``minutes_by_kind``.
    unsnapped
        Optional; unsnapped units reach no layer whatever their minutes say.

    Returns
    -------
    numpy.ndarray
        int64, one count per unit, in ``[0, len(minutes_by_kind)]``.
    """
    if not minutes_by_kind:
        msg = "`minutes_by_kind` is empty; give at least one layer"
        raise ValueError(msg)
    missing = [k for k in minutes_by_kind if k not in headline_by_kind]
    if missing:
        msg = f"no headline minutes for {missing}"
        raise ValueError(msg)
    n: int | None = None
    count: np.ndarray | None = None
    for kind, values in minutes_by_kind.items():
        m = _as_float(values, f"minutes_by_kind[{kind!r}]", n)
        _check_minutes(m, f"minutes_by_kind[{kind!r}]")
        n = m.shape[0]
        hit = is_covered(m, headline_by_kind[kind]).astype(np.int64)
        count = hit if count is None else count + hit
    assert count is not None and n is not None
    if unsnapped is not None:
        u = _as_bool(unsnapped, "unsnapped", n)
        count = np.where(u, 0, count)
    return count


def completeness_table(
    layers_covered: np.ndarray,
    population: np.ndarray,
    area: np.ndarray | Sequence[object] | pd.Series | None = None,
    *,
    n_layers: int,
    area_names: Sequence[str] | None = None,
    level: str = "street",
    include_district: bool = True,
) -> pd.DataFrame:
    """Share of the population whose life circle is complete, per area and for the district.

    Parameters
    ----------
    layers_covered
        Layers within their headline minutes per unit (:func:`layers_covered`).
    population
        Weight per unit (normally total residents: completeness is about households, whatever
        the target group of each layer).
    area, area_names, level, include_district
        As in :func:`coverage_metrics`.
    n_layers
        Number of layers analysed.  Required because the data alone cannot tell it: if no unit
        has every layer, the largest count seen is below it.

    Returns
    -------
    pandas.DataFrame
        ``level``, ``area``, ``population``, ``all_layers_population`` and ``all_layers_share``
        (units with all ``n_layers``), ``mean_layers`` (population-weighted), then
        ``share_0`` ... ``share_<n_layers>``: share of the population with exactly k layers.
        Shares are NaN where the population is 0.
    """
    k = np.asarray(layers_covered)
    if k.ndim != 1 or not np.issubdtype(k.dtype, np.integer):
        msg = "`layers_covered` must be a one-dimensional integer array"
        raise ValueError(msg)
    n = k.shape[0]
    w = _as_float(population, "population", n)
    _check_weight(w, "population")
    if n_layers < 1:
        msg = f"`n_layers` must be at least 1, got {n_layers}"
        raise ValueError(msg)
    if n and (k.min() < 0 or k.max() > n_layers):
        msg = f"`layers_covered` must lie in [0, {n_layers}]"
        raise ValueError(msg)
    if area is None and not include_district:
        msg = "no rows requested: give `area` or keep `include_district`"
        raise ValueError(msg)

    blocks: list[tuple[str, list[str], np.ndarray]] = []
    if include_district:
        blocks.append(("district", [""], np.zeros(n, dtype=np.int64)))
    if area is not None:
        if len(area) != n:
            msg = f"`area` has {len(area)} entries, expected {n} (one per resident unit)"
            raise ValueError(msg)
        codes, names = area_codes(area, area_names=area_names)
        blocks.append((level, names, codes))

    frames = []
    for lev, names, codes in blocks:
        inside = codes >= 0
        g = len(names)
        flat = codes[inside] * (n_layers + 1) + k[inside]
        by_k = np.bincount(flat, weights=w[inside], minlength=g * (n_layers + 1)).reshape(
            g, n_layers + 1
        )
        pop = by_k.sum(axis=1)
        denom = np.where(pop > 0, pop, 1.0)[:, None]
        share = np.where(pop[:, None] > 0, by_k / denom, np.nan)
        mean = np.where(pop > 0, (by_k * np.arange(n_layers + 1)).sum(axis=1) / denom[:, 0], np.nan)
        frame = pd.DataFrame(
            {
                "level": np.full(g, lev, dtype=object),
                "area": np.asarray(names, dtype=object),
                "population": pop,
                "all_layers_population": by_k[:, n_layers],
                "all_layers_share": share[:, n_layers],
                "mean_layers": mean,
                **{f"share_{j}": share[:, j] for j in range(n_layers + 1)},
            }
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)

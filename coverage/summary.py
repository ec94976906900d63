"""``summary.json``: the machine-readable headline of a run (schema documented in the README).

Built only from the :class:`~coverage.result.StudyResult` tables, so it can never disagree with
the map, the report or the exports.  Non-finite numbers become ``null`` (JSON has no inf/NaN).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from coverage.result import StudyResult

#: 2 (2026-12): targets carry ``reason_code`` and structured ``reasons`` instead of a
#: Chinese ``reason`` sentence; the report words them (zh or en) from the same data.
SCHEMA_VERSION = 2


def json_number(x: Any) -> float | None:
    """A number as JSON has it: a float, ``None`` for NaN, infinity or anything not a number."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts, column by column (pandas' ``to_dict`` goes cell by cell through arrow)."""
    cols = {c: frame[c].to_numpy(dtype=object).tolist() for c in frame.columns}
    return [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)]


def _nums(x: np.ndarray) -> list[float | None]:
    """:func:`_num` of a float array, at once (a city has thousands of area rows)."""
    return [v if math.isfinite(v) else None for v in np.asarray(x, dtype=float).tolist()]


def _minutes_key(m: float) -> str:
    return str(int(m)) if float(m).is_integer() else str(m)


def _areas_before_after(result: StudyResult, kind: str) -> dict[str, Any]:
    """Headline coverage per 街道 (or hex) before and after the suggested sites.

    From the solver's own per-area accounting (``SuggestionRun.per_area``); every area of the
    metrics table is listed, ``null`` where it has no target population.
    """
    run = result.suggestion_runs[kind]
    spec = result.specs[kind]
    m = result.metrics
    rows = m[
        (m["kind"] == kind)
        & (m["minutes"] == spec.headline_min)
        & m["level"].isin(["street", "hex"])
    ]
    per = (
        run.per_area.set_index("area")
        if run.per_area is not None and len(run.per_area)
        else pd.DataFrame(columns=["coverage_rate_before", "coverage_rate_after"])
    )
    out: dict[str, Any] = {}
    for area in rows["area"].astype(str):
        hit = per.loc[area] if area in per.index else None
        out[area] = {
            "before": None if hit is None else json_number(hit["coverage_rate_before"]),
            "after": None if hit is None else json_number(hit["coverage_rate_after"]),
        }
    return out


def _reasons(text: object) -> list[dict[str, Any]]:
    """The coded reasons a target cannot be met (``coverage.targets.Unreachable`` as JSON)."""
    if not isinstance(text, str) or not text.strip():
        return []
    value = json.loads(text)
    return value if isinstance(value, list) else [value]


def summary_dict(result: StudyResult) -> dict[str, Any]:
    """The summary as plain JSON-ready data."""
    # the metrics columns as arrays once: a studio edit builds this document every time
    m = result.metrics
    m_kind = m["kind"].to_numpy()
    m_level = m["level"].to_numpy()
    m_minutes = m["minutes"].to_numpy(dtype=float)
    m_area = m["area"].to_numpy()
    m_pop = m["population"].to_numpy(dtype=float)
    m_covered = m["covered_population"].to_numpy(dtype=float)
    m_rate = m["coverage_rate"].to_numpy(dtype=float)
    m_mean = m["mean_minutes"].to_numpy(dtype=float)
    m_p90 = m["p90_minutes"].to_numpy(dtype=float)
    m_unreach = m["unreachable"].to_numpy()
    district = m_level == "district"
    per_area = np.isin(m_level, ["street", "hex"])
    fac = result.facilities
    f_kind = fac["kind"].to_numpy()
    f_off = ~fac["snapped"].to_numpy(dtype=bool)
    f_id = fac["facility_id"].to_numpy()
    f_name = fac["name"].to_numpy()
    g_kind = result.gaps["kind"].to_numpy() if len(result.gaps) else np.array([], dtype=object)
    unsnapped = int((~result.residents["snapped"].to_numpy(dtype=bool)).sum())

    at: dict[tuple[str, float], int] = {}
    for i in np.flatnonzero(district)[::-1]:  # the first row wins, as in a table lookup
        at[(str(m_kind[i]), float(m_minutes[i]))] = int(i)

    def row(kind: str, minutes: float) -> int:
        hit = at.get((kind, float(minutes)))
        if hit is None:
            msg = f"no district metrics for '{kind}' at {minutes} min"
            raise KeyError(msg)
        return hit

    layers: dict[str, Any] = {}
    for kind, spec in result.specs.items():
        h = row(kind, spec.headline_min)
        of_kind = f_kind == kind
        off = np.flatnonzero(of_kind & f_off)
        layers[kind] = {
            "label": spec.label_zh,
            # facilities that serve someone; those beyond the snapping limit are counted apart
            "facilities": int(of_kind.sum()) - len(off),
            "facilities_unsnapped": len(off),
            "osm_proxy": kind in result.checks.osm_proxy_layers,
            "unsnapped_facilities": [
                {"facility_id": str(f_id[i]), "name": str(f_name[i])} for i in off
            ],
            "target_group": spec.target_group,
            "speed_kmh": spec.speed_kmh,
            "headline_minutes": spec.headline_min,
            "population": json_number(m_pop[h]),
            "covered_population": json_number(m_covered[h]),
            "coverage_rate": json_number(m_rate[h]),
            "coverage_rate_by_minutes": {
                _minutes_key(t): json_number(m_rate[row(kind, t)]) for t in spec.thresholds_min
            },
            "mean_minutes": json_number(m_mean[h]),
            "p90_minutes": json_number(m_p90[h]),
            "unsnapped_residents": unsnapped,
            "unreachable_residents": int(m_unreach[h]),
            "gap_zones": int((g_kind == kind).sum()),
        }
    areas: dict[str, Any] = {}
    for kind, spec in result.specs.items():
        sel = np.flatnonzero(per_area & (m_kind == kind) & (m_minutes == spec.headline_min))
        rate, pop = _nums(m_rate[sel]), _nums(m_pop[sel])
        for name, r_i, p_i in zip(m_area[sel].tolist(), rate, pop, strict=True):
            areas.setdefault(str(name), {})[kind] = {"coverage_rate": r_i, "population": p_i}
    suggestions: dict[str, Any] = {}
    for kind, run in result.suggestion_runs.items():
        s = result.suggestions[result.suggestions["kind"] == kind].sort_values("rank")
        suggestions[kind] = {
            "model": run.model,
            "sites": [
                {
                    "rank": int(r["rank"]),
                    "site_id": str(r["site_id"]),
                    "name": str(r["name"]),
                    "street": str(r.get("street", "")),
                    "area": str(r.get("area", "")),
                    "community": str(r.get("community", "")),
                    "lon": round(float(r.geometry.x), 7),
                    "lat": round(float(r.geometry.y), 7),
                    "added_population": json_number(r["added_population"]),
                }
                for _, r in s.iterrows()
            ],
            "coverage_rate_before": json_number(run.coverage_rate_before),
            "coverage_rate_after": json_number(run.coverage_rate_after),
            "optimal": bool(run.optimal),
            "gap": json_number(run.gap),
            "status": run.status,
            "curve": [{"sites": k, "coverage_rate": json_number(v)} for k, v in run.curve],
            "areas": _areas_before_after(result, kind),
        }
    equity = {
        str(r["kind"]): {
            k: (json_number(v) if isinstance(v, float | int | np.floating) else str(v))
            for k, v in r.items()
            if k != "kind"
        }
        for r in _records(result.equity)
    }
    comp = result.completeness
    all_layers = None
    if comp is not None and len(comp):
        d = comp[comp["level"] == "district"]
        if len(d):
            all_layers = json_number(d["all_layers_share"].iloc[0])
    targets = [
        {
            "label": str(r["label"]),
            "layer": str(r["layer"]),
            "scope": str(r["scope"]),
            "measure": str(r["measure"]),
            "minutes": json_number(r["minutes"]),
            "status": str(r["status"]),
            "value": json_number(r["value"]),
            "threshold": json_number(r["threshold"]),
            "units_met": int(r["units_met"]),
            "units_total": int(r["units_total"]),
            "shortfall_population": json_number(r["shortfall_population"]),
            "sites_needed": (
                None if json_number(r["sites_needed"]) is None else int(r["sites_needed"])
            ),
            "reason_code": str(r.get("reason_code", "") or ""),
            "reasons": _reasons(r.get("reason", "")),
        }
        for r in _records(result.targets)
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "title": result.title,
        "synthetic": bool(result.synthetic),
        "residents": len(result.residents),
        "population": json_number(result.residents["population"].sum()),
        "share_with_all_layers": all_layers,
        "residents_outside_areas": result.checks.residents_outside_areas,
        "population_outside_areas": json_number(result.checks.population_outside_areas),
        "area_overlaps": [
            {"area": a, "other": b, "share": json_number(share)}
            for a, b, share in result.checks.area_overlaps
        ],
        "network_warnings": list(result.checks.network_warnings),
        "layers": layers,
        "areas": areas,
        "equity": equity,
        "suggestions": suggestions,
        "targets": targets,
        "sources": list(result.sources),
        "timings_s": {k: round(float(v), 3) for k, v in result.timings_s.items()},
        "network": None if result.network is None else result.network.describe(),
    }

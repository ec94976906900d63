"""A small but complete synthetic :class:`~coverage.result.StudyResult` for output tests.

About 30 resident units in two 街道 (four 社区) near West Lake (lon 120.2, lat 30.27, WGS84),
three facility kinds, service areas at every threshold, gap zones, area metrics, equity figures and
suggested sites, and planning targets.  Minutes are straight-line metres times a detour factor over the layer's walking
speed: the renderers never look at how minutes were made, only at the tables, so the fixture
needs no street network.  Every table is internally consistent (metrics are recomputed from the
residents table here) so that tests can compare rendered numbers with the result exactly.

Planning targets are checked by the real :func:`coverage.targets.evaluate_targets` and
:func:`coverage.targets.sites_needed` on the fixture's own minutes (candidates: the suggested
sites and a grid of 9 candidate points, reached by the same detour rule), so their tables have exactly the analysis' schema: a met
street target, a street target met in one 街道 only, a 社区 target, a district target no
candidate can meet (the unsnapped unit: it names the reason) and a facility count one short.

``hostile=True`` puts markup in every free-text field (study title, layer labels, facility names
and ids, resident names and ids, area and community names, site names and ids, target labels)
for escaping tests.
"""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Point, box

from coverage.result import StudyResult, SuggestionRun
from coverage.schema import GAP_COLUMNS, SUGGESTION_COLUMNS
from coverage.targets import Target, TargetInputs, evaluate_targets, sites_needed
from layers.spec import LayerSpec, load_layer_table

WGS84 = "EPSG:4326"
METRIC = "EPSG:32651"  # UTM 51N covers 120E-126E
KINDS = ("canteen", "neighborhood_center", "youth_hostel")
DETOUR = 1.3  # network metres per straight metre in this fixture

HOSTILE = "<script>alert(1)</script>"
HOSTILE_ATTR = '"><img src=x onerror=alert(1)>'

CENTER_LON, CENTER_LAT = 120.2, 30.27


def _hostile(text: str, i: int = 0) -> str:
    """A hostile variant of ``text``: markup that would run if pasted unescaped."""
    return f"{HOSTILE}{text}{HOSTILE_ATTR}{i}" if i % 2 == 0 else f"{HOSTILE_ATTR}{text}{HOSTILE}"


def _to_metric(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf.to_crs(METRIC)


def _streets_and_communities(hostile: bool) -> gpd.GeoDataFrame:
    """Two 街道 side by side (split at lon 120.2), each with two 社区 (split at lat 30.27)."""
    west, east = 120.186, 120.214
    south, north = 30.259, 30.281
    streets = [
        ("清波街道", box(west, south, CENTER_LON, north)),
        ("湖滨街道", box(CENTER_LON, south, east, north)),
    ]
    rows = []
    for j, (name, geom) in enumerate(streets):
        sname = _hostile(name, j) if hostile else name
        rows.append({"area": sname, "level": "street", "parent": "", "geometry": geom})
        minx, miny, maxx, maxy = geom.bounds
        for k, (lo, hi) in enumerate(((miny, CENTER_LAT), (CENTER_LAT, maxy))):
            cname = f"{name[:2]}{'南北'[k]}社区"
            rows.append(
                {
                    "area": _hostile(cname, k) if hostile else cname,
                    "level": "community",
                    "parent": sname,
                    "geometry": box(minx, lo, maxx, hi),
                }
            )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=WGS84)


def _facilities(specs: dict[str, LayerSpec], hostile: bool) -> gpd.GeoDataFrame:
    table = {
        "canteen": [("幸福食堂", 120.192, 30.266, 80.0), ("邻里助餐点", 120.207, 30.276, np.nan)],
        "neighborhood_center": [
            ("湖滨邻里中心", 120.205, 30.268, 500.0),
            ("清波邻里坊", 120.190, 30.276, 300.0),
        ],
        "youth_hostel": [("青荷驿站", 120.201, 30.273, 12.0)],
    }
    rows = []
    for kind in specs:
        for i, (name, lon, lat, cap) in enumerate(table[kind]):
            fid = f"{kind[:2].upper()}{i + 1:03d}"
            rows.append(
                {
                    "facility_id": _hostile(fid, i) if hostile else fid,
                    "kind": kind,
                    "name": _hostile(name, i + 1) if hostile else name,
                    "capacity": cap,
                    "snapped": True,
                    "access_m": 12.5 + 3 * i,
                    "geometry": Point(lon, lat),
                }
            )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=WGS84)


def _residents(
    specs: dict[str, LayerSpec],
    facilities: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    hostile: bool,
    rng: np.random.Generator,
) -> gpd.GeoDataFrame:
    nx_, ny_ = 6, 5
    lons = np.linspace(120.188, 120.212, nx_)
    lats = np.linspace(30.261, 30.279, ny_)
    pts = [
        Point(
            round(lon + rng.uniform(-0.0015, 0.0015), 6),
            round(lat + rng.uniform(-0.0015, 0.0015), 6),
        )
        for lat in lats
        for lon in lons
    ]
    n = len(pts)
    population = rng.integers(40, 600, n).astype(float)
    rows = gpd.GeoDataFrame(
        {
            "resident_id": [_hostile(f"R{i:03d}", i) if hostile else f"R{i:03d}" for i in range(n)],
            "name": [_hostile(f"小区{i}", i + 1) if hostile else f"小区{i}" for i in range(n)],
            "population": population,
            "elderly": np.round(population * rng.uniform(0.15, 0.35, n)),
            "youth": np.round(population * rng.uniform(0.2, 0.4, n)),
        },
        geometry=pts,
        crs=WGS84,
    )
    rows.loc[3, ["population", "elderly", "youth"]] = 0.0  # an empty compound (weight 0)
    streets = areas[areas["level"] == "street"]
    comms = areas[areas["level"] == "community"]
    rows["area"] = [
        next((a for a, g in zip(streets["area"], streets.geometry, strict=True) if g.covers(p)), "")
        for p in pts
    ]
    rows["community"] = [
        next((a for a, g in zip(comms["area"], comms.geometry, strict=True) if g.covers(p)), "")
        for p in pts
    ]
    rows["snapped"] = True
    unsnapped = n - 1  # one unit too far from any street
    rows.loc[unsnapped, "snapped"] = False

    xy = np.column_stack([_to_metric(rows).geometry.x, _to_metric(rows).geometry.y])
    fac_m = _to_metric(facilities)
    layers_covered = np.zeros(n, dtype=int)
    for kind, spec in specs.items():
        f = fac_m[fac_m["kind"] == kind]
        fxy = np.column_stack([f.geometry.x, f.geometry.y])
        d = np.hypot(xy[:, None, 0] - fxy[None, :, 0], xy[:, None, 1] - fxy[None, :, 1]) * DETOUR
        nearest = d.argmin(axis=1)
        minutes = d[np.arange(n), nearest] / spec.metres_per_minute
        fac_ids = f["facility_id"].to_numpy()[nearest].astype(object)
        minutes[unsnapped] = np.inf
        fac_ids[unsnapped] = ""
        if kind == "youth_hostel":  # a unit on an island of the network: snapped but unreachable
            minutes[0] = np.inf
            fac_ids[0] = ""
        rows[f"minutes_{kind}"] = minutes
        rows[f"facility_{kind}"] = fac_ids.astype(str)
        covered = (minutes <= spec.headline_min) & rows["snapped"].to_numpy()
        rows[f"covered_{kind}"] = covered
        layers_covered += covered
    rows["layers_covered"] = layers_covered
    return rows


def _service_areas(specs: dict[str, LayerSpec], facilities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    fac_m = _to_metric(facilities)
    rows = []
    for kind, spec in specs.items():
        f = fac_m[fac_m["kind"] == kind]
        for minutes in spec.thresholds_min:
            radius = minutes * spec.metres_per_minute / DETOUR
            geoms = [g.buffer(radius, quad_segs=8) for g in f.geometry]
            for fid, g in zip(f["facility_id"], geoms, strict=True):
                rows.append(
                    {"kind": kind, "minutes": float(minutes), "facility_id": fid, "geometry": g}
                )
            rows.append(
                {
                    "kind": kind,
                    "minutes": float(minutes),
                    "facility_id": "",
                    "geometry": shapely.union_all(geoms),
                }
            )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC).to_crs(WGS84)


def _gaps(
    specs: dict[str, LayerSpec], residents: gpd.GeoDataFrame, streets: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    res_m = _to_metric(residents)
    streets_m = _to_metric(streets)
    rows = []
    for kind, spec in specs.items():
        unc = res_m[~res_m[f"covered_{kind}"] & (res_m[spec.target_group] > 0)]
        if unc.empty:
            continue
        zones = shapely.get_parts(shapely.union_all(unc.geometry.buffer(220.0).to_numpy()))
        found = []
        for zone in zones:
            inside = unc[unc.geometry.within(zone)]
            pop = float(inside[spec.target_group].sum())
            overlap = streets_m.geometry.intersection(zone).area.to_numpy()
            minutes = inside[f"minutes_{kind}"].to_numpy()
            finite = np.isfinite(minutes)
            j = int(np.argmin(np.where(finite, minutes, np.inf))) if finite.any() else -1
            found.append(
                {
                    "kind": kind,
                    "uncovered_population": pop,
                    "residents": len(inside),
                    "area": streets_m["area"].iloc[int(overlap.argmax())]
                    if overlap.max() > 0
                    else "",
                    "area_km2": zone.area / 1e6,
                    "nearest_facility": inside[f"facility_{kind}"].iloc[j] if j >= 0 else "",
                    "nearest_facility_minutes": float(minutes[j]) if j >= 0 else np.inf,
                    "geometry": zone,
                }
            )
        found.sort(key=lambda r: -r["uncovered_population"])
        for rank, r in enumerate(found, start=1):
            rows.append({"gap_id": rank, **r})
    cols = [*GAP_COLUMNS, "geometry"]
    return gpd.GeoDataFrame(rows, columns=cols, geometry="geometry", crs=METRIC).to_crs(WGS84)


def _metric_rows(
    kind: str, spec: LayerSpec, res: pd.DataFrame, level: str, area: str
) -> list[dict[str, object]]:
    weight = res[spec.target_group].to_numpy(dtype=float)
    minutes = res[f"minutes_{kind}"].to_numpy(dtype=float)
    snapped = res["snapped"].to_numpy(dtype=bool)
    reach = snapped & np.isfinite(minutes) & (weight > 0)
    rows = []
    for t in spec.thresholds_min:
        pop = float(weight.sum())
        cov = float(weight[snapped & (minutes <= t)].sum())
        if reach.any():
            w, m = weight[reach], minutes[reach]
            mean = float(np.average(m, weights=w))
            order = np.argsort(m)
            cum = np.cumsum(w[order]) / w.sum()
            p90 = float(m[order][np.searchsorted(cum, 0.9)])
        else:
            mean = p90 = float("nan")
        rows.append(
            {
                "kind": kind,
                "target_group": spec.target_group,
                "minutes": float(t),
                "level": level,
                "area": area,
                "population": pop,
                "covered_population": cov,
                "coverage_rate": cov / pop if pop > 0 else float("nan"),
                "mean_minutes": mean,
                "p90_minutes": p90,
                "unsnapped": int((~snapped).sum()),
                "unreachable": int((snapped & ~np.isfinite(minutes)).sum()),
            }
        )
    return rows


def _metrics(
    specs: dict[str, LayerSpec], residents: pd.DataFrame, areas: pd.DataFrame
) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    for kind, spec in specs.items():
        rows += _metric_rows(kind, spec, residents, "district", "")
        for name in areas.loc[areas["level"] == "street", "area"]:
            rows += _metric_rows(kind, spec, residents[residents["area"] == name], "street", name)
        for name in areas.loc[areas["level"] == "community", "area"]:
            rows += _metric_rows(
                kind, spec, residents[residents["community"] == name], "community", name
            )
    return pd.DataFrame(rows)


def _area_columns(
    specs: dict[str, LayerSpec], areas: gpd.GeoDataFrame, metrics: pd.DataFrame
) -> gpd.GeoDataFrame:
    out = areas.copy()
    for kind, spec in specs.items():
        m = metrics[(metrics["kind"] == kind) & (metrics["minutes"] == spec.headline_min)]
        by = {(r.level, r.area): r for r in m.itertuples()}
        out[f"coverage_{kind}"] = [
            by[(lv, a)].coverage_rate for lv, a in zip(out["level"], out["area"], strict=True)
        ]
        out[f"population_{kind}"] = [
            by[(lv, a)].population for lv, a in zip(out["level"], out["area"], strict=True)
        ]
    return out


def _equity(specs: dict[str, LayerSpec], metrics: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for kind, spec in specs.items():
        m = metrics[
            (metrics["kind"] == kind)
            & (metrics["level"] == "street")
            & (metrics["minutes"] == spec.headline_min)
        ]
        m = m[m["population"] > 0]
        rates = m["coverage_rate"].to_numpy(dtype=float)
        w = m["population"].to_numpy(dtype=float)
        mean = float(np.average(rates, weights=w))
        diff = np.abs(rates[:, None] - rates[None, :]) * w[:, None] * w[None, :]
        gini = float(diff.sum() / (2 * w.sum() ** 2 * mean)) if mean > 0 else float("nan")
        cv = (
            float(np.sqrt(np.average((rates - mean) ** 2, weights=w)) / mean)
            if mean > 0
            else float("nan")
        )
        worst, best = int(rates.argmin()), int(rates.argmax())
        rows.append(
            {
                "kind": kind,
                "gini": gini,
                "cv": cv,
                "worst_area": m["area"].iloc[worst],
                "worst_rate": float(rates[worst]),
                "best_area": m["area"].iloc[best],
                "best_rate": float(rates[best]),
                "best_worst_gap": float(rates[best] - rates[worst]),
            }
        )
    return pd.DataFrame(rows)


def _suggestions(
    specs: dict[str, LayerSpec], metrics: pd.DataFrame, hostile: bool
) -> tuple[gpd.GeoDataFrame, dict[str, SuggestionRun]]:
    plan = {
        "canteen": [
            ("新增助餐点A", 120.2105, 30.2615, 310.0),
            ("新增助餐点B", 120.1885, 30.2795, 95.0),
        ],
        "youth_hostel": [("新青荷驿站", 120.1895, 30.2625, 640.0)],
    }
    rows = []
    runs = {}
    for kind, sites in plan.items():
        if kind not in specs:
            continue
        head = metrics[
            (metrics["kind"] == kind)
            & (metrics["level"] == "district")
            & (metrics["minutes"] == specs[kind].headline_min)
        ].iloc[0]
        before = float(head["coverage_rate"])
        pop = float(head["population"])
        covered = float(head["covered_population"])
        curve = [(0, before)]
        for rank, (name, lon, lat, added) in enumerate(sites, start=1):
            covered += added
            rate = covered / pop
            curve.append((rank, rate))
            sid = f"C{kind[:1].upper()}{rank:02d}"
            rows.append(
                {
                    "kind": kind,
                    "rank": rank,
                    "site_id": _hostile(sid, rank) if hostile else sid,
                    "name": _hostile(name, rank) if hostile else name,
                    "street": _hostile("延安路", rank) if hostile else "延安路",
                    "area": "湖滨街道",
                    "community": "",
                    "model": "mclp",
                    "added_population": added,
                    "coverage_rate_after": rate,
                    "geometry": Point(lon, lat),
                }
            )
        runs[kind] = SuggestionRun(
            kind=kind,
            model="mclp",
            coverage_rate_before=before,
            coverage_rate_after=curve[-1][1],
            optimal=kind == "canteen",
            gap=0.0 if kind == "canteen" else 0.012,
            status="optimal" if kind == "canteen" else "time limit",
            curve=tuple(curve),
            unreachable_population=35.0 if kind == "youth_hostel" else 0.0,
        )
    cols = [*SUGGESTION_COLUMNS, "geometry"]
    return gpd.GeoDataFrame(rows, columns=cols, geometry="geometry", crs=WGS84), runs


#: (label, layer, scope, measure, threshold, minutes) of the fixture's planning targets.
TARGETS = (
    ("每个街道至少1个邻里中心", "neighborhood_center", "street", "facility_count", 1.0, None),
    ("每个街道老人15分钟助餐覆盖率不低于50%", "canteen", "street", "coverage_rate", 0.5, 15.0),
    (
        "每个社区居民15分钟可达邻里中心比例不低于90%",
        "neighborhood_center",
        "community",
        "coverage_rate",
        0.9,
        15.0,
    ),
    ("青荷驿站15分钟覆盖全部青年", "youth_hostel", "district", "coverage_rate", 1.0, 15.0),
    ("青荷驿站不少于2个", "youth_hostel", "district", "facility_count", 2.0, None),
)


def _inside(points: gpd.GeoSeries, polygons: gpd.GeoDataFrame) -> np.ndarray:
    """Name of the polygon covering each point ("" outside all)."""
    return np.array(
        [
            next(
                (
                    a
                    for a, g in zip(polygons["area"], polygons.geometry, strict=True)
                    if g.covers(p)
                ),
                "",
            )
            for p in points
        ],
        dtype=object,
    )


def _targets(
    specs: dict[str, LayerSpec],
    residents: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    hostile: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The targets and target_units tables, by the analysis' own functions."""
    targets = tuple(
        Target(_hostile(label, i) if hostile else label, layer, scope, measure, threshold, minutes)
        for i, (label, layer, scope, measure, threshold, minutes) in enumerate(TARGETS)
        if layer in specs
    )
    if not targets:
        return pd.DataFrame(), pd.DataFrame()
    streets = areas[areas["level"] == "street"]
    comms = areas[areas["level"] == "community"]
    res_m, cand_m = _to_metric(residents), _to_metric(candidates)
    dist_m = (
        np.hypot(
            res_m.geometry.x.to_numpy()[:, None] - cand_m.geometry.x.to_numpy()[None, :],
            res_m.geometry.y.to_numpy()[:, None] - cand_m.geometry.y.to_numpy()[None, :],
        )
        * DETOUR
    )
    dist_m[~residents["snapped"].to_numpy(dtype=bool)] = np.inf  # off the network: no pair
    inputs, what = {}, {}
    for kind in sorted({t.layer for t in targets}):
        spec = specs[kind]
        fac = facilities[facilities["kind"] == kind]
        mins = dist_m / spec.metres_per_minute
        horizon = max(t.minutes or spec.headline_min for t in targets if t.layer == kind)
        pr, pc = np.nonzero(mins <= horizon)
        d = TargetInputs(
            minutes=residents[f"minutes_{kind}"].to_numpy(dtype=float),
            weight=residents[spec.target_group].to_numpy(dtype=float),
            street=residents["area"].to_numpy(dtype=object),
            community=residents["community"].to_numpy(dtype=object),
            community_street=dict(zip(comms["area"], comms["parent"], strict=True)),
            facility_street=_inside(fac.geometry, streets),
            facility_community=_inside(fac.geometry, comms),
            headline_min=spec.headline_min,
            pair_resident=pr.astype(np.int64),
            pair_candidate=pc.astype(np.int64),
            pair_minutes=mins[pr, pc],
            n_candidates=len(candidates),
            candidate_street=_inside(candidates.geometry, streets),
            candidate_community=_inside(candidates.geometry, comms),
        )
        inputs[kind] = d
        ids = [i for i, t in enumerate(targets) if t.layer == kind]
        what[kind] = sites_needed(
            [targets[i] for i in ids],
            d,
            streets=list(streets["area"]),
            communities=list(comms["area"]),
            target_ids=ids,
        )
    table, units = evaluate_targets(
        targets, inputs, streets=list(streets["area"]), communities=list(comms["area"])
    )
    for i, t in enumerate(targets):  # as coverage.analysis fills them
        if t.measure == "facility_count":
            table.loc[i, "sites_needed"] = table.loc[i, "shortfall_sites"]
            continue
        w = what[t.layer]
        table.loc[i, "reason_code"] = w.reason_code(i)
        table.loc[i, "reason"] = w.reason_json(i)
        table.loc[i, "sites_needed"] = np.nan if w.reasons_for(i) else float(len(w.sites))
    return table, units


def make_result(
    *, hostile: bool = False, synthetic: bool = True, kinds: tuple[str, ...] = KINDS, seed: int = 7
) -> StudyResult:
    """Build the fixture result; deterministic for a given ``seed``."""
    rng = np.random.default_rng(seed)
    table = load_layer_table()
    specs = {k: table[k] for k in kinds}
    if hostile:
        specs = {
            k: replace(s, label_zh=_hostile(s.label_zh, i), label_en=_hostile(s.label_en, i + 1))
            for i, (k, s) in enumerate(specs.items())
        }
    areas = _streets_and_communities(hostile)
    facilities = _facilities(specs, hostile)
    residents = _residents(specs, facilities, areas, hostile, rng)
    metrics = _metrics(specs, residents, areas)
    areas = _area_columns(specs, areas, metrics)
    suggestions, runs = _suggestions(specs, metrics, hostile)
    grid = [Point(lon, lat) for lon in (120.19, 120.2, 120.21) for lat in (30.263, 30.27, 30.277)]
    candidates = gpd.GeoDataFrame(
        geometry=[*_suggestions(specs, metrics, False)[0].geometry, *grid], crs=WGS84
    )
    targets, target_units = _targets(specs, residents, facilities, areas, candidates, hostile)
    title = "上城区15分钟公共服务圈（测试）"
    return StudyResult(
        title=_hostile(title) if hostile else title,
        specs=specs,
        facilities=facilities,
        residents=residents,
        service_areas=_service_areas(specs, facilities),
        gaps=_gaps(specs, residents, areas[areas["level"] == "street"]),
        areas=areas,
        metrics=metrics,
        equity=_equity(specs, metrics),
        suggestions=suggestions,
        suggestion_runs=runs,
        targets=targets,
        target_units=target_units,
        synthetic=synthetic,
        sources=(
            "步行路网 walk network: © OpenStreetMap contributors, ODbL",
            "设施与居民 facilities and residents: synthetic test data",
        ),
    )

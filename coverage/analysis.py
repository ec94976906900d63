"""The whole analysis: route every resident to each facility layer, then measure and suggest.

One multi-source search per layer gives every resident's minutes to its nearest facility; every
table of the :class:`~coverage.result.StudyResult` is then derived from those minutes (metrics,
gaps, equity, completeness) or from sparse reachable pairs (2SFCA, optimization).  Polygons are
drawn for people to look at and never feed a number.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage.access2sfca import gaussian_2sfca
from coverage.equity import equity_table
from coverage.gaps import GapZones, candidates_in_gaps, find_gaps
from coverage.hexgrid import hex_areas
from coverage.metrics import completeness_table, coverage_metrics, layers_covered
from coverage.optimize import CoverageProblem, Method, Model, solve
from coverage.result import DataChecks, StudyResult, SuggestionRun
from coverage.targets import Target, TargetInputs, evaluate_targets, sites_needed
from geo.network import WalkNetwork
from geo.routing import nearest_distances, reachable_pairs
from geo.service_area import service_areas
from geo.snap import MAX_SNAP_M, Snapped, snap_points
from layers.errors import InputError
from layers.spec import LayerSpec

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class StudyInputs:
    """Checked layers in WGS84 (as :mod:`layers.model` returns them).

    ``streets`` are 街道 polygons (``area``), ``communities`` 社区 polygons (``area``,
    ``parent``); without either, an H3 grid is used for the per-area tables.
    """

    residents: gpd.GeoDataFrame
    facilities: Mapping[str, gpd.GeoDataFrame]
    specs: Mapping[str, LayerSpec]
    streets: gpd.GeoDataFrame | None = None
    communities: gpd.GeoDataFrame | None = None
    candidates: gpd.GeoDataFrame | None = None


@dataclass(frozen=True)
class AnalysisOptions:
    """Options of :func:`analyse`; defaults follow DESIGN.md."""

    max_snap_m: float = MAX_SNAP_M
    suggest: Mapping[str, int] = field(default_factory=dict)
    targets: tuple[Target, ...] = ()
    model: Model = "mclp"
    method: Method = "auto"
    time_limit_s: float = 30.0
    per_facility_areas: bool = False
    candidate_spacing_m: float = 200.0
    hex_resolution: int = 8


def _points_xy(net: WalkNetwork, gdf: gpd.GeoDataFrame) -> np.ndarray:
    geoms = gdf.geometry.to_numpy()
    not_pt = shapely.get_type_id(geoms) != 0
    if not_pt.any():
        geoms = np.where(not_pt, shapely.point_on_surface(geoms), geoms)
    ll = shapely.get_coordinates(geoms)
    return net.project_lonlat(ll[:, 0], ll[:, 1])


def _assign(points_ll: gpd.GeoSeries, polygons: gpd.GeoDataFrame | None) -> np.ndarray:
    """Name of the polygon containing each point ("" outside all); first polygon wins."""
    out = np.full(len(points_ll), "", dtype=object)
    if polygons is None or polygons.empty:
        return out
    tree = shapely.STRtree(polygons.geometry.to_numpy())
    pi, ai = tree.query(points_ll.to_numpy(), predicate="within")
    order = np.lexsort((ai, pi))
    pi, ai = pi[order], ai[order]
    first = np.ones(len(pi), dtype=bool)
    first[1:] = pi[1:] != pi[:-1]
    out[pi[first]] = polygons["area"].to_numpy()[ai[first]]
    return out


def _to_wgs84(net: WalkNetwork, geoms: np.ndarray) -> np.ndarray:
    tr = net.to_wgs84
    return np.asarray(
        shapely.transform(geoms, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
    )


def _target_weight(residents: gpd.GeoDataFrame, spec: LayerSpec) -> np.ndarray:
    if spec.target_group not in residents.columns:
        msg = (
            f"layer '{spec.kind}' serves '{spec.target_group}' "
            "but the residents have no such column"
        )
        raise InputError(
            msg,
            column=spec.target_group,
            fix=f"add a '{spec.target_group}' column to the residents or map it in the plan",
        )
    return residents[spec.target_group].to_numpy(dtype=float)


def analyse(
    net: WalkNetwork,
    inputs: StudyInputs,
    *,
    title: str,
    options: AnalysisOptions | None = None,
    synthetic: bool = False,
    sources: tuple[str, ...] = (),
    progress: Progress | None = None,
) -> StudyResult:
    """Run the coverage analysis (and optional site suggestions) for every facility layer.

    Parameters
    ----------
    net
        The walking network, covering the residents and facilities (plus a buffer).
    inputs
        Residents, facility layers, areas and candidates in WGS84.
    title
        Study name for maps and reports.
    options
        Snapping limit, suggestions per kind, model, gap clustering, etc.
    synthetic
        The demo district: every output says the data is synthetic.
    sources
        Data-source lines for the method section.
    progress
        Called with a short text at each step (the CLI shows it); logging gets it too.
    """
    opts = options or AnalysisOptions()
    timings: dict[str, float] = {}

    def step(text: str) -> None:
        log.info(text)
        if progress is not None:
            progress(text)

    t0 = time.perf_counter()
    specs = dict(inputs.specs)
    kinds = [k for k in specs if k in inputs.facilities]
    unknown = [k for k in opts.suggest if k not in kinds]
    if unknown:
        msg = f"cannot suggest sites for '{unknown[0]}': no such facility layer"
        raise InputError(
            msg,
            fix=f"use one of {', '.join(kinds)}",
        )
    residents = inputs.residents
    step(f"snapping {len(residents):,} resident units to the street network")
    res_ll = gpd.GeoSeries(
        shapely.point_on_surface(residents.geometry.to_numpy()), crs=4326, index=residents.index
    )
    res_xy = _points_xy(net, residents)
    res_snap = snap_points(net, res_xy, max_snap_m=opts.max_snap_m)
    if res_snap.unsnapped.all():
        msg = f"no resident lies within reach of the street network ({opts.max_snap_m:.0f} m)"
        raise InputError(
            msg,
            fix="check the residents' coordinate system (--coords) or the network extent",
        )
    street = _assign(res_ll, inputs.streets)
    community = _assign(res_ll, inputs.communities)
    checks = replace(
        _area_checks(inputs, street, max_snap_m=opts.max_snap_m),
        network_warnings=tuple(net.report.warnings),
        footpath_share=net.report.footpath_share,
    )
    hex_cells = None
    hex_gdf = None
    if inputs.streets is None:
        hex_cells, hex_gdf = hex_areas(
            res_ll.x.to_numpy(), res_ll.y.to_numpy(), resolution=opts.hex_resolution
        )
    timings["snap"] = time.perf_counter() - t0

    out = gpd.GeoDataFrame(
        residents.drop(columns=residents.geometry.name).copy(), geometry=res_ll.values, crs=4326
    )
    out["area"] = street if inputs.streets is not None else hex_cells
    out["community"] = community
    out["snapped"] = ~res_snap.unsnapped

    street_minutes: dict[str, np.ndarray] = {}
    fac_frames = []
    fac_snaps: dict[str, Snapped] = {}
    zones_by_kind: dict[str, GapZones] = {}
    minutes: dict[str, np.ndarray] = {}
    metrics_parts = []
    sa_rows = []
    gap_rows = []
    access_notes: dict[str, Any] = {}
    for kind in kinds:
        spec = specs[kind]
        fac = inputs.facilities[kind]
        t = time.perf_counter()
        step(f"{spec.label_en}: routing {len(residents):,} residents to {len(fac)} facilities")
        fxy = _points_xy(net, fac) if len(fac) else np.zeros((0, 2))
        fsn = snap_points(net, fxy, max_snap_m=opts.max_snap_m)
        fac_snaps[kind] = fsn
        if len(fac) and fsn.unsnapped.any():
            log.warning(
                "%s: %d facilities are farther than %.0f m from any street and are "
                "left out of routing",
                kind,
                int(fsn.unsnapped.sum()),
                opts.max_snap_m,
            )
        # no cutoff: one multi-source pass costs milliseconds either way, and real minutes
        # beyond the goal (not inf) are what mean/P90, gap zones and the map need
        near = nearest_distances(net, fsn, res_snap)
        mins = near.distance_m / spec.metres_per_minute
        street_minutes[kind] = _edge_midpoint_m(net, near, fsn) / spec.metres_per_minute
        minutes[kind] = mins
        ids = fac["facility_id"].astype(str).to_numpy()
        out[f"minutes_{kind}"] = mins
        out[f"facility_{kind}"] = np.where(near.source >= 0, ids[np.maximum(near.source, 0)], "")
        out[f"covered_{kind}"] = mins <= spec.headline_min
        timings[f"route_{kind}"] = time.perf_counter() - t

        f = fac[["facility_id", "kind", "name", "capacity"]].copy()
        f["snapped"] = ~fsn.unsnapped
        f["access_m"] = fsn.access_m
        f["demand_load"] = np.nan  # filled by 2SFCA below when capacities are known
        f["load_ratio"] = np.nan
        fac_frame = gpd.GeoDataFrame(f, geometry=fac.geometry.values, crs=4326)
        fac_frames.append(fac_frame)

        t = time.perf_counter()
        weight = _target_weight(residents, spec)
        metrics_parts += _layer_metrics(
            inputs, spec, mins, weight, res_snap.unsnapped, street, community, hex_cells
        )
        timings[f"metrics_{kind}"] = time.perf_counter() - t

        t = time.perf_counter()
        step(f"{spec.label_en}: service areas and gap zones")
        cut = [m * spec.metres_per_minute for m in spec.thresholds_min]
        sa = service_areas(net, fsn, cut, per_source=opts.per_facility_areas)
        for src_i, cut_m, geom in zip(sa["source"], sa["cutoff_m"], sa.geometry, strict=True):
            sa_rows.append(
                {
                    "kind": kind,
                    "minutes": float(round(cut_m / spec.metres_per_minute, 6)),
                    "facility_id": "" if src_i < 0 else str(ids[src_i]),
                    "geometry": geom,
                }
            )
        timings[f"service_areas_{kind}"] = time.perf_counter() - t
        t = time.perf_counter()
        uncovered = ~(mins <= spec.headline_min)
        zones = find_gaps(
            net,
            res_snap,
            res_xy,
            uncovered,
            weight,
            near,
            spec.headline_min * spec.metres_per_minute,
        )
        zones_by_kind[kind] = zones
        out[f"gap_{kind}"] = zones.label
        for z in range(len(zones.uncovered_population)):
            members = zones.members[z]
            where = pd.Series(out["area"].to_numpy()[members]).replace("", np.nan).dropna()
            gap_rows.append(
                {
                    "kind": kind,
                    "gap_id": z + 1,
                    "uncovered_population": float(zones.uncovered_population[z]),
                    "residents": int(zones.residents[z]),
                    "area": str(where.value_counts().index[0]) if len(where) else "",
                    "area_km2": float(zones.area_km2[z]),
                    "nearest_facility": ""
                    if zones.nearest_facility[z] < 0
                    else str(ids[zones.nearest_facility[z]]),
                    "nearest_facility_minutes": float(zones.nearest_m[z] / spec.metres_per_minute),
                    "geometry": zones.geometry[z],
                }
            )
        timings[f"gaps_{kind}"] = time.perf_counter() - t

        cap = fac["capacity"].to_numpy(dtype=float) if len(fac) else np.array([])
        if len(cap) and np.isfinite(cap).any():
            t = time.perf_counter()
            pairs = reachable_pairs(
                net, fsn, res_snap, cutoff_m=spec.headline_min * spec.metres_per_minute
            )
            acc = gaussian_2sfca(
                pairs["target"].to_numpy(),
                pairs["source"].to_numpy(),
                pairs["distance_m"].to_numpy() / spec.metres_per_minute,
                weight,
                cap,
                catchment_min=spec.headline_min,
            )
            out[f"access_{kind}"] = acc.score
            # loads reach the facilities table, hence the report and every GIS export
            fac_frame["demand_load"] = acc.load
            fac_frame["load_ratio"] = acc.load_ratio
            if acc.excluded.size:
                log.warning(
                    "%s: %d facilities have no capacity and are left out of the 2SFCA scores: %s",
                    kind,
                    acc.excluded.size,
                    ", ".join(str(fac["name"].iloc[j]) for j in acc.excluded[:10]),
                )
            access_notes[kind] = {
                "oversubscribed": [str(ids[j]) for j in acc.oversubscribed],
                "load": acc.load,
                "capacity": acc.capacity,
            }
            timings[f"2sfca_{kind}"] = time.perf_counter() - t

    headline = {k: specs[k].headline_min for k in kinds}
    out["layers_covered"] = layers_covered(minutes, headline, unsnapped=res_snap.unsnapped)
    metrics = pd.concat(metrics_parts, ignore_index=True) if metrics_parts else pd.DataFrame()
    level = "street" if inputs.streets is not None else "hex"
    equity = equity_table(metrics, headline_by_kind=headline, level=level)
    completeness = completeness_table(
        out["layers_covered"].to_numpy(),
        residents["population"].to_numpy(dtype=float),
        area=out["area"].to_numpy(),
        n_layers=len(kinds),
        level=level,
    )

    # suggestions
    sugg_rows: list[dict[str, Any]] = []
    scenario_parts: list[pd.DataFrame] = []
    runs: dict[str, SuggestionRun] = {}
    for kind, p in opts.suggest.items():
        if p <= 0 and opts.model != "lscp":
            continue
        t = time.perf_counter()
        spec = specs[kind]
        step(f"{spec.label_en}: choosing {p} new sites ({opts.model})")
        weight = _target_weight(residents, spec)
        cand_xy, cand_ids, cand_names, cand_cap = _candidates(
            net, inputs, zones_by_kind[kind], spec, opts
        )
        if len(cand_xy) == 0:
            log.warning("%s: no candidate sites (no gaps, or no candidates given)", kind)
            continue
        csn = snap_points(net, cand_xy, max_snap_m=opts.max_snap_m)
        horizon = spec.cutoff_m
        pairs = reachable_pairs(net, csn, res_snap, cutoff_m=horizon)
        problem = CoverageProblem.from_pairs(
            weight,
            pairs["target"].to_numpy(),
            pairs["source"].to_numpy(),
            pairs["distance_m"].to_numpy() / spec.metres_per_minute,
            threshold_min=spec.headline_min,
            n_candidates=len(cand_xy),
            cutoff_min=horizon / spec.metres_per_minute,
            minutes_before=np.where(res_snap.unsnapped, np.inf, minutes[kind]),
            candidate_capacity=cand_cap if opts.model == "capacitated" else None,
            demand_area=out["area"].to_numpy().astype(str),
        )
        sol = solve(
            problem,
            opts.model,
            p=None if opts.model == "lscp" else int(p),
            method=opts.method,
            time_limit_s=opts.time_limit_s,
        )
        total = float(weight.sum())
        cand_ll = _to_wgs84(net, shapely.points(cand_xy))
        cum = sol.covered_before_population
        for rank, (j, added) in enumerate(
            zip(sol.selected, sol.added_population, strict=True), start=1
        ):
            cum += float(added)
            sugg_rows.append(
                {
                    "kind": kind,
                    "rank": rank,
                    "site_id": str(cand_ids[j]),
                    "name": str(cand_names[j]),
                    "model": opts.model,
                    "added_population": float(added),
                    "coverage_rate_after": cum / total if total > 0 else np.nan,
                    "geometry": cand_ll[j],
                }
            )
        after = np.minimum(minutes[kind], sol.minutes_after)
        out[f"minutes_after_{kind}"] = after
        scenario_parts += _layer_metrics(
            inputs, spec, after, weight, res_snap.unsnapped, street, community, hex_cells
        )
        runs[kind] = SuggestionRun(
            kind=kind,
            model=opts.model,
            coverage_rate_before=sol.covered_before_population / total if total > 0 else np.nan,
            coverage_rate_after=sol.covered_after_population / total if total > 0 else np.nan,
            optimal=bool(sol.optimal),
            gap=float(sol.gap),
            status=sol.status,
            curve=tuple((int(k), v / total if total > 0 else np.nan) for k, v in sol.curve),
            unreachable_population=float(sol.unreachable_population),
        )
        timings[f"optimize_{kind}"] = time.perf_counter() - t

    targets_table, target_units = pd.DataFrame(), pd.DataFrame()
    if opts.targets:
        t = time.perf_counter()
        step(f"checking {len(opts.targets)} planning targets")
        targets_table, target_units = _targets(
            net, inputs, opts, res_snap, street, community, minutes, zones_by_kind, specs
        )
        timings["targets"] = time.perf_counter() - t
    areas = _areas_table(inputs, hex_gdf, metrics, kinds, specs)
    result = StudyResult(
        title=title,
        specs={k: specs[k] for k in kinds},
        facilities=_gdf(
            fac_frames,
            [
                "facility_id",
                "kind",
                "name",
                "capacity",
                "snapped",
                "access_m",
                "demand_load",
                "load_ratio",
            ],
        ),
        residents=out,
        service_areas=_to_gdf_rows(net, sa_rows, ["kind", "minutes", "facility_id"]),
        gaps=_to_gdf_rows(
            net,
            gap_rows,
            [
                "kind",
                "gap_id",
                "uncovered_population",
                "residents",
                "area",
                "area_km2",
                "nearest_facility",
                "nearest_facility_minutes",
            ],
        ),
        areas=areas,
        metrics=metrics,
        equity=equity,
        suggestions=_gdf_ll(
            sugg_rows,
            ["kind", "rank", "site_id", "name", "model", "added_population", "coverage_rate_after"],
        ),
        suggestion_runs=runs,
        metrics_after=pd.concat(scenario_parts, ignore_index=True)
        if scenario_parts
        else pd.DataFrame(columns=metrics.columns),
        targets=targets_table,
        target_units=target_units,
        synthetic=synthetic,
        sources=sources,
        checks=checks,
        streets=_streets_frame(net, street_minutes),
        extra={
            "timings_s": timings,
            "completeness": completeness,
            "access": access_notes,
            "network": net.report,
        },
    )
    timings["total"] = time.perf_counter() - t0
    step(f"analysis done in {timings['total']:.1f} s")
    return result


def _edge_midpoint_m(net: WalkNetwork, near: Any, sources: Snapped) -> np.ndarray:
    """Walking metres from the nearest facility to the middle of every street (for drawing).

    From the node distances of the one routing pass; a facility on the street itself is counted
    along that street, so the street it stands on is not drawn as far away.
    """
    node_m = near.node_m if near.node_m is not None else np.full(net.n_nodes, np.inf)
    half = net.edge_length_m / 2.0
    mid = np.minimum(node_m[net.edge_u], node_m[net.edge_v]) + half
    ok = ~sources.unsnapped
    if ok.any():
        e = sources.edge[ok]
        np.minimum.at(mid, e, sources.access_m[ok] + np.abs(half[e] - sources.offset_m[ok]))
    return mid


def _streets_frame(net: WalkNetwork, street_minutes: Mapping[str, np.ndarray]) -> gpd.GeoDataFrame:
    """Every walkable street in WGS84 with each layer's minutes at its middle (map layer)."""
    geoms = shapely.simplify(net.edge_geometries(), 1.0)
    frame = pd.DataFrame({f"minutes_{k}": v for k, v in street_minutes.items()})
    return gpd.GeoDataFrame(frame, geometry=_to_wgs84(net, geoms), crs=4326)


def _area_checks(inputs: StudyInputs, street: np.ndarray, *, max_snap_m: float) -> DataChecks:
    """Residents inside no 街道 polygon count in the district only: say how many, loudly."""
    if inputs.streets is None:
        return DataChecks(max_snap_m=max_snap_m)
    overlaps = tuple(
        (str(a), str(b), float(share))
        for areas in (inputs.streets, inputs.communities)
        if areas is not None
        for a, b, share in areas.attrs.get("overlaps", ())
    )
    outside = street == ""
    pop = float(inputs.residents["population"].to_numpy(dtype=float)[outside].sum())
    if outside.any():
        log.warning(
            "%d resident units (population %.0f) lie inside no 街道 polygon: they count in the "
            "district figures but in no 街道 row",
            int(outside.sum()),
            pop,
        )
    return DataChecks(
        max_snap_m=max_snap_m,
        residents_outside_areas=int(outside.sum()),
        population_outside_areas=pop,
        area_overlaps=overlaps,
    )


def _layer_metrics(
    inputs: StudyInputs,
    spec: LayerSpec,
    mins: np.ndarray,
    weight: np.ndarray,
    unsnapped: np.ndarray,
    street: np.ndarray,
    community: np.ndarray,
    hex_cells: np.ndarray | None,
) -> list[pd.DataFrame]:
    """Metrics of one layer at the district, 街道 and 社区 levels (or H3 cells without areas)."""
    common: dict[str, Any] = {
        "thresholds_min": spec.thresholds_min,
        "unsnapped": unsnapped,
        "kind": spec.kind,
        "target_group": spec.target_group,
    }
    if inputs.streets is None:
        return [coverage_metrics(mins, weight, area=hex_cells, level="hex", **common)]
    parts = [
        coverage_metrics(
            mins,
            weight,
            area=street,
            area_names=list(inputs.streets["area"]),
            level="street",
            **common,
        )
    ]
    if inputs.communities is not None:
        parts.append(
            coverage_metrics(
                mins,
                weight,
                area=community,
                area_names=list(inputs.communities["area"]),
                level="community",
                include_district=False,
                **common,
            )
        )
    return parts


def _candidates(
    net: WalkNetwork,
    inputs: StudyInputs,
    zones: GapZones,
    spec: LayerSpec,
    opts: AnalysisOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate sites: the user's layer, else street nodes inside this layer's gap zones."""
    if inputs.candidates is not None and len(inputs.candidates):
        c = inputs.candidates
        cap = c["capacity"].to_numpy(dtype=float) if "capacity" in c else np.full(len(c), np.nan)
        return (
            _points_xy(net, c),
            c["site_id"].astype(str).to_numpy(),
            c["name"].astype(str).to_numpy(),
            np.where(np.isfinite(cap), cap, np.inf),
        )
    xy = candidates_in_gaps(net, zones, spacing_m=opts.candidate_spacing_m)
    ids = np.array([f"{spec.kind}-cand-{i + 1:04d}" for i in range(len(xy))], dtype=object)
    return xy, ids, ids.copy(), np.full(len(xy), np.inf)


def _targets(
    net: WalkNetwork,
    inputs: StudyInputs,
    opts: AnalysisOptions,
    res_snap: Snapped,
    street: np.ndarray,
    community: np.ndarray,
    minutes: Mapping[str, np.ndarray],
    zones_by_kind: Mapping[str, GapZones],
    specs: Mapping[str, LayerSpec],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate the planning targets and what meeting each layer's coverage targets takes."""
    if inputs.streets is None:
        msg = "planning targets need 街道 areas"
        raise InputError(msg, fix="pass --areas (and --communities for 社区 targets)")
    needs_comm = any(
        t.scope == "community" or t.measure == "communities_all_within" for t in opts.targets
    )
    if needs_comm and inputs.communities is None:
        msg = "a target is about 社区 but no communities were given"
        raise InputError(msg, fix="pass --communities FILE (社区 polygons with their 街道)")
    street_names = [str(a) for a in inputs.streets["area"]]
    comm_names = [] if inputs.communities is None else [str(a) for a in inputs.communities["area"]]
    parent = (
        {}
        if inputs.communities is None
        else dict(
            zip(
                inputs.communities["area"].astype(str),
                inputs.communities["parent"].astype(str),
                strict=True,
            )
        )
    )
    per_layer: dict[str, TargetInputs] = {}
    what: dict[str, Any] = {}
    for kind in sorted({t.layer for t in opts.targets}):
        spec = specs[kind]
        fac = inputs.facilities[kind]
        fac_ll = gpd.GeoSeries(fac.geometry.to_numpy(), crs=4326)
        layer_targets = [t for t in opts.targets if t.layer == kind]
        horizon_min = max([t.minutes or spec.headline_min for t in layer_targets])
        cand_xy, _, _, _ = _candidates(net, inputs, zones_by_kind[kind], spec, opts)
        pairs = pd.DataFrame({"source": [], "target": [], "distance_m": []})
        if len(cand_xy):
            csn = snap_points(net, cand_xy, max_snap_m=opts.max_snap_m)
            pairs = reachable_pairs(
                net, csn, res_snap, cutoff_m=horizon_min * spec.metres_per_minute
            )
        cand_ll = gpd.GeoSeries(_to_wgs84(net, shapely.points(cand_xy)), crs=4326)
        d = TargetInputs(
            minutes=np.where(res_snap.unsnapped, np.inf, minutes[kind]),
            weight=_target_weight(inputs.residents, spec),
            street=street,
            community=community,
            community_street=parent,
            facility_street=_assign(fac_ll, inputs.streets),
            facility_community=_assign(fac_ll, inputs.communities),
            headline_min=spec.headline_min,
            pair_resident=pairs["target"].to_numpy(dtype=np.int64),
            pair_candidate=pairs["source"].to_numpy(dtype=np.int64),
            pair_minutes=pairs["distance_m"].to_numpy(dtype=float) / spec.metres_per_minute,
            n_candidates=len(cand_xy),
            candidate_street=_assign(cand_ll, inputs.streets),
            candidate_community=_assign(cand_ll, inputs.communities),
        )
        per_layer[kind] = d
        what[kind] = sites_needed(
            layer_targets,
            d,
            streets=street_names,
            communities=comm_names,
            time_limit_s=opts.time_limit_s,
        )
    table, units = evaluate_targets(
        opts.targets, per_layer, streets=street_names, communities=comm_names
    )
    for i, t in enumerate(opts.targets):
        if t.measure == "facility_count":
            table.loc[i, "sites_needed"] = table.loc[i, "shortfall_sites"]
            continue
        w = what[t.layer]
        reasons = [r for r in w.unreachable if f"「{t.label}」" in r]
        table.loc[i, "reason"] = "; ".join(reasons)
        table.loc[i, "sites_needed"] = np.nan if reasons else float(len(w.sites))
    return table, units


def _gdf(frames: list[gpd.GeoDataFrame], columns: list[str]) -> gpd.GeoDataFrame:
    if not frames:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=4326)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)


def _to_gdf_rows(
    net: WalkNetwork, rows: list[dict[str, Any]], columns: list[str]
) -> gpd.GeoDataFrame:
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=4326)
    geoms = _to_wgs84(net, np.array([r.pop("geometry") for r in rows], dtype=object))
    return gpd.GeoDataFrame(pd.DataFrame(rows)[columns], geometry=geoms, crs=4326)


def _gdf_ll(rows: list[dict[str, Any]], columns: list[str]) -> gpd.GeoDataFrame:
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=4326)
    geoms = [r.pop("geometry") for r in rows]
    return gpd.GeoDataFrame(pd.DataFrame(rows)[columns], geometry=geoms, crs=4326)


def _areas_table(
    inputs: StudyInputs,
    hex_gdf: gpd.GeoDataFrame | None,
    metrics: pd.DataFrame,
    kinds: list[str],
    specs: Mapping[str, LayerSpec],
) -> gpd.GeoDataFrame:
    """Area polygons with each layer's headline coverage and target population."""
    parts = []
    if inputs.streets is not None:
        s = inputs.streets[["area", "geometry"]].copy()
        s["level"], s["parent"] = "street", ""
        parts.append(s)
        if inputs.communities is not None:
            c = inputs.communities[["area", "parent", "geometry"]].copy()
            c["level"] = "community"
            parts.append(c)
    elif hex_gdf is not None:
        parts.append(hex_gdf[["area", "level", "parent", "geometry"]])
    if not parts:
        return gpd.GeoDataFrame({"area": [], "level": [], "parent": []}, geometry=[], crs=4326)
    areas = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)
    areas = areas[["area", "level", "parent", "geometry"]]
    for kind in kinds:
        m = metrics[
            (metrics["kind"] == kind)
            & (metrics["minutes"] == specs[kind].headline_min)
            & (metrics["level"] != "district")
        ]
        key = m.set_index(["level", "area"])
        idx = pd.MultiIndex.from_arrays([areas["level"], areas["area"]])
        areas[f"coverage_{kind}"] = key["coverage_rate"].reindex(idx).to_numpy()
        areas[f"population_{kind}"] = key["population"].reindex(idx).to_numpy()
    return areas

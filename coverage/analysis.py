"""The whole analysis as a short composition of named stages.

    inputs -> snap -> route -> measure -> gaps -> suggest -> targets -> result

The network stage happens before (``geo.load``): :func:`analyse` takes the built network.  Each
facility layer is routed ONCE (:mod:`coverage.state`); metrics, gap zones, equity,
completeness, suggestions and targets are all read from that state, and suggestions and targets
share one candidate set and its reachable pairs.  Polygons are drawn for people to look at and
never feed a number.
"""

from __future__ import annotations

import functools
import logging
import os
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage.access2sfca import gaussian_2sfca
from coverage.equity import equity_table
from coverage.gaps import GapZones, candidates_in_gaps, find_gaps
from coverage.metrics import (
    area_codes,
    completeness_table,
    coverage_metrics,
    is_covered,
    layers_covered,
)
from coverage.optimize import CoverageProblem, Method, Model, Solution, solve
from coverage.progress import Progress, count
from coverage.result import DataChecks, StudyResult, SuggestionRun
from coverage.schema import (
    FACILITY_COLUMNS,
    GAP_COLUMNS,
    SERVICE_AREA_COLUMNS,
    SUGGESTION_COLUMNS,
)
from coverage.state import (
    CandidateSet,
    LayerState,
    ResidentState,
    assign_areas,
    candidate_set,
    layer_horizon_m,
    points_xy,
    route_layer,
    snap_residents,
)
from coverage.targets import Target, TargetInputs, evaluate_targets, sites_needed
from geo.network import WalkNetwork
from geo.routing import Nearest, reachable_pairs
from geo.service_area import service_areas
from geo.snap import MAX_SNAP_M, Snapped, nearest_street_names
from layers.errors import InputError
from layers.osm.facilities import is_osm_proxy
from layers.spec import LayerSpec

log = logging.getLogger(__name__)

#: Said in every output's sources when a layer comes from OSM tags (translated in maps/).
PROXY_SOURCE_LINE = "Facility layers from OpenStreetMap tags (proxies, see data/osm_tags.toml)"


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


class _Clock:
    """Stage timings and progress lines (the CLI shows them; logging gets them too)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.t0 = time.perf_counter()

    def step(self, text: str) -> None:
        log.info(text)
        if self.progress is not None:
            self.progress(text)

    def count(self, stage: str, done: int, total: int) -> None:
        """Items of a stage done so far (a bar on a terminal)."""
        count(self.progress, stage, done, total)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t


# -------------------------------------------------------------------------------- the stages


def check_inputs(inputs: StudyInputs, opts: AnalysisOptions) -> list[str]:
    """The inputs stage: the layers to analyse, in table order; a mistake is one line."""
    kinds = [k for k in inputs.specs if k in inputs.facilities]
    unknown = [k for k in opts.suggest if k not in kinds]
    if unknown:
        msg = f"cannot suggest sites for '{unknown[0]}': no such facility layer"
        raise InputError(msg, fix=f"use one of {', '.join(kinds)}")
    for kind in kinds:
        group = inputs.specs[kind].target_group
        if group not in inputs.residents.columns:
            msg = f"layer '{kind}' serves '{group}' but the residents have no such column"
            raise InputError(
                msg, column=group, fix=f"add a '{group}' column to the residents or map it"
            )
    if opts.targets and inputs.streets is None:
        msg = "planning targets need 街道 areas"
        raise InputError(msg, fix="pass --areas (and --communities for 社区 targets)")
    needs_comm = any(
        t.scope == "community" or t.measure == "communities_all_within" for t in opts.targets
    )
    if needs_comm and inputs.communities is None:
        msg = "a target is about 社区 but no communities were given"
        raise InputError(msg, fix="pass --communities FILE (社区 polygons with their 街道)")
    return kinds


def measure_layer(
    layer: LayerState, residents: ResidentState, inputs: StudyInputs, minutes: np.ndarray
) -> pd.DataFrame:
    """The measure stage of one layer: district, 街道 and 社区 rows (H3 cells without 街道).

    ``minutes`` is the layer's minutes or, for a scenario, the minutes after new sites.
    """
    spec = layer.spec
    common: dict[str, Any] = {
        "thresholds_min": spec.thresholds_min,
        "unsnapped": residents.unsnapped,
        "kind": spec.kind,
        "target_group": spec.target_group,
    }
    if inputs.streets is None:
        return coverage_metrics(
            minutes, layer.weight, area=residents.hex_cells, level="hex", **common
        )
    parts = [
        coverage_metrics(
            minutes,
            layer.weight,
            area=residents.street,
            area_names=list(inputs.streets["area"]),
            level="street",
            **common,
        )
    ]
    if inputs.communities is not None:
        parts.append(
            coverage_metrics(
                minutes,
                layer.weight,
                area=residents.community,
                area_names=list(inputs.communities["area"]),
                level="community",
                include_district=False,
                **common,
            )
        )
    return pd.concat(parts, ignore_index=True)


def layer_gaps(
    net: WalkNetwork, residents: ResidentState, layer: LayerState, *, outlines: bool = True
) -> GapZones:
    """The gaps stage of one layer: uncovered residents grouped by the unserved streets.

    ``outlines=False`` gives the same zones without their polygons (numbers only).
    """
    spec = layer.spec
    return find_gaps(
        net,
        residents.snap,
        residents.xy,
        ~is_covered(layer.minutes, spec.headline_min),
        layer.weight,
        layer.near,
        spec.headline_min * spec.metres_per_minute,
        outlines=outlines,
    )


def layer_candidates(
    net: WalkNetwork,
    inputs: StudyInputs,
    residents: ResidentState,
    layer: LayerState,
    zones: GapZones,
    *,
    horizon_m: float,
    opts: AnalysisOptions,
) -> CandidateSet:
    """Possible new sites of a layer (the user's, else street corners in its gap zones).

    Generated corners are named after the nearest street, so a planner reads "延安路附近候选点"
    rather than an id.
    """
    if inputs.candidates is not None and len(inputs.candidates):
        c = inputs.candidates
        cap = c["capacity"].to_numpy(dtype=float) if "capacity" in c else np.full(len(c), np.nan)
        xy = points_xy(net, c)
        ids = c["site_id"].astype(str).to_numpy()
        names = c["name"].astype(str).to_numpy()
        capacity = np.where(np.isfinite(cap), cap, np.inf)
    else:
        xy = candidates_in_gaps(net, zones, spacing_m=opts.candidate_spacing_m)
        kind = layer.kind
        ids = np.array([f"{kind}-cand-{i + 1:04d}" for i in range(len(xy))], dtype=object)
        street = nearest_street_names(net, xy) if len(xy) else np.array([], dtype=object)
        names = np.array(
            [f"{s}附近候选点" if s else i for s, i in zip(street, ids, strict=True)], dtype=object
        )
        capacity = np.full(len(xy), np.inf)
    return candidate_set(
        net,
        residents,
        xy,
        ids=ids,
        names=names,
        capacity=capacity,
        horizon_m=horizon_m,
        max_snap_m=opts.max_snap_m,
    )


@dataclass(frozen=True)
class Suggested:
    """The suggest stage's output for one layer."""

    run: SuggestionRun
    rows: list[dict[str, Any]]
    minutes_after: np.ndarray


def _say_incumbent(clock: _Clock, label: str, sol: Solution) -> None:
    """The first answer of a suggestion, said before the exact solver proves it."""
    if sol.model == "lscp" or sol.optimal or not len(sol.selected):
        return  # proven already: the answer is the final one, said with the result
    what = "people more within reach" if sol.model != "pmedian" else "person-minutes"
    bound = "" if not np.isfinite(sol.bound) else f", best possible {sol.bound:,.0f}"
    clock.step(
        f"{label}: first answer {sol.objective:,.0f} {what} with {len(sol.selected)} sites"
        f"{bound} ({sol.method}{', optimal' if sol.optimal else ''})"
    )


def suggest_sites(
    net: WalkNetwork,
    inputs: StudyInputs,
    residents: ResidentState,
    layer: LayerState,
    cands: CandidateSet,
    *,
    p: int,
    opts: AnalysisOptions,
    on_incumbent: Callable[[Solution], None] | None = None,
) -> Suggested:
    """The suggest stage of one layer: the model on the candidates' pairs within its horizon.

    ``on_incumbent`` gets the heuristic's answer and its proven bound as soon as they exist
    (in well under a second on a city), before the exact solver proves optimality.
    """
    spec = layer.spec
    horizon = spec.cutoff_m
    pr, pc, pm = cands.pairs_within(horizon)
    problem = CoverageProblem.from_pairs(
        layer.weight,
        pr,
        pc,
        pm / spec.metres_per_minute,
        threshold_min=spec.headline_min,
        n_candidates=len(cands),
        cutoff_min=horizon / spec.metres_per_minute,
        minutes_before=np.where(residents.unsnapped, np.inf, layer.minutes),
        candidate_capacity=cands.capacity if opts.model == "capacitated" else None,
        demand_area=np.asarray(residents.area).astype(str),
    )
    sol = solve(
        problem,
        opts.model,
        p=None if opts.model == "lscp" else int(p),
        method=opts.method,
        time_limit_s=opts.time_limit_s,
        on_incumbent=on_incumbent,
    )
    total = float(layer.weight.sum())
    chosen = np.asarray(sol.selected, dtype=np.int64)
    chosen_xy = cands.xy[chosen] if len(chosen) else np.zeros((0, 2))
    cand_ll = _to_wgs84(net, shapely.points(chosen_xy)) if len(chosen) else np.array([])
    ll = gpd.GeoSeries(cand_ll, crs=4326)
    street = nearest_street_names(net, chosen_xy) if len(chosen) else np.array([])
    area = assign_areas(ll, inputs.streets)
    community = assign_areas(ll, inputs.communities)
    rows = []
    cum = sol.covered_before_population
    for rank, (j, added) in enumerate(zip(chosen, sol.added_population, strict=True), start=1):
        cum += float(added)
        k = rank - 1
        rows.append(
            {
                "kind": spec.kind,
                "rank": rank,
                "site_id": str(cands.ids[j]),
                "name": str(cands.names[j]),
                "street": str(street[k]),
                "area": str(area[k]),
                "community": str(community[k]),
                "model": opts.model,
                "added_population": float(added),
                "coverage_rate_after": cum / total if total > 0 else np.nan,
                "geometry": cand_ll[k],
            }
        )
    run = SuggestionRun(
        kind=spec.kind,
        model=opts.model,
        coverage_rate_before=sol.covered_before_population / total if total > 0 else np.nan,
        coverage_rate_after=sol.covered_after_population / total if total > 0 else np.nan,
        optimal=bool(sol.optimal),
        gap=float(sol.gap),
        status=sol.status,
        curve=tuple((int(k), v / total if total > 0 else np.nan) for k, v in sol.curve),
        unreachable_population=float(sol.unreachable_population),
        per_area=sol.per_area,
    )
    return Suggested(run, rows, np.minimum(layer.minutes, sol.minutes_after))


def check_targets(
    net: WalkNetwork,
    inputs: StudyInputs,
    residents: ResidentState,
    layers: Mapping[str, LayerState],
    candidates: Mapping[str, CandidateSet],
    targets: tuple[Target, ...],
    *,
    time_limit_s: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The targets stage: each target met or not, and the fewest sites meeting a layer's targets.

    Reads the same candidate pairs as the suggestions (routed once to the layer's horizon).
    """
    assert inputs.streets is not None  # checked by check_inputs
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
    for kind in sorted({t.layer for t in targets}):
        layer = layers[kind]
        spec = layer.spec
        fac_ll = gpd.GeoSeries(layer.facilities.geometry.to_numpy(), crs=4326)
        cands = candidates[kind]
        pr, pc, pm = cands.pairs_within(cands.horizon_m)
        cand_ll = gpd.GeoSeries(_to_wgs84(net, shapely.points(cands.xy)), crs=4326)
        d = TargetInputs(
            minutes=np.where(residents.unsnapped, np.inf, layer.minutes),
            weight=layer.weight,
            street=residents.street,
            community=residents.community,
            community_street=parent,
            facility_street=assign_areas(fac_ll, inputs.streets),
            facility_community=assign_areas(fac_ll, inputs.communities),
            headline_min=spec.headline_min,
            pair_resident=pr,
            pair_candidate=pc,
            pair_minutes=pm / spec.metres_per_minute,
            n_candidates=len(cands),
            candidate_street=assign_areas(cand_ll, inputs.streets),
            candidate_community=assign_areas(cand_ll, inputs.communities),
        )
        per_layer[kind] = d
        ids = [i for i, t in enumerate(targets) if t.layer == kind]
        what[kind] = sites_needed(
            [targets[i] for i in ids],
            d,
            streets=street_names,
            communities=comm_names,
            time_limit_s=time_limit_s,
            target_ids=ids,
        )
    table, units = evaluate_targets(
        targets, per_layer, streets=street_names, communities=comm_names
    )
    for i, t in enumerate(targets):
        if t.measure == "facility_count":
            table.loc[i, "sites_needed"] = table.loc[i, "shortfall_sites"]
            continue
        w = what[t.layer]
        reasons = w.reasons_for(i)  # by the target's index, never by its label
        table.loc[i, "reason_code"] = w.reason_code(i)
        table.loc[i, "reason"] = w.reason_json(i)  # coded, worded by maps.i18n
        table.loc[i, "sites_needed"] = np.nan if reasons else float(len(w.sites))
    return table, units


@dataclass(frozen=True)
class Routed:
    """The snap and route stages' output: every later stage reads only these states."""

    residents: ResidentState
    layers: Mapping[str, LayerState]


def route_study(
    net: WalkNetwork,
    inputs: StudyInputs,
    kinds: list[str],
    opts: AnalysisOptions,
    *,
    progress: Progress | None = None,
    timings: _Clock | None = None,
) -> Routed:
    """The snap and route stages: residents snapped once, each layer routed once."""
    clock = timings if timings is not None else _Clock(None)
    say = progress if progress is not None else log.info
    specs = {k: inputs.specs[k] for k in kinds}
    say(f"snapping {len(inputs.residents):,} resident units to the street network")
    with clock.stage("snap"):
        residents = snap_residents(
            net,
            inputs.residents,
            streets=inputs.streets,
            communities=inputs.communities,
            max_snap_m=opts.max_snap_m,
            hex_resolution=opts.hex_resolution,
        )
    if residents.unsnapped.all():
        msg = f"no resident lies within reach of the street network ({opts.max_snap_m:.0f} m)"
        raise InputError(
            msg, fix="check the residents' coordinate system (--coords) or the network extent"
        )

    layers: dict[str, LayerState] = {}
    for i, kind in enumerate(kinds):
        clock.count("routing layers", i, len(kinds))
        n_fac = len(inputs.facilities[kind])
        say(
            f"{specs[kind].label_en}: routing {len(residents.frame):,} residents to "
            f"{n_fac} facilities"
        )
        with clock.stage(f"route_{kind}"):
            layers[kind] = route_layer(
                net, residents, specs[kind], inputs.facilities[kind], max_snap_m=opts.max_snap_m
            )
    clock.count("routing layers", len(kinds), len(kinds))
    return Routed(residents, layers)


# ------------------------------------------------------------------------------- composition


def analyse(
    net: WalkNetwork,
    inputs: StudyInputs,
    *,
    title: str,
    options: AnalysisOptions | None = None,
    synthetic: bool = False,
    sources: tuple[str, ...] = (),
    progress: Progress | None = None,
    routed: Routed | None = None,
) -> StudyResult:
    """Run the coverage analysis (and optional site suggestions) for every facility layer.

    Parameters
    ----------
    net
        The walking network, covering the residents and facilities (plus the walking halo).
    inputs
        Residents, facility layers, areas and candidates in WGS84.
    title
        Study name for maps and reports.
    options
        Snapping limit, suggestions per kind, model, targets, etc.
    synthetic
        The demo district: every output says the data is synthetic.
    sources
        Data-source lines for the method section.
    progress
        Called with a short text at each step (the CLI shows it); logging gets it too.
    routed
        The snap and route stages done elsewhere (:mod:`coverage.distributed` runs them per
        partition on Dask); they must equal what :func:`route_study` returns for these inputs.
    """
    opts = options or AnalysisOptions()
    clock = _Clock(progress)
    kinds = check_inputs(inputs, opts)
    specs = {k: inputs.specs[k] for k in kinds}

    if routed is None:
        routed = route_study(net, inputs, kinds, opts, progress=clock.step, timings=clock)
    residents, layers = routed.residents, dict(routed.layers)
    missing = [k for k in kinds if k not in layers]
    if missing:
        msg = f"the routed study has no layer '{missing[0]}'"
        raise ValueError(msg)

    with clock.stage("measure"):
        metrics = pd.concat(
            [measure_layer(layers[k], residents, inputs, layers[k].minutes) for k in kinds],
            ignore_index=True,
        )

    def drawn(kind: str) -> tuple[list[dict[str, Any]], GapZones]:
        with clock.stage(f"service_areas_{kind}"):
            rows = _service_area_rows(net, layers[kind], opts)
        with clock.stage(f"gaps_{kind}"):
            return rows, layer_gaps(net, residents, layers[kind])

    # the layers' service areas and gap zones are independent: one thread per core, since
    # their rasters, filters and contours spend most of their time outside the GIL (a 1M
    # city on 2 cores: 7.2 -> 5.1 s); results are taken in layer order, so nothing changes
    zones: dict[str, GapZones] = {}
    sa_rows: list[dict[str, Any]] = []
    for kind in kinds:
        clock.step(f"{specs[kind].label_en}: service areas and gap zones")
    workers = min(len(kinds), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        for i, (kind, (rows, z)) in enumerate(zip(kinds, pool.map(drawn, kinds), strict=True)):
            clock.count("service areas and gap zones", i + 1, len(kinds))
            sa_rows += rows
            zones[kind] = z

    loads: dict[str, Any] = {}
    for kind in kinds:
        with clock.stage(f"2sfca_{kind}"):
            loads[kind] = access(net, residents, layers[kind])

    # one candidate set per layer that needs one, routed once to the layer's horizon
    target_minutes: dict[str, list[float | None]] = {}
    for t in opts.targets:
        target_minutes.setdefault(t.layer, []).append(t.minutes)
    to_suggest = {k: p for k, p in opts.suggest.items() if p > 0 or opts.model == "lscp"}
    wanted = [k for k in kinds if k in to_suggest or k in target_minutes]
    candidates: dict[str, CandidateSet] = {}
    for kind in wanted:
        with clock.stage(f"candidates_{kind}"):
            candidates[kind] = layer_candidates(
                net,
                inputs,
                residents,
                layers[kind],
                zones[kind],
                horizon_m=layer_horizon_m(specs[kind], target_minutes.get(kind, ())),
                opts=opts,
            )

    suggested: dict[str, Suggested] = {}
    for kind, p in to_suggest.items():
        if len(candidates[kind]) == 0:
            log.warning("%s: no candidate sites (no gaps, or no candidates given)", kind)
            continue
        if opts.model != "lscp" and p > len(candidates[kind]):
            where = "given" if inputs.candidates is not None else "found in the gap zones"
            msg = (
                f"--suggest {kind}={p} asks for {p} new sites but only "
                f"{len(candidates[kind])} candidate sites were {where}"
            )
            raise InputError(
                msg,
                fix=f"ask for at most {len(candidates[kind])} (--suggest "
                f"{kind}={len(candidates[kind])}) or give --candidates FILE",
            )
        clock.step(f"{specs[kind].label_en}: choosing {p} new sites ({opts.model})")
        with clock.stage(f"optimize_{kind}"):
            suggested[kind] = suggest_sites(
                net,
                inputs,
                residents,
                layers[kind],
                candidates[kind],
                p=p,
                opts=opts,
                on_incumbent=functools.partial(_say_incumbent, clock, specs[kind].label_en),
            )

    targets_table, target_units = pd.DataFrame(), pd.DataFrame()
    if opts.targets:
        clock.step(f"checking {len(opts.targets)} planning targets")
        with clock.stage("targets"):
            targets_table, target_units = check_targets(
                net,
                inputs,
                residents,
                layers,
                candidates,
                opts.targets,
                time_limit_s=opts.time_limit_s,
            )

    t_result = time.perf_counter()
    result = assemble(
        net,
        inputs,
        residents,
        layers,
        metrics=metrics,
        zones=zones,
        sa_rows=sa_rows,
        loads=loads,
        suggested=suggested,
        targets=(targets_table, target_units),
        timings_s=clock.timings,
        opts=opts,
        title=title,
        synthetic=synthetic,
        sources=sources,
    )
    result_s = time.perf_counter() - t_result
    total = time.perf_counter() - clock.t0
    clock.step(f"analysis done in {total:.1f} s")
    return replace(result, timings_s={**result.timings_s, "result": result_s, "total": total})


# ---------------------------------------------------------------------------------- assembly


def _service_area_rows(
    net: WalkNetwork, layer: LayerState, opts: AnalysisOptions
) -> list[dict[str, Any]]:
    spec = layer.spec
    cut = [m * spec.metres_per_minute for m in spec.thresholds_min]
    sa = service_areas(net, layer.snap, cut, per_source=opts.per_facility_areas)
    return [
        {
            "kind": spec.kind,
            "minutes": float(round(cut_m / spec.metres_per_minute, 6)),
            "facility_id": "" if src_i < 0 else str(layer.ids[src_i]),
            "geometry": geom,
        }
        for src_i, cut_m, geom in zip(sa["source"], sa["cutoff_m"], sa.geometry, strict=True)
    ]


def access(net: WalkNetwork, residents: ResidentState, layer: LayerState) -> Any:
    """Gaussian 2SFCA when the layer has capacities (loads go onto the facilities table)."""
    fac = layer.facilities
    cap = fac["capacity"].to_numpy(dtype=float) if len(fac) else np.array([])
    if not (len(cap) and np.isfinite(cap).any()):
        return None
    spec = layer.spec
    pairs = reachable_pairs(
        net, layer.snap, residents.snap, cutoff_m=spec.headline_min * spec.metres_per_minute
    )
    acc = gaussian_2sfca(
        pairs["target"].to_numpy(),
        pairs["source"].to_numpy(),
        pairs["distance_m"].to_numpy() / spec.metres_per_minute,
        layer.weight,
        cap,
        catchment_min=spec.headline_min,
    )
    if acc.excluded.size:
        log.warning(
            "%s: %d facilities have no capacity and are left out of the 2SFCA scores: %s",
            spec.kind,
            acc.excluded.size,
            ", ".join(str(fac["name"].iloc[j]) for j in acc.excluded[:10]),
        )
    return acc


#: Per-state tables kept while the state lives: a what-if edit rebuilds its own layer's only.
_LAYER_FRAMES: weakref.WeakKeyDictionary[LayerState, tuple[Any, dict[str, np.ndarray]]] = (
    weakref.WeakKeyDictionary()
)
_AREA_BASE: weakref.WeakKeyDictionary[ResidentState, gpd.GeoDataFrame] = weakref.WeakKeyDictionary()


def _facility_columns(layer: LayerState, acc: Any) -> dict[str, np.ndarray]:
    """One layer's rows of the facilities table as column arrays (kept per layer state)."""
    hit = _LAYER_FRAMES.get(layer)
    if hit is not None and hit[0] is acc:
        return hit[1]
    fac = layer.facilities
    n = len(fac)
    cols: dict[str, np.ndarray] = {
        c: fac[c].to_numpy() for c in ("facility_id", "kind", "name", "capacity")
    }
    cols["snapped"] = ~layer.snap.unsnapped
    cols["access_m"] = layer.snap.access_m
    cols["demand_load"] = acc.load if acc is not None else np.full(n, np.nan)
    cols["load_ratio"] = acc.load_ratio if acc is not None else np.full(n, np.nan)
    cols["geometry"] = np.asarray(fac.geometry.values)
    _LAYER_FRAMES[layer] = (acc, cols)
    return cols


def _facilities_frame(
    layers: Mapping[str, LayerState], loads: Mapping[str, Any]
) -> gpd.GeoDataFrame:
    """Every layer's facilities, joined column by column.

    Not pandas' concat of GeoDataFrames: that costs milliseconds every studio edit would pay.
    Layers without facilities add no rows (and never turn a numeric column into objects).
    """
    parts = [_facility_columns(layer, loads.get(kind)) for kind, layer in layers.items()]
    names = [*FACILITY_COLUMNS, "geometry"]
    parts = [p for p in parts if len(p["geometry"])] or parts[:1]
    if not parts:
        return _empty(FACILITY_COLUMNS)
    cols = {c: np.concatenate([p[c] for p in parts]) for c in names}
    geoms = cols.pop("geometry")
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=4326)


_RESIDENT_BASE: weakref.WeakKeyDictionary[ResidentState, dict[bool, gpd.GeoDataFrame]] = (
    weakref.WeakKeyDictionary()
)
_LAYER_COLUMNS: weakref.WeakKeyDictionary[LayerState, tuple[Any, dict[str, pd.Series]]] = (
    weakref.WeakKeyDictionary()
)


def _resident_base(residents: ResidentState, has_streets: bool) -> gpd.GeoDataFrame:
    """The columns of the residents table that no facility changes (built once per state)."""
    by = _RESIDENT_BASE.setdefault(residents, {})
    hit = by.get(has_streets)
    if hit is None:
        r = residents.frame
        hit = gpd.GeoDataFrame(
            r.drop(columns=r.geometry.name).copy(), geometry=residents.points_ll.values, crs=4326
        )
        hit["area"] = residents.street if has_streets else residents.hex_cells
        hit["community"] = residents.community
        hit["snapped"] = ~residents.unsnapped
        by[has_streets] = hit
    return hit


def _layer_columns(layer: LayerState, zones: GapZones, index: pd.Index) -> dict[str, pd.Series]:
    """One layer's columns of the residents table (kept while the layer state lives).

    Kept as pandas columns, so the text of the facility ids is converted to pandas' string
    type once per layer state, not on every studio edit of another layer.
    """
    hit = _LAYER_COLUMNS.get(layer)
    if hit is not None and hit[0] is zones and hit[1][f"gap_{layer.kind}"].index is index:
        return hit[1]
    kind = layer.kind
    cols = {
        f"minutes_{kind}": layer.minutes,
        f"facility_{kind}": layer.nearest_facility_ids(),
        f"covered_{kind}": is_covered(layer.minutes, layer.spec.headline_min),
        f"gap_{kind}": np.asarray(zones.label),
    }
    series = {c: pd.Series(v, index=index, name=c, copy=False) for c, v in cols.items()}
    _LAYER_COLUMNS[layer] = (zones, series)
    return series


def _residents_frame(
    residents: ResidentState,
    layers: Mapping[str, LayerState],
    zones: Mapping[str, GapZones],
    loads: Mapping[str, Any],
    suggested: Mapping[str, Suggested],
    has_streets: bool,
    covered_layers: np.ndarray,
) -> gpd.GeoDataFrame:
    """The per-unit table: the unchanging base plus each layer's columns, joined once.

    Column order: the base, then per layer minutes/facility/covered, then the gap labels, the
    2SFCA scores, ``layers_covered`` and the minutes after suggestions.
    """
    base = _resident_base(residents, has_streets)
    per_layer = {k: _layer_columns(layer, zones[k], base.index) for k, layer in layers.items()}
    cols: dict[str, Any] = {}
    for kind, c in per_layer.items():
        for key in ("minutes", "facility", "covered"):
            cols[f"{key}_{kind}"] = c[f"{key}_{kind}"]
    for kind, c in per_layer.items():
        cols[f"gap_{kind}"] = c[f"gap_{kind}"]
    for kind, acc in loads.items():
        if acc is not None:
            cols[f"access_{kind}"] = acc.score
    cols["layers_covered"] = covered_layers
    for kind, s in suggested.items():
        cols[f"minutes_after_{kind}"] = s.minutes_after
    clash = [c for c in cols if c in base.columns]
    extra = pd.DataFrame(cols, index=base.index, copy=False)
    joined = pd.concat([base.drop(columns=clash), extra], axis=1, copy=False)
    return gpd.GeoDataFrame(joined, geometry=base.geometry.name, crs=4326)


def gap_frame(
    net: WalkNetwork, layer: LayerState, zones: GapZones, area: np.ndarray
) -> gpd.GeoDataFrame:
    """One layer's gap zones as rows of the ``gaps`` table (WGS84), worst first.

    A zone's ``area`` is the 街道 most of its residents live in (ties: the one met first),
    counted for all zones at once rather than one pandas count per zone.
    """
    spec = layer.spec
    n = len(zones.uncovered_population)
    if n == 0:
        return _empty(GAP_COLUMNS)
    sizes = np.array([len(m) for m in zones.members], dtype=np.int64)
    members = np.concatenate([np.asarray(m, dtype=np.int64) for m in zones.members])
    zone = np.repeat(np.arange(n), sizes)
    code, found = area_codes(area)
    names = np.asarray(found, dtype=object)
    c = code[members]
    keep = c >= 0  # units outside every area never decide a zone's area
    zone, c, pos = zone[keep], c[keep], np.flatnonzero(keep)
    main = np.full(n, "", dtype=object)
    if len(zone):
        key = zone * len(names) + c
        uniq, first, count = np.unique(key, return_index=True, return_counts=True)
        # per zone: the most residents, then the one met first
        order = np.lexsort((pos[first], -count, uniq // len(names)))
        z = uniq[order] // len(names)
        head = np.ones(len(z), dtype=bool)
        head[1:] = z[1:] != z[:-1]
        main[z[head]] = names[(uniq[order] % len(names))[head]]
    nearest = np.asarray(zones.nearest_facility, dtype=np.int64)
    ids = layer.ids
    frame = pd.DataFrame(
        {
            "kind": spec.kind,
            "gap_id": np.arange(1, n + 1),
            "uncovered_population": np.asarray(zones.uncovered_population, dtype=float),
            "residents": np.asarray(zones.residents, dtype=np.int64),
            "area": main,
            "area_km2": np.asarray(zones.area_km2, dtype=float),
            "nearest_facility": np.where(
                nearest >= 0, ids[np.maximum(nearest, 0)] if len(ids) else "", ""
            ),
            "nearest_facility_minutes": np.asarray(zones.nearest_m, dtype=float)
            / spec.metres_per_minute,
        },
        columns=list(GAP_COLUMNS),
    )
    geoms = _to_wgs84(net, np.asarray(zones.geometry, dtype=object))
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=4326)


def assemble(
    net: WalkNetwork,
    inputs: StudyInputs,
    residents: ResidentState,
    layers: Mapping[str, LayerState],
    *,
    metrics: pd.DataFrame,
    zones: Mapping[str, GapZones],
    sa_rows: list[dict[str, Any]],
    gaps: Mapping[str, gpd.GeoDataFrame] | None = None,
    equity: pd.DataFrame | None = None,
    loads: Mapping[str, Any],
    suggested: Mapping[str, Suggested],
    targets: tuple[pd.DataFrame, pd.DataFrame],
    timings_s: Mapping[str, float] | None = None,
    drawing: bool = True,
    opts: AnalysisOptions,
    title: str,
    synthetic: bool,
    sources: tuple[str, ...],
) -> StudyResult:
    """The result stage: every table of the :class:`StudyResult`, built once, never changed.

    ``drawing=False`` leaves out what only a map draws (area polygons, street minutes, the
    residents' per-layer columns): every number of ``summary.json`` is still there (the
    studio's live edits).
    """
    has_streets = inputs.streets is not None
    headline = {k: s.spec.headline_min for k, s in layers.items()}
    covered_layers = layers_covered(
        {k: s.minutes for k, s in layers.items()}, headline, unsnapped=residents.unsnapped
    )
    if drawing:
        out = _residents_frame(
            residents, layers, zones, loads, suggested, has_streets, covered_layers
        )
    else:  # summary.json reads the units, their population and snapping only
        out = _resident_base(residents, has_streets).copy(deep=False)
    level = "street" if has_streets else "hex"
    area = out["area"].to_numpy()
    gap_frames = [
        gaps[k] if gaps is not None else gap_frame(net, layers[k], zones[k], area) for k in layers
    ]
    metrics_after = [
        measure_layer(layers[k], residents, inputs, s.minutes_after) for k, s in suggested.items()
    ]
    sugg_rows = [row for s in suggested.values() for row in s.rows]
    proxies = tuple(k for k, s in layers.items() if is_osm_proxy(s.facilities))
    if proxies:
        log.warning(
            "%s: facilities from OpenStreetMap tags (proxies), not real facility lists",
            ", ".join(proxies),
        )
        sources = (*sources, PROXY_SOURCE_LINE)
    checks = DataChecks(
        osm_proxy_layers=proxies,
        max_snap_m=opts.max_snap_m,
        network_warnings=tuple(net.report.warnings),
        footpath_share=net.report.footpath_share,
        **_area_checks(inputs, residents),
    )
    return StudyResult(
        title=title,
        specs={k: s.spec for k, s in layers.items()},
        facilities=_facilities_frame(layers, loads),
        residents=out,
        service_areas=_to_gdf_rows(net, sa_rows, list(SERVICE_AREA_COLUMNS)),
        gaps=_concat_frames(gap_frames, list(GAP_COLUMNS)),
        areas=_areas_table(inputs, residents, metrics, headline)
        if drawing
        else _empty(("area", "level", "parent")),
        metrics=metrics,
        equity=equity_table(metrics, headline_by_kind=headline, level=level)
        if equity is None
        else equity,
        suggestions=_gdf_ll(sugg_rows, list(SUGGESTION_COLUMNS)),
        suggestion_runs={k: s.run for k, s in suggested.items()},
        metrics_after=pd.concat(metrics_after, ignore_index=True)
        if metrics_after
        else pd.DataFrame(columns=metrics.columns),
        targets=targets[0],
        target_units=targets[1],
        synthetic=synthetic,
        sources=sources,
        checks=checks,
        streets=_streets_frame(net, layers) if drawing else None,
        completeness=completeness_table(
            covered_layers,
            residents.frame["population"].to_numpy(dtype=float),
            area=area,
            n_layers=len(layers),
            level=level,
        ),
        network=net.report,
        timings_s=dict(timings_s or {}),
    )


_AREA_CHECKS: weakref.WeakKeyDictionary[ResidentState, dict[str, Any]] = weakref.WeakKeyDictionary()


def _area_checks(inputs: StudyInputs, residents: ResidentState) -> dict[str, Any]:
    """Residents inside no 街道 polygon count in the district only: say how many, loudly.

    Said once per resident state (the areas and the residents never change with an edit).
    """
    if inputs.streets is None:
        return {}
    hit = _AREA_CHECKS.get(residents)
    if hit is None:
        hit = _AREA_CHECKS[residents] = _count_outside(inputs, residents)
    return hit


def _count_outside(inputs: StudyInputs, residents: ResidentState) -> dict[str, Any]:
    assert inputs.streets is not None  # checked by the caller
    overlaps = tuple(
        (str(a), str(b), float(share))
        for areas in (inputs.streets, inputs.communities)
        if areas is not None
        for a, b, share in areas.attrs.get("overlaps", ())
    )
    outside = residents.street == ""
    pop = float(residents.frame["population"].to_numpy(dtype=float)[outside].sum())
    if outside.any():
        log.warning(
            "%d resident units (population %.0f) lie inside no 街道 polygon: they count in the "
            "district figures but in no 街道 row",
            int(outside.sum()),
            pop,
        )
    return {
        "residents_outside_areas": int(outside.sum()),
        "population_outside_areas": pop,
        "area_overlaps": overlaps,
    }


def edge_midpoint_m(net: WalkNetwork, near: Nearest, sources: Snapped) -> np.ndarray:
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


def _streets_frame(net: WalkNetwork, layers: Mapping[str, LayerState]) -> gpd.GeoDataFrame:
    """Every walkable street in WGS84 with each layer's minutes at its middle (map layer)."""
    frame = pd.DataFrame(
        {
            f"minutes_{k}": edge_midpoint_m(net, s.near, s.snap) / s.spec.metres_per_minute
            for k, s in layers.items()
        }
    )
    return gpd.GeoDataFrame(frame, geometry=street_geometry_wgs84(net), crs=4326)


def _concat_frames(frames: list[gpd.GeoDataFrame], columns: list[str]) -> gpd.GeoDataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return _empty(columns)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)


#: Above this many streets the drawn lines are not simplified: the map draws at most the
#: 50,000 longest of a city anyway, and GEOS's simplify costs ~1.2 us per line (2 s at 1M).
SIMPLIFY_STREETS_UP_TO = 200_000


@functools.lru_cache(maxsize=4)
def street_geometry_wgs84(net: WalkNetwork) -> np.ndarray:
    """Every street of ``net`` in WGS84, for drawing: built once per network, not per edit.

    Simplified to 1 m on networks up to :data:`SIMPLIFY_STREETS_UP_TO` streets; a city's
    coordinates are projected as one array and the lines built from it (no per-line calls).
    """
    if net.n_edges <= SIMPLIFY_STREETS_UP_TO:
        return _to_wgs84(net, shapely.simplify(net.edge_geometries(), 1.0))
    lon, lat = net.to_wgs84.transform(net.coords[:, 0], net.coords[:, 1])
    idx = np.repeat(np.arange(net.n_edges), np.diff(net.coord_offsets))
    return np.asarray(shapely.linestrings(np.column_stack([lon, lat]), indices=idx))


@functools.lru_cache(maxsize=16)
def _empty_frame(columns: tuple[str, ...]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=4326)


def _empty(columns: tuple[str, ...] | list[str]) -> gpd.GeoDataFrame:
    """An empty table with these columns (a copy: building one costs a millisecond or two)."""
    return _empty_frame(tuple(columns)).copy()


def _to_wgs84(net: WalkNetwork, geoms: np.ndarray) -> np.ndarray:
    tr = net.to_wgs84
    return np.asarray(
        shapely.transform(geoms, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
    )


def _to_gdf_rows(
    net: WalkNetwork, rows: list[dict[str, Any]], columns: list[str]
) -> gpd.GeoDataFrame:
    if not rows:
        return _empty(columns)
    geoms = _to_wgs84(net, np.array([r.pop("geometry") for r in rows], dtype=object))
    return gpd.GeoDataFrame(pd.DataFrame(rows)[columns], geometry=geoms, crs=4326)


def _gdf_ll(rows: list[dict[str, Any]], columns: list[str]) -> gpd.GeoDataFrame:
    if not rows:
        return _empty(columns)
    geoms = [r.pop("geometry") for r in rows]
    return gpd.GeoDataFrame(pd.DataFrame(rows)[columns], geometry=geoms, crs=4326)


def _areas_table(
    inputs: StudyInputs,
    residents: ResidentState,
    metrics: pd.DataFrame,
    headline: Mapping[str, float],
) -> gpd.GeoDataFrame:
    """Area polygons with each layer's headline coverage and target population."""
    base = _AREA_BASE.get(residents)
    if base is None:
        base = _AREA_BASE[residents] = _area_polygons(inputs, residents)
    areas = base.copy()
    m = metrics[metrics["level"] != "district"]
    idx = pd.MultiIndex.from_arrays([areas["level"], areas["area"]])
    for kind, minutes in headline.items():
        key = m[(m["kind"] == kind) & (m["minutes"] == minutes)].set_index(["level", "area"])
        areas[f"coverage_{kind}"] = key["coverage_rate"].reindex(idx).to_numpy()
        areas[f"population_{kind}"] = key["population"].reindex(idx).to_numpy()
    return areas


def _area_polygons(inputs: StudyInputs, residents: ResidentState) -> gpd.GeoDataFrame:
    """The 街道 and 社区 polygons (or H3 cells) of the per-area tables, once per study."""
    parts = []
    if inputs.streets is not None:
        s = inputs.streets[["area", "geometry"]].copy()
        s["level"], s["parent"] = "street", ""
        parts.append(s)
        if inputs.communities is not None:
            c = inputs.communities[["area", "parent", "geometry"]].copy()
            c["level"] = "community"
            parts.append(c)
    elif residents.hex_grid is not None:
        parts.append(residents.hex_grid[["area", "level", "parent", "geometry"]])
    if not parts:
        return _empty(("area", "level", "parent"))
    areas = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)
    return areas[["area", "level", "parent", "geometry"]]

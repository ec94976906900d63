"""Command line of the 15-minute service-circle planner.

    python app.py demo --out DIR                 # the synthetic demo district, end to end
    python app.py run PLAN.toml --out DIR        # a study from a plan file (flags override it)
    python app.py run --network F --residents F --layer KIND=F [...] --out DIR

This file parses, calls the packages and writes outputs; the analysis lives in ``coverage``.
User mistakes print one line and exit 2, leaving no output folder; internal errors exit 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from layers.errors import InputError  # noqa: E402
from layers.plan import (  # noqa: E402
    MODELS,
    LayerInput,
    Plan,
    merge,
    parse_minutes,
    parse_pair,
    plan_from_mapping,
    read_plan,
    read_targets_file,
)

log = logging.getLogger("app")
OSM_SOURCE = "Street network: © OpenStreetMap contributors, ODbL 1.0 (openstreetmap.org/copyright)"


class Progress:
    """Step lines with elapsed seconds on stderr; silent with --quiet or in CI."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, text: str) -> None:
        """Show one step."""
        if self.enabled:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {text}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, type=Path, help="output folder (created whole)")
    common.add_argument("--force", action="store_true", help="replace an existing output folder")
    common.add_argument("--lang", choices=["zh", "en"], help="language of map and report")
    common.add_argument(
        "--basemap",
        choices=["osm", "none", "gcj02"],
        help="map tiles: OpenStreetMap, none (offline), or Amap-style GCJ-02",
    )
    common.add_argument("--export-crs", help="CRS of GIS exports: wgs84, cgcs2000, gcj02, EPSG")
    common.add_argument(
        "--formats",
        default="gpkg,geojson,shp,parquet,csv",
        help="GIS export formats (comma-separated)",
    )
    common.add_argument("--cache-dir", type=Path, help="network cache folder")
    g = common.add_mutually_exclusive_group()
    g.add_argument("--quiet", action="store_true", help="no progress output")
    g.add_argument("--verbose", action="store_true", help="log details (and tracebacks)")

    p = argparse.ArgumentParser(prog="app.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", parents=[common], help="run the synthetic demo district")
    d.add_argument("--seed", type=int, default=2026, help="demo generator seed")
    d.add_argument("--suggest", type=int, default=3, help="new sites suggested per layer")
    r = sub.add_parser("run", parents=[common], help="run a study")
    r.add_argument("plan", nargs="?", type=Path, help="TOML plan file (optional)")
    r.add_argument("--title")
    r.add_argument("--network", type=Path, help=".osm.pbf / .osm / .osm.bz2 / .graphml")
    r.add_argument("--place", help="download the network online through OSMnx")
    r.add_argument("--residents", type=Path)
    r.add_argument("--layer", action="append", default=[], metavar="KIND=FILE")
    r.add_argument("--areas", type=Path, help="街道 polygons")
    r.add_argument("--communities", type=Path, help="社区 polygons")
    r.add_argument("--candidates", type=Path, help="candidate sites for new facilities")
    r.add_argument("--suggest", action="append", default=[], metavar="KIND=N")
    r.add_argument("--model", choices=MODELS)
    r.add_argument("--speed", action="append", default=[], metavar="KIND=KMH")
    r.add_argument("--minutes", help="thresholds, e.g. 5,10,15")
    r.add_argument(
        "--coords",
        action="append",
        default=[],
        metavar="[LAYER=]SYSTEM",
        help="coordinate system of point tables: wgs84, gcj02, bd09, cgcs2000",
    )
    r.add_argument("--layer-table", type=Path, help="TOML layer table (default data/layers.toml)")
    r.add_argument("--crs", help="metric CRS for the analysis, e.g. 4549 (default local UTM)")
    r.add_argument("--max-snap-m", type=float)
    r.add_argument("--targets", type=Path, help="TOML file of [[targets]] (planning targets)")
    o = sub.add_parser(
        "prepare-osm",
        help="write residents, OSM-tag facility layers, 街道 and a "
        "plan.toml for a study on real streets",
    )
    o.add_argument("osm", type=Path, help=".osm.pbf / .osm with streets, buildings and POIs")
    o.add_argument("--areas", type=Path, required=True, help="街道 polygons")
    o.add_argument("--area-where", metavar="COLUMN=VALUE", help="keep only matching polygons")
    o.add_argument("--area-name-col", default="name")
    o.add_argument("--totals", type=Path, help="CSV: 街道 name, population (else density)")
    o.add_argument(
        "--density",
        type=float,
        default=11_500.0,
        help="people per km2 assumed when no totals are given",
    )
    o.add_argument("--unit", choices=["compound", "building"], default="compound")
    o.add_argument("--out", required=True, type=Path)
    o.add_argument("--force", action="store_true")
    g2 = o.add_mutually_exclusive_group()
    g2.add_argument("--quiet", action="store_true")
    g2.add_argument("--verbose", action="store_true")
    return p


def _plan_from_args(args: argparse.Namespace) -> tuple[Plan, dict[str, str]]:
    plan = read_plan(args.plan) if args.plan else Plan()
    coords_default = None
    coords_by_layer: dict[str, str] = {}
    for item in args.coords:
        if "=" in item:
            k, v = parse_pair(item, flag="--coords")
            coords_by_layer[k] = v
        else:
            coords_default = item
    layers = []
    for item in args.layer:
        kind, file = parse_pair(item, flag="--layer")
        layers.append(LayerInput(kind, Path(file), coords_by_layer.get(kind)))
    given = {li.kind for li in layers}
    # --coords KIND=SYSTEM also applies to a layer that came from the plan file
    layers += [
        LayerInput(li.kind, li.file, coords_by_layer[li.kind])
        for li in plan.layers
        if li.kind in coords_by_layer and li.kind not in given
    ]
    plan = merge(
        plan,
        title=args.title,
        network=args.network,
        place=args.place,
        residents=args.residents,
        streets=args.areas,
        communities=args.communities,
        candidates=args.candidates,
        layers=tuple(layers),
        suggest=dict(parse_pair(s, flag="--suggest", number=int) for s in args.suggest),
        speed=dict(parse_pair(s, flag="--speed", number=float) for s in args.speed),
        minutes=parse_minutes(args.minutes) if args.minutes else None,
        coords=coords_default,
        model=args.model,
        layer_table=args.layer_table,
        crs=args.crs,
        max_snap_m=args.max_snap_m,
    )
    if args.targets is not None:
        plan = merge(plan, targets=read_targets_file(args.targets), targets_file=str(args.targets))
    return merge(plan, **_common_overrides(args)), coords_by_layer


def _common_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"lang": args.lang, "basemap": args.basemap, "export_crs": args.export_crs}


def _demo_plan(args: argparse.Namespace, inputs_dir: Path) -> Plan:
    from data.demo import generate_demo, write_demo

    files = write_demo(generate_demo(seed=args.seed), inputs_dir, force=True)
    layers = {}
    for kind, path in files.facilities.items():
        entry: dict[str, Any] = {"file": str(path)}
        if path.suffix.lower() in (".csv", ".xlsx"):
            entry["coords"] = "gcj02"  # the demo's point tables come as exported from Amap
        layers[kind] = entry
    plan = plan_from_mapping(
        {
            "title": "示例城区15分钟公共服务圈（合成数据）",
            "network": str(files.streets_osm),
            "residents": str(files.residents_gpkg),
            "streets": str(files.areas_gpkg),
            "streets_layer": "streets_areas",
            "communities": str(files.areas_gpkg),
            "communities_layer": "communities",
            "candidates": str(files.candidates),
            "layers": layers,
            "suggest": dict.fromkeys(layers, args.suggest) if args.suggest > 0 else {},
            "targets": str(ROOT / "data" / "targets_demo.toml"),
        }
    )
    return merge(plan, **_common_overrides(args))


def execute(
    plan: Plan,
    out: Path,
    *,
    coords_by_layer: dict[str, str],
    progress: Progress,
    synthetic: bool,
    formats: list[str],
    cache_dir: Path | None,
    work: Path,
) -> dict:
    """Read, route, analyse and write every output into ``work`` (the temporary folder)."""
    import shapely

    from coverage.analysis import AnalysisOptions, StudyInputs, analyse
    from coverage.summary import summary_dict
    from coverage.targets import parse_targets
    from geo.load import load_network, network_from_place, study_extent, walking_halo_m
    from layers.export import export_result
    from layers.model import read_areas, read_candidates, read_facilities, read_residents
    from layers.spec import load_layer_table
    from layers.validate import check_overlap
    from maps.coverage_map import render_map
    from maps.report import write_report

    plan.check()
    specs = load_layer_table(plan.layer_table)
    for li in plan.layers:
        if li.kind not in specs:
            msg = f"unknown layer kind '{li.kind}'"
            raise InputError(msg, fix=f"use one of {', '.join(specs)} or add it to the layer table")
    for kind, kmh in plan.speed.items():
        specs[kind] = specs[kind].with_speed(kmh)
    if plan.minutes:
        specs = {k: s.with_thresholds(plan.minutes) for k, s in specs.items()}

    targets = parse_targets(
        plan.targets, layers=[li.kind for li in plan.layers], file=plan.targets_file
    )
    progress("reading layers")
    cols = dict(plan.residents_columns)
    # a bare --coords (plan `coords`) is only for tables that carry no CRS of their own; an
    # input named in --coords NAME=SYSTEM (or a layer's `coords`) overrides even a declared CRS
    residents = read_residents(
        plan.residents,
        coords=coords_by_layer.get("residents"),
        default_coords=plan.coords,
        population_col=cols.pop("population", "population"),
        group_cols={"elderly": "elderly", "youth": "youth", **cols},
        layer=plan.residents_layer,
    )
    facilities = {
        li.kind: read_facilities(
            li.file, li.kind, coords=li.coords, default_coords=plan.coords, specs=specs
        )
        for li in plan.layers
    }
    streets = (
        read_areas(
            plan.streets,
            level="street",
            layer=plan.streets_layer,
            coords=coords_by_layer.get("streets") or coords_by_layer.get("areas"),
            default_coords=plan.coords,
        )
        if plan.streets
        else None
    )
    communities = (
        read_areas(
            plan.communities,
            level="community",
            layer=plan.communities_layer,
            coords=coords_by_layer.get("communities"),
            default_coords=plan.coords,
        )
        if plan.communities
        else None
    )
    candidates = (
        read_candidates(
            plan.candidates,
            coords=coords_by_layer.get("candidates"),
            default_coords=plan.coords,
        )
        if plan.candidates
        else None
    )

    # areas are checked against the residents before the network is built: a 街道 file of
    # another district would otherwise give empty per-area tables and exit 0
    near_residents = shapely.buffer(residents.geometry.union_all().envelope, 0.01)
    for areas, file in ((streets, plan.streets), (communities, plan.communities)):
        if areas is not None:
            check_overlap(areas, near_residents, file=file)

    if plan.crs is not None:  # a CRS that stretches distances would change every minute
        from layers.crs import check_metric_crs

        bounds = shapely.bounds(
            shapely.union_all(
                [residents.geometry.union_all().envelope]
                + [f.geometry.union_all().envelope for f in facilities.values() if len(f)]
            )
        )
        check_metric_crs(plan.crs, tuple(float(b) for b in bounds))

    progress("building the walking network")
    # the clip holds every resident, facility and candidate plus the longest walk any number
    # is measured against, so 街道 polygons (or their absence) never change a minute
    used = [specs[li.kind] for li in plan.layers]
    max_minutes = max(
        [m for s in used for m in (*s.thresholds_min, s.headline_min)]
        + [t.minutes for t in targets if t.minutes is not None]
    )
    halo_m = max(
        plan.buffer_m,
        walking_halo_m([s.speed_kmh for s in used], max_minutes, max_snap_m=plan.max_snap_m),
    )
    study_area = study_extent(
        [
            residents.geometry,
            *(f.geometry for f in facilities.values() if len(f)),
            None if candidates is None else candidates.geometry,
        ],
        halo_m=halo_m,
    )
    if plan.network is not None:
        net = load_network(
            plan.network,
            aoi_wgs84=study_area,
            buffer_m=halo_m,
            crs=plan.crs,
            cache_dir=cache_dir,
        )
    else:
        net = network_from_place(str(plan.place), crs=plan.crs, buffer_m=plan.buffer_m)
    progress(f"network: {net.report.describe()}")
    extent = net.extent_wgs84()
    check_overlap(residents, extent, file=plan.residents)
    for li in plan.layers:
        if len(facilities[li.kind]):
            check_overlap(facilities[li.kind], extent, file=li.file)
    if candidates is not None:
        check_overlap(candidates, extent, file=plan.candidates)

    result = analyse(
        net,
        StudyInputs(
            residents=residents,
            facilities=facilities,
            specs=specs,
            streets=streets,
            communities=communities,
            candidates=candidates,
        ),
        title=plan.title,
        options=AnalysisOptions(
            max_snap_m=plan.max_snap_m,
            suggest=dict(plan.suggest),
            model=plan.model,  # type: ignore[arg-type]  # checked by Plan.check
            time_limit_s=plan.time_limit_s,
            targets=targets,
        ),
        synthetic=synthetic,
        sources=(
            OSM_SOURCE if not synthetic else "Synthetic demo district generated by data/demo.py",
        ),
        progress=progress,
    )
    progress("writing map, report and GIS layers")
    render_map(result, work / "map.html", lang=plan.lang, basemap=plan.basemap, force=True)
    write_report(
        result, work / "report.html", lang=plan.lang, xlsx_path=work / "report.xlsx", force=True
    )
    export_result(result, work / "gis", formats=formats, crs=plan.export_crs, force=True)
    summary = summary_dict(result)  # the whole document, timings and network included
    (work / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return summary


def _prepare(args: argparse.Namespace) -> int:
    from layers.prepare import prepare_from_osm

    try:
        where = parse_pair(args.area_where, flag="--area-where") if args.area_where else None
        done = prepare_from_osm(
            args.osm,
            args.areas,
            args.out,
            area_where=where,
            area_name_col=args.area_name_col,
            totals_csv=args.totals,
            density_per_km2=args.density,
            unit=args.unit,
            force=args.force,
        )
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(
            f"wrote {done.folder}: residents, {len(done.facilities)} facility layers, 街道; "
            f"next: python app.py run {done.plan} --out OUT"
        )
        if done.totals_assumed:
            print(
                "note: population per 街道 assumed from --density; pass --totals for real figures"
            )
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the output folder is cleaned up and nothing is written."""


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the cleanup itself is not cut short
    raise Terminated


def _input_paths(args: argparse.Namespace, plan: Plan | None) -> list[Path]:
    """Every file a run reads, so that ``--out`` can never replace (or sit above) one."""
    from layers.spec import DEFAULT_TABLE

    paths = [DEFAULT_TABLE]
    for name in ("plan", "targets", "osm", "areas", "totals"):
        if getattr(args, name, None) is not None:
            paths.append(Path(getattr(args, name)))
    if args.command == "demo":
        paths.append(ROOT / "data" / "targets_demo.toml")
    if plan is not None:
        paths += [
            v for f in dataclasses.fields(plan) if isinstance(v := getattr(plan, f.name), Path)
        ]
        paths += [li.file for li in plan.layers]
        if Path(plan.targets_file).is_file():
            paths.append(Path(plan.targets_file))
    return paths


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    progress = Progress(not args.quiet and not os.environ.get("CI"))
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        return _main(args, progress)
    finally:
        if in_main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(args: argparse.Namespace, progress: Progress) -> int:
    from layers.atomic import atomic_dir, check_out_dir

    try:
        if args.command == "prepare-osm":
            # prepare reads the OSM file before it opens its folder: a bad --out fails first
            check_out_dir(args.out, force=args.force, inputs=_input_paths(args, None))
            return _prepare(args)
        formats = [f.strip() for f in args.formats.split(",") if f.strip()]
        plan, coords_by_layer = (None, {}) if args.command == "demo" else _plan_from_args(args)
        inputs = _input_paths(args, plan)
        with atomic_dir(args.out, force=args.force, inputs=inputs) as work:
            if plan is None:
                progress(f"generating the synthetic demo district (seed {args.seed})")
                plan = _demo_plan(args, work / "inputs")
            summary = execute(
                plan,
                args.out,
                coords_by_layer=coords_by_layer,
                progress=progress,
                synthetic=args.command == "demo",
                formats=formats,
                cache_dir=args.cache_dir,
                work=work,
            )
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print("interrupted; no output written", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    except Exception as err:  # an internal error: short message, details with --verbose
        if args.verbose:
            log.exception("internal error")
        print(
            f"internal error: {type(err).__name__}: {err} (run with --verbose for details)",
            file=sys.stderr,
        )
        return 1
    progress(f"done: {args.out}")
    if not args.quiet:
        for kind, s in summary["layers"].items():
            rate = s["coverage_rate"]
            print(
                f"{kind:22s} {s['facilities']:4d} facilities  "
                f"{'n/a' if rate is None else f'{rate:6.1%}'} of {s['target_group']} within "
                f"{s['headline_minutes']:g} min"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
    parse_columns,
    parse_formats,
    parse_minutes,
    parse_pair,
    plan_from_mapping,
    read_plan,
    read_targets_file,
)

log = logging.getLogger("app")
OSM_SOURCE = "Street network: © OpenStreetMap contributors, ODbL 1.0 (openstreetmap.org/copyright)"


class Progress:
    """Step lines with elapsed seconds on stderr; silent with --quiet or in CI.

    Counted stages (layers routed, partitions done on Dask) are a bar on a terminal (tqdm) and
    a line at every tenth otherwise, so a log file gets a few lines, not one per partition.
    """

    def __init__(self, enabled: bool, *, bars: bool | None = None) -> None:
        self.enabled = enabled
        self.bars = sys.stderr.isatty() if bars is None else bars
        self.t0 = time.perf_counter()
        self._bar: Any = None
        self._stage: str | None = None
        self._said = -1

    def __call__(self, text: str) -> None:
        """Show one step."""
        if not self.enabled:
            return
        line = f"[{time.perf_counter() - self.t0:6.1f}s] {text}"
        if self._bar is not None:  # above the bar, which stays
            self._bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def count(self, stage: str, done: int, total: int) -> None:
        """Show that ``done`` of ``total`` items of ``stage`` are finished."""
        if not self.enabled or total <= 0:
            return
        if stage != self._stage:
            self._close()
            self._stage, self._said = stage, -1
        if self.bars:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=stage, file=sys.stderr, leave=False)
            self._bar.n = done
            self._bar.refresh()
        elif total >= 10:  # fewer items have a step line each already
            tenth = done * 10 // total
            if tenth > self._said:
                self._said = tenth
                elapsed = time.perf_counter() - self.t0
                print(f"[{elapsed:6.1f}s]   {stage}: {done}/{total}", file=sys.stderr, flush=True)
        if done >= total:
            self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._stage = None


def version() -> str:
    """The project's version, read from ``pyproject.toml`` (no import of an installed package)."""
    import tomllib

    try:
        with (ROOT / "pyproject.toml").open("rb") as fh:
            return str(tomllib.load(fh)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


_FORMATS_DEFAULT = "gpkg,geojson,shp,parquet,csv"
_RUN_EXAMPLES = """\
examples:
  app.py run plan.toml --out out/study
  app.py run --network westlake.osm.pbf --residents residents.gpkg \\
      --layer canteen=canteens.csv --coords canteen=gcj02 \\
      --areas areas.gpkg --areas-layer streets_areas --suggest canteen=5 --out out/s
  app.py run plan.toml --residents-columns population=常住人口,elderly=60岁以上 \\
      --layer-columns canteen:name=名称,capacity=床位 --out out/s

A file holding several layers or sheets (GeoPackage, XLSX) needs its layer named:
--residents-layer, --areas-layer, --communities-layer, --candidates-layer, or
--layer-sheet KIND=NAME for a facility layer.  Flags override the plan file."""


class _Help(argparse.RawDescriptionHelpFormatter):
    """Epilog examples kept as written; option help wrapped to the terminal."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=min(100, _terminal_width()))


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((80, 24)).columns


def _add_study_args(r: argparse.ArgumentParser) -> None:
    """The plan file and the input and analysis flags shared by ``run`` and ``serve``."""
    r.add_argument("plan", nargs="?", type=Path, help="TOML plan file (optional)")
    i = r.add_argument_group("inputs (FILE: GeoJSON, GeoPackage, Shapefile, GeoParquet, CSV, XLSX)")
    i.add_argument("--network", type=Path, metavar="FILE", help=".osm.pbf, .osm(.bz2), .graphml")
    i.add_argument(
        "--place", help="download the street network online (OSMnx), e.g. 上城区, 杭州市"
    )
    i.add_argument("--residents", type=Path, metavar="FILE", help="resident points or polygons")
    i.add_argument("--residents-layer", metavar="NAME", help="its GeoPackage layer or XLSX sheet")
    i.add_argument(
        "--residents-columns",
        metavar="COLS",
        help="K=COL,..: population, elderly, youth, id, name",
    )
    i.add_argument(
        "--layer",
        action="append",
        default=[],
        metavar="KIND=FILE",
        help="a facility layer, e.g. canteen=canteens.csv (repeatable)",
    )
    i.add_argument(
        "--layer-sheet",
        action="append",
        default=[],
        metavar="KIND=NAME",
        help="GeoPackage layer or XLSX sheet of that file",
    )
    i.add_argument(
        "--layer-columns",
        action="append",
        default=[],
        metavar="KIND:COLS",
        help="e.g. canteen:name=名称,capacity=床位 (id, name, capacity)",
    )
    i.add_argument("--areas", type=Path, metavar="FILE", help="街道 (sub-district) polygons")
    i.add_argument("--areas-layer", metavar="NAME", help="its GeoPackage layer or XLSX sheet")
    i.add_argument("--areas-columns", metavar="COLS", help="name=COL: the column naming each 街道")
    i.add_argument("--communities", type=Path, metavar="FILE", help="社区 (community) polygons")
    i.add_argument("--communities-layer", metavar="NAME", help="its layer or sheet")
    i.add_argument(
        "--communities-columns", metavar="COLS", help="name=COL,parent=COL (the 社区's 街道)"
    )
    i.add_argument("--candidates", type=Path, metavar="FILE", help="candidate sites for new ones")
    i.add_argument("--candidates-layer", metavar="NAME", help="its layer or sheet")
    i.add_argument("--candidates-columns", metavar="COLS", help="K=COL,..: id, name, capacity")
    i.add_argument(
        "--coords",
        action="append",
        default=[],
        metavar="[INPUT=]SYS",
        help="SYS of CSV/XLSX tables: wgs84, gcj02 (Amap), bd09 (Baidu), cgcs2000 (default: "
        "wgs84); INPUT=SYS (residents, streets, communities, candidates, KIND) overrides a "
        "file's own CRS",
    )
    i.add_argument(
        "--layer-table", type=Path, metavar="FILE", help="layer kinds (default: data/layers.toml)"
    )
    i.add_argument("--targets", type=Path, metavar="FILE", help="planning targets ([[targets]])")
    a = r.add_argument_group("analysis")
    a.add_argument("--title", help="study title (default: 15分钟公共服务圈)")
    a.add_argument("--minutes", metavar="LIST", help="walking minutes (default: 5,10,15)")
    a.add_argument(
        "--speed",
        action="append",
        default=[],
        metavar="KIND=KMH",
        help="walking speed of a layer's group (default: data/layers.toml)",
    )
    a.add_argument("--crs", help="metric CRS, e.g. 4549 (default: local UTM zone)")
    a.add_argument(
        "--max-snap-m",
        type=float,
        metavar="M",
        help="farthest walk onto the network, in metres (default: 300)",
    )
    a.add_argument(
        "--suggest",
        action="append",
        default=[],
        metavar="KIND[=N]",
        help="suggest N new sites (mclp, pmedian, capacitated); KIND alone with lscp",
    )
    a.add_argument(
        "--model",
        choices=MODELS,
        help="mclp: reach most people with N sites; lscp: fewest sites reaching everyone "
        "reachable; pmedian: shortest mean walk; capacitated: mclp within site capacity "
        "(default: mclp)",
    )


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    out = common.add_argument_group("output")
    out.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="output folder (created whole)"
    )
    out.add_argument(
        "--force", action="store_true", help="replace an output folder this tool wrote before"
    )
    out.add_argument(
        "--lang", choices=["zh", "en"], help="language of map and report (default: zh)"
    )
    out.add_argument(
        "--basemap",
        choices=["osm", "none", "gcj02"],
        help="map tiles: OpenStreetMap, none (offline) or Amap-style GCJ-02 (default: osm)",
    )
    out.add_argument(
        "--export-crs",
        metavar="CRS",
        help="CRS of GIS exports: wgs84, cgcs2000, gcj02, bd09 or an EPSG code (default: wgs84)",
    )
    out.add_argument(
        "--formats",
        default=_FORMATS_DEFAULT,
        metavar="LIST",
        help=f"GIS export formats, comma-separated (default: {_FORMATS_DEFAULT})",
    )
    out.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="network cache (default: $SERVICECIRCLE_CACHE or ~/.cache/servicecircle/networks)",
    )
    out.add_argument(
        "--dask",
        metavar="local[:N]|tcp://HOST:PORT",
        help="snap and route per 街道 (or tile) on a Dask cluster: a local one of N worker "
        "processes, or a running scheduler (see docs/dask.md); the numbers are the same",
    )
    g = out.add_mutually_exclusive_group()
    g.add_argument("--quiet", action="store_true", help="no progress lines")
    g.add_argument("--verbose", action="store_true", help="log details (and tracebacks)")

    p = argparse.ArgumentParser(
        prog="app.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=_Help,
        epilog="examples:\n  app.py demo --out out/demo\n  app.py run plan.toml --out out/study\n"
        "  app.py prepare-osm city.osm.pbf --areas 街道.geojson --out inputs\n"
        "Run 'app.py COMMAND --help' for a command's options.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = sub.add_parser(
        "demo",
        usage="app.py demo [options] --out DIR",
        parents=[common],
        help="run the synthetic demo district end to end",
        description="Generate a synthetic district (streets, residents, facilities, 街道, "
        "社区) and run the whole study on it.",
        formatter_class=_Help,
        epilog="example:\n  app.py demo --out out/demo --lang en --basemap none",
    )
    d.add_argument("--seed", type=int, default=2026, help="demo generator seed (default: 2026)")
    d.add_argument(
        "--suggest", type=int, default=3, metavar="N", help="new sites per layer (default: 3)"
    )

    r = sub.add_parser(
        "run",
        parents=[common],
        help="run a study from a plan file and/or flags",
        usage="app.py run [PLAN.toml] [options] --out DIR",
        description="Measure walking access to each facility layer and suggest new sites.\n"
        "Every option can also be set in the TOML plan file; a flag overrides it.",
        formatter_class=_Help,
        epilog=_RUN_EXAMPLES,
    )
    _add_study_args(r)

    v = sub.add_parser(
        "serve",
        usage="app.py serve [PLAN.toml] [--demo] [--host H] [--port N] [options]",
        help="open a study in the planner's studio (a local web page with live edits)",
        description="Serve a study in a local web page: add, move and remove sites, change "
        "speeds and minutes, and see every number of the batch run update at once.",
        formatter_class=_Help,
        epilog="examples:\n  app.py serve --demo\n  app.py serve plan.toml --study studio/上城区\n"
        "  app.py serve plan.toml --host 0.0.0.0 --token SECRET   # others on the network",
    )
    _add_study_args(v)
    w = v.add_argument_group("studio")
    w.add_argument("--demo", action="store_true", help="serve the synthetic demo district")
    w.add_argument("--seed", type=int, default=2026, help="demo generator seed (default: 2026)")
    w.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, loopback)"
    )
    w.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    w.add_argument(
        "--token", help="access token; required off loopback (one is generated if not given)"
    )
    w.add_argument(
        "--study",
        type=Path,
        metavar="DIR",
        help="study folder for saved scenarios and exports (default: ./studio, ./studio-demo)",
    )
    w.add_argument("--lang", choices=["zh", "en"], help="page language (default: zh)")
    w.add_argument(
        "--basemap",
        choices=["osm", "none", "gcj02"],
        help="tiles of exported maps (default: osm)",
    )
    w.add_argument(
        "--export-crs", metavar="CRS", help="CRS of exported GIS layers (default: wgs84)"
    )
    w.add_argument(
        "--formats",
        default=_FORMATS_DEFAULT,
        metavar="LIST",
        help=f"export formats (default: {_FORMATS_DEFAULT})",
    )
    w.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="network cache (default: ~/.cache/servicecircle or $SERVICECIRCLE_CACHE)",
    )
    g3 = w.add_mutually_exclusive_group()
    g3.add_argument("--quiet", action="store_true", help="no progress lines")
    g3.add_argument("--verbose", action="store_true", help="log details (and tracebacks)")

    o = sub.add_parser(
        "prepare-osm",
        usage="app.py prepare-osm OSM --areas FILE [options] --out DIR",
        help="write residents, OSM-tag facility layers, 街道 and a plan.toml from an OSM file",
        description="Derive a study's inputs from OpenStreetMap: residents from buildings, "
        "facility layers from OSM tags (proxies), 街道 from your polygons.",
        formatter_class=_Help,
        epilog="example:\n  app.py prepare-osm westlake.osm.pbf --areas hangzhou_admin.geojson \\\n"
        "      --area-where in_new_shangcheng_2021=true --totals 人口.csv --out inputs\n"
        "  app.py run inputs/plan.toml --out out/study",
    )
    o.add_argument("osm", type=Path, help=".osm.pbf / .osm with streets, buildings and POIs")
    o.add_argument("--areas", type=Path, required=True, metavar="FILE", help="街道 polygons")
    o.add_argument("--area-where", metavar="COLUMN=VALUE", help="keep only matching polygons")
    o.add_argument(
        "--area-name-col", default="name", metavar="COL", help="街道 name column (default: name)"
    )
    o.add_argument("--totals", type=Path, metavar="CSV", help="CSV of 街道 name, population")
    o.add_argument(
        "--density",
        type=float,
        default=11_500.0,
        metavar="PER_KM2",
        help="people per km² when no --totals are given (default: 11500)",
    )
    o.add_argument(
        "--unit",
        choices=["compound", "building"],
        default="compound",
        help="resident unit (default: compound)",
    )
    o.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder to write")
    o.add_argument("--force", action="store_true", help="replace a folder this tool wrote")
    g2 = o.add_mutually_exclusive_group()
    g2.add_argument("--quiet", action="store_true", help="no summary lines")
    g2.add_argument("--verbose", action="store_true", help="log details")
    return p


def _by_kind(items: list[str], flag: str, example: str) -> dict[str, str]:
    return dict(parse_pair(s, flag=flag, example=example) for s in items)


def _layer_columns(items: list[str]) -> dict[str, dict[str, str]]:
    """``--layer-columns canteen:name=名称,capacity=床位`` (repeatable)."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        kind, sep, rest = item.partition(":")
        if not sep or not kind.strip() or "=" in kind:
            msg = f"--layer-columns {item}: expected KIND:KEY=COLUMN"
            raise InputError(msg, fix="write e.g. --layer-columns canteen:name=名称,capacity=床位")
        out.setdefault(kind.strip(), {}).update(parse_columns(rest, flag="--layer-columns"))
    return out


def _suggest(items: list[str]) -> dict[str, int]:
    """``--suggest canteen=5``; ``--suggest canteen`` (no number) for LSCP, stored as 0."""
    out = {}
    for item in items:
        if "=" in item:
            kind, n = parse_pair(item, flag="--suggest", number=int, example="canteen=5")
        else:
            kind, n = item.strip(), 0
        out[kind] = n
    return out


#: Inputs other than facility layers that --coords NAME=SYSTEM can name.
COORDS_INPUTS = ("residents", "candidates", "streets", "areas", "communities")


def _check_coords_names(coords_by_layer: dict[str, str], kinds: list[str]) -> None:
    """A misspelt input in --coords NAME=SYSTEM would convert nothing: refuse it."""
    from layers.validate import closest

    valid = [*kinds, *COORDS_INPUTS]
    for name in coords_by_layer:
        if name not in valid:
            near = closest(name, valid)
            hint = f"did you mean '{near}'? " if near else ""
            msg = f"--coords {name}=...: '{name}' is not an input of this run"
            raise InputError(msg, fix=f"{hint}name one of {', '.join(valid)}")


def _demo_inputs(plan: Plan | None) -> bool:
    """A run on the demo's generated streets is synthetic, whoever started it."""
    from data.demo import is_demo_network

    found = plan is not None and plan.network is not None and is_demo_network(plan.network)
    if found:
        log.info("the network is the synthetic demo's: outputs are labelled synthetic")
    return found


def _plan_from_args(args: argparse.Namespace) -> tuple[Plan, dict[str, str]]:
    plan = read_plan(args.plan) if args.plan else Plan()
    coords_default = None
    coords_by_layer: dict[str, str] = {}
    for item in args.coords:
        if "=" in item:
            k, v = parse_pair(item, flag="--coords", example="canteen=gcj02")
            coords_by_layer[k] = v
        else:
            coords_default = item
    sheets = _by_kind(args.layer_sheet, "--layer-sheet", "canteen=Sheet1")
    columns = _layer_columns(args.layer_columns)
    layers = []
    for item in args.layer:
        kind, file = parse_pair(item, flag="--layer", example="canteen=canteens.csv")
        layers.append(LayerInput(kind, Path(file)))
    given = {li.kind for li in layers}
    # --coords/--layer-sheet/--layer-columns KIND=... also apply to a layer of the plan file
    layers += [li for li in plan.layers if li.kind not in given]
    kinds = [li.kind for li in layers]
    _check_coords_names(coords_by_layer, kinds)
    for flag, table in (("--layer-sheet", sheets), ("--layer-columns", columns)):
        for kind in table:
            if kind not in kinds:
                msg = f"{flag} {kind}: '{kind}' is not one of the given layers"
                raise InputError(
                    msg, fix=f"use one of {', '.join(kinds) or '(none)'} or add --layer {kind}=FILE"
                )
    layers = [
        dataclasses.replace(
            li,
            coords=coords_by_layer.get(li.kind, li.coords),
            layer=sheets.get(li.kind, li.layer),
            columns={**li.columns, **columns.get(li.kind, {})},
        )
        for li in layers
    ]

    def cols(text: str | None, flag: str) -> dict[str, str] | None:
        return parse_columns(text, flag=flag) if text else None

    plan = merge(
        plan,
        title=args.title,
        network=args.network,
        place=args.place,
        residents=args.residents,
        residents_layer=args.residents_layer,
        residents_columns=cols(args.residents_columns, "--residents-columns"),
        streets=args.areas,
        streets_layer=args.areas_layer,
        streets_columns=cols(args.areas_columns, "--areas-columns"),
        communities=args.communities,
        communities_layer=args.communities_layer,
        communities_columns=cols(args.communities_columns, "--communities-columns"),
        candidates=args.candidates,
        candidates_layer=args.candidates_layer,
        candidates_columns=cols(args.candidates_columns, "--candidates-columns"),
        layers=tuple(layers),
        suggest=_suggest(args.suggest),
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


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A study read, checked and on its network: what ``run`` analyses and ``serve`` edits."""

    plan: Plan
    net: Any  # geo.network.WalkNetwork (imported lazily: --help stays fast)
    inputs: Any  # coverage.analysis.StudyInputs
    options: Any  # coverage.analysis.AnalysisOptions
    synthetic: bool
    sources: tuple[str, ...]


def prepare(
    plan: Plan,
    *,
    coords_by_layer: dict[str, str],
    progress: Progress,
    synthetic: bool,
    cache_dir: Path | None,
) -> Prepared:
    """Read and check every input and build the walking network (``run`` and ``serve`` alike)."""
    import shapely

    from coverage.analysis import AnalysisOptions, StudyInputs
    from coverage.targets import parse_targets
    from geo.load import load_network, network_from_place, study_extent, walking_halo_m
    from layers.model import read_areas, read_candidates, read_facilities, read_residents
    from layers.spec import load_layer_table
    from layers.validate import check_group_columns, check_overlap

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
    # candidates first (small): --suggest N is checked against them before the big files
    candidates = (
        read_candidates(
            plan.candidates,
            coords=coords_by_layer.get("candidates"),
            default_coords=plan.coords,
            layer=plan.candidates_layer,
            **_point_columns(plan.candidates_columns),
        )
        if plan.candidates
        else None
    )
    if candidates is not None:
        check_suggest_against_candidates(plan, len(candidates))
    cols = dict(plan.residents_columns)
    population_col = cols.pop("population", "population")
    id_col, name_col = cols.pop("id", None), cols.pop("name", None)
    # a bare --coords (plan `coords`) is only for tables that carry no CRS of their own; an
    # input named in --coords NAME=SYSTEM (or a layer's `coords`) overrides even a declared CRS
    residents = read_residents(
        plan.residents,
        coords=coords_by_layer.get("residents"),
        default_coords=plan.coords,
        population_col=population_col,
        group_cols={"elderly": "elderly", "youth": "youth", **cols},
        id_col=id_col,
        name_col=name_col,
        layer=plan.residents_layer,
    )
    # a layer serving a group the residents lack fails now, not after the network build
    needed_by: dict[str, list[str]] = {}
    for li in plan.layers:
        needed_by.setdefault(specs[li.kind].target_group, []).append(li.kind)
    check_group_columns(residents, needed_by, file=plan.residents, needed_by=needed_by)
    facilities = {
        li.kind: read_facilities(
            li.file,
            li.kind,
            coords=li.coords,
            default_coords=plan.coords,
            specs=specs,
            layer=li.layer,
            **_point_columns(li.columns),
        )
        for li in plan.layers
    }
    streets = (
        read_areas(
            plan.streets,
            level="street",
            layer=plan.streets_layer,
            name_col=plan.streets_columns.get("name"),
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
            name_col=plan.communities_columns.get("name"),
            parent_col=plan.communities_columns.get("parent"),
            coords=coords_by_layer.get("communities"),
            default_coords=plan.coords,
        )
        if plan.communities
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
        x0, y0, x1, y1 = (float(b) for b in bounds)
        check_metric_crs(plan.crs, (x0, y0, x1, y1))

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

    return Prepared(
        plan=plan,
        net=net,
        inputs=StudyInputs(
            residents=residents,
            facilities=facilities,
            specs=specs,
            streets=streets,
            communities=communities,
            candidates=candidates,
        ),
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
    )


def analyse_prepared(
    prepared: Prepared, *, progress: Progress, inputs: Any = None, dask: str | None = None
) -> Any:
    """The batch analysis of a prepared study (``inputs``: an edited facility set of it).

    ``dask`` (``local[:N]`` or ``tcp://HOST:PORT``) runs the snap and route stages per
    partition on a Dask cluster; the result is the same (coverage.distributed).
    """
    from coverage.analysis import analyse

    kwargs = {
        "title": prepared.plan.title,
        "options": prepared.options,
        "synthetic": prepared.synthetic,
        "sources": prepared.sources,
        "progress": progress,
    }
    study = prepared.inputs if inputs is None else inputs
    if dask:
        from coverage.distributed import analyse_on_dask

        return analyse_on_dask(prepared.net, study, dask=dask, **kwargs)
    return analyse(prepared.net, study, **kwargs)


def write_outputs(result: Any, work: Path, *, plan: Plan, formats: list[str]) -> dict:
    """Map, report, GIS layers and summary.json of a result, written into ``work``."""
    from coverage.summary import summary_dict
    from maps.coverage_map import render_map
    from maps.export import export_result
    from maps.report import write_report

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
    dask: str | None = None,
) -> dict:
    """Read, route, analyse and write every output into ``work`` (the temporary folder)."""
    prepared = prepare(
        plan,
        coords_by_layer=coords_by_layer,
        progress=progress,
        synthetic=synthetic,
        cache_dir=cache_dir,
    )
    result = analyse_prepared(prepared, progress=progress, dask=dask)
    progress("writing map, report and GIS layers")
    return write_outputs(result, work, plan=plan, formats=formats)


def _point_columns(columns: Any) -> dict[str, str | None]:
    """A column table (``id``, ``name``, ``capacity``) as the readers' keywords."""
    return {f"{key}_col": columns.get(key) for key in ("id", "name", "capacity")}


def check_suggest_against_candidates(plan: Plan, n_candidates: int) -> None:
    """``--suggest KIND=N`` asks for at most as many sites as the candidates file holds.

    Checked right after the candidates are read, before the residents and the network: the
    solver would otherwise refuse it only at the end of the analysis.
    """
    for kind, n in plan.suggest.items():
        if plan.model != "lscp" and n > n_candidates:
            msg = (
                f"--suggest {kind}={n} asks for {n} new sites but the candidates file has only "
                f"{n_candidates} site{'s' if n_candidates != 1 else ''}"
            )
            raise InputError(
                msg,
                file=plan.candidates,
                fix=f"ask for at most {n_candidates} (--suggest {kind}={n_candidates}, or "
                f"{kind} = {n_candidates} under [suggest]), or add candidate sites to the file",
            )


def _prepare(args: argparse.Namespace) -> int:
    from layers.osm.prepare import prepare_from_osm

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


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def studio_app(args: argparse.Namespace, progress: Progress) -> tuple[Any, str, str | None]:
    """The studio of ``serve``'s arguments: (ASGI app, URL to open, token or None).

    The plan is read, checked and built exactly as ``run`` does (:func:`prepare`); an export
    from the page runs ``run``'s analysis and writers (:func:`analyse_prepared`,
    :func:`write_outputs`) into a new folder under the study folder.
    """
    import secrets

    from coverage.whatif import Study
    from layers.spec import load_layer_table
    from maps.studio.server import create_app
    from maps.studio.session import Session
    from maps.studio.upload import UploadConfig

    formats = parse_formats(args.formats)
    token = args.token
    if not _loopback(args.host) and not token:
        token = secrets.token_urlsafe(18)
    if args.demo and args.plan is not None:
        msg = "serve: give a plan file or --demo, not both"
        raise InputError(msg, fix="drop --demo to serve the plan, or the plan to serve the demo")
    folder = args.study or Path("studio-demo" if args.demo else "studio")
    if folder.exists() and not folder.is_dir():
        msg = f"--study {folder}: not a folder"
        raise InputError(msg, fix="name a folder (it is created if missing)")
    folder.mkdir(parents=True, exist_ok=True)
    if args.demo:
        merge(Plan(), **_common_overrides(args)).check_options()
        progress(f"generating the synthetic demo district (seed {args.seed})")
        demo_args = argparse.Namespace(**{**vars(args), "suggest": 3})
        plan = _demo_plan(demo_args, folder / "inputs")
        coords_by_layer: dict[str, str] = {}
    else:
        plan, coords_by_layer = _plan_from_args(args)
        plan.check()
    prepared = prepare(
        plan,
        coords_by_layer=coords_by_layer,
        progress=progress,
        synthetic=args.demo or _demo_inputs(plan),
        cache_dir=args.cache_dir,
    )
    progress("routing every layer for live edits")
    study = Study.route(prepared.net, prepared.inputs, prepared.options)
    session = Session(
        study,
        title=plan.title,
        synthetic=prepared.synthetic,
        sources=prepared.sources,
        folder=folder,
        export=_studio_export(prepared, formats, _input_paths(args, plan)),
    )
    progress("computing the first summary")
    session.summary()
    uploads = UploadConfig(
        open=_studio_opener(args, formats),
        kinds=tuple(
            (k, s.label_zh, s.label_en) for k, s in load_layer_table(plan.layer_table).items()
        ),
    )
    app = create_app(session, token=token, lang=plan.lang, uploads=uploads)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}/" + (f"?token={token}" if token else "")
    return app, url, token


def _studio_export(prepared: Prepared, formats: list[str], inputs_used: list[Path]) -> Any:
    """An export from the page: ``run``'s analysis and writers into a new folder."""
    from layers.atomic import atomic_dir

    def export(edited: Any, target: Path, step: Any) -> dict:
        with atomic_dir(target, force=False, inputs=inputs_used) as work:
            result = analyse_prepared(prepared, progress=step, inputs=edited)
            step("writing map, report and GIS layers")
            return write_outputs(result, work, plan=prepared.plan, formats=formats)

    return export


def _studio_opener(args: argparse.Namespace, formats: list[str]) -> Any:
    """How the studio opens uploaded files: as ``run`` would with these files as its flags.

    The upload's files and per-file options become ``--residents``, ``--layer KIND=FILE``,
    ``--areas``, ``--network``, ``--coords``, ``--*-layer`` and ``--*-columns``; the analysis
    flags ``serve`` was started with (minutes, speeds, CRS, targets, layer table) still apply,
    the plan file's inputs do not.  So the checks and one-line errors are the CLI's own.
    """

    def open_upload(up: Any, step: Any) -> Any:
        from coverage.whatif import Study
        from maps.studio.session import StudyStart

        coords = [c for c in args.coords if "=" not in c]  # serve's bare --coords SYS stays
        coords += [f"{k}={s.coords}" for k, s in up.layers if s.coords]
        coords += [f"{n}={s.coords}" for n, s in (("residents", up.residents), ("areas", up.areas))
                   if s is not None and s.coords]  # fmt: skip
        areas = up.areas
        ns = argparse.Namespace(
            **{
                **vars(args),
                "plan": None,
                "network": up.network.path,
                "place": None,
                "residents": up.residents.path,
                "residents_layer": up.residents.layer,
                "residents_columns": up.residents.columns,
                "layer": [f"{k}={s.path}" for k, s in up.layers],
                "layer_sheet": [f"{k}={s.layer}" for k, s in up.layers if s.layer],
                "layer_columns": [f"{k}:{s.columns}" for k, s in up.layers if s.columns],
                "areas": None if areas is None else areas.path,
                "areas_layer": None if areas is None else areas.layer,
                "areas_columns": None if areas is None else areas.columns,
                "communities": None,
                "communities_layer": None,
                "communities_columns": None,
                "candidates": None,
                "candidates_layer": None,
                "candidates_columns": None,
                "coords": coords,
                "suggest": [],
                "title": up.title or args.title,
            }
        )
        plan, coords_by_layer = _plan_from_args(ns)
        plan.check()
        prepared = prepare(
            plan,
            coords_by_layer=coords_by_layer,
            progress=step,
            synthetic=_demo_inputs(plan),
            cache_dir=args.cache_dir,
        )
        step("routing every layer for live edits")
        return StudyStart(
            study=Study.route(prepared.net, prepared.inputs, prepared.options),
            title=plan.title,
            synthetic=prepared.synthetic,
            sources=prepared.sources,
            folder=up.folder,
            export=_studio_export(prepared, formats, _input_paths(ns, plan)),
        )

    return open_upload


def _check_port(host: str, port: int) -> None:
    """A port in use fails now, in one line, before the study is built."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            msg = f"--host {host} --port {port}: cannot listen there ({err.strerror})"
            raise InputError(msg, fix=f"pass another --port (e.g. --port {port + 1})") from err


def _serve(args: argparse.Namespace, progress: Progress) -> int:
    import uvicorn

    _check_port(args.host, args.port)
    app, url, token = studio_app(args, progress)
    if token and not _loopback(args.host):
        print(f"listening on {args.host}: every request needs the token {token}", flush=True)
    print(f"studio: {url}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
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
        if args.command == "serve":
            return _serve(args, progress)
        # every option is checked before any work: a typo costs a second, not a network build
        formats = parse_formats(args.formats)
        if args.dask:
            from coverage.distributed import parse_dask

            parse_dask(args.dask)  # a typo is one line now, not after the network is built
        if args.command == "demo":
            plan, coords_by_layer = None, dict[str, str]()
            merge(Plan(), **_common_overrides(args)).check_options()
        else:
            plan, coords_by_layer = _plan_from_args(args)
            plan.check()
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
                synthetic=args.command == "demo" or _demo_inputs(plan),
                formats=formats,
                cache_dir=args.cache_dir,
                work=work,
                dask=args.dask,
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
            f"internal error: {type(err).__name__}: {err} (a bug, not your mistake: please "
            "report it with the output of the same command run with --verbose)",
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

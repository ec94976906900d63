"""The study plan: which files, which layers, speeds, minutes and suggestions.

A plan comes from a TOML file, from command-line flags, or both (a flag overrides the file).
Everything is checked here, before any heavy work, so a typo costs a second, not a network
build.  Relative paths in a plan file are relative to the plan file.

Plan file keys (all optional except what a run needs)::

    title = "上城区15分钟公共服务圈"
    network = "westlake_10km.osm.pbf"      # or place = "上城区, 杭州市, 中国"
    residents = "residents.gpkg"             # residents_layer = "..." (GeoPackage layer/sheet)
    streets = "areas.gpkg"                   # 街道 polygons  (streets_layer = "...")
    communities = "areas.gpkg"               # 社区 polygons  (communities_layer = "...")
    candidates = "candidates.geojson"        # candidates_layer = "..."
    layer_table = "my_layers.toml"
    coords = "wgs84"                         # default system of CSV/XLSX point tables
    minutes = [5, 10, 15]                    # or one number: minutes = 15
    lang = "zh"
    crs = 4549                               # metric CRS for the analysis (default local UTM)
    export_crs = "wgs84"                     # wgs84 | cgcs2000 | gcj02 | EPSG code
    model = "mclp"
    max_snap_m = 300
    [layers]                                 # kind = file, or kind = {file=..., coords=...}
    canteen = {file = "canteens.csv", coords = "gcj02", columns = {capacity = "座位数"}}
    neighborhood_center = {file = "services.xlsx", layer = "邻里中心"}   # sheet or layer
    elderly_station = "stations.geojson"
    [suggest]
    canteen = 5
    [speed]
    canteen = 3.3
    [residents_columns]                      # rename: our name = your column
    population = "常住人口"                  # also elderly, youth, id, name
    elderly = "60岁以上"
    [streets_columns]                        # the column naming each 街道
    name = "街道名称"
    [communities_columns]                    # each 社区's name and its 街道
    name = "社区名称"
    parent = "所属街道"
    [candidates_columns]                     # id, name, capacity (also per layer: columns)
    name = "地址"

``[suggest]`` takes a whole number of sites for ``mclp``, ``pmedian`` and ``capacitated``;
``lscp`` finds the fewest sites itself, so it takes ``KIND = true`` (or 0), never a number.

Every key at every level is checked (a misspelt key is refused with the closest valid one named),
counts are whole numbers, speeds are walking speeds in km/h.  The file may be UTF-8 or GBK (see
:mod:`layers.tomlfile`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from layers.errors import InputError
from layers.tomlfile import check_keys, finite_number, read_toml

MODELS = ("mclp", "lscp", "pmedian", "capacitated")
LANGS = ("zh", "en")
BASEMAPS = ("osm", "none", "gcj02")
#: GIS export formats (as :mod:`maps.export` writes them) and the other names users write.
EXPORT_FORMATS = ("gpkg", "geojson", "shp", "parquet", "csv")
_FORMAT_ALIASES = {
    "shapefile": "shp",
    "geoparquet": "parquet",
    "geopackage": "gpkg",
    "json": "geojson",
}
_KNOWN_KEYS = {
    "title",
    "network",
    "place",
    "residents",
    "residents_layer",
    "streets",
    "streets_layer",
    "communities",
    "communities_layer",
    "candidates",
    "candidates_layer",
    "layer_table",
    "coords",
    "minutes",
    "lang",
    "crs",
    "export_crs",
    "model",
    "max_snap_m",
    "layers",
    "suggest",
    "speed",
    "residents_columns",
    "streets_columns",
    "communities_columns",
    "candidates_columns",
    "basemap",
    "buffer_m",
    "time_limit_s",
    "targets",
}
_LAYER_KEYS = ("file", "coords", "layer", "columns")
#: Column keys each input takes (our name -> the user's column); residents also take every
#: target group of the layer table (``elderly``, ``youth``...).
POINT_COLUMN_KEYS = ("id", "name", "capacity")
RESIDENT_COLUMN_KEYS = ("population", "id", "name")
STREET_COLUMN_KEYS = ("name",)
COMMUNITY_COLUMN_KEYS = ("name", "parent")
#: The column tables of a plan file and the flag that sets each (for messages).
COLUMN_TABLES = {
    "residents_columns": "--residents-columns",
    "streets_columns": "--areas-columns",
    "communities_columns": "--communities-columns",
    "candidates_columns": "--candidates-columns",
}
_EXAMPLE = {"max_snap_m": 300, "buffer_m": 1000, "time_limit_s": 30}


@dataclass(frozen=True)
class LayerInput:
    """One facility layer's file and, optionally, its coordinate system, layer and columns.

    ``layer`` is the GeoPackage layer or XLSX sheet inside ``file``; ``columns`` maps our
    names (``id``, ``name``, ``capacity``) to the user's columns.
    """

    kind: str
    file: Path
    coords: str | None = None
    layer: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """Everything a run needs, checked."""

    title: str = "15分钟公共服务圈"
    network: Path | None = None
    place: str | None = None
    residents: Path | None = None
    residents_layer: str | None = None
    residents_columns: Mapping[str, str] = field(default_factory=dict)
    streets: Path | None = None
    streets_layer: str | None = None
    communities: Path | None = None
    communities_layer: str | None = None
    candidates: Path | None = None
    candidates_layer: str | None = None
    streets_columns: Mapping[str, str] = field(default_factory=dict)
    communities_columns: Mapping[str, str] = field(default_factory=dict)
    candidates_columns: Mapping[str, str] = field(default_factory=dict)
    layers: tuple[LayerInput, ...] = ()
    layer_table: Path | None = None
    coords: str | None = None
    minutes: tuple[float, ...] | None = None
    speed: Mapping[str, float] = field(default_factory=dict)
    suggest: Mapping[str, int] = field(default_factory=dict)
    model: str = "mclp"
    lang: str = "zh"
    crs: str | None = None
    export_crs: str = "wgs84"
    basemap: str = "osm"
    max_snap_m: float = 300.0
    buffer_m: float = 1000.0
    time_limit_s: float = 30.0
    targets: tuple[Mapping[str, Any], ...] = ()
    targets_file: str = "plan"

    def check(self) -> Plan:
        """Raise :class:`InputError` for anything a run cannot start with.

        Everything that needs no data file is checked here, so a typo fails in a second.  That
        the analysis CRS keeps distances over the study area needs the residents' extent:
        :func:`layers.crs.check_metric_crs` does it once they are read.
        """
        if self.network is None and self.place is None:
            msg = "no street network given"
            raise InputError(
                msg, fix="pass --network FILE (.osm.pbf/.osm/.graphml) or --place NAME"
            )
        if self.residents is None:
            msg = "no residents given"
            raise InputError(msg, fix="pass --residents FILE")
        if not self.layers:
            msg = "no facility layer given"
            raise InputError(msg, fix="pass --layer KIND=FILE (repeatable)")
        files = [
            self.network,
            self.residents,
            self.streets,
            self.communities,
            self.candidates,
            self.layer_table,
            *[li.file for li in self.layers],
        ]
        for f in files:
            if f is not None and not f.exists():
                msg = "file not found"
                raise InputError(msg, file=f, fix="check the path")
        self.check_options()
        from layers.crs import parse_coord_system

        for coords, how in [
            (self.coords, "--coords "),
            *[(li.coords, f"--coords {li.kind}=") for li in self.layers],
        ]:
            if coords is not None:
                try:
                    parse_coord_system(coords)
                except InputError as err:
                    msg = f"{how}{coords}: {err.problem}"
                    raise InputError(msg, fix=err.fix) from None
        for key, flag in (
            ("max_snap_m", "--max-snap-m 300"),
            ("buffer_m", "buffer_m = 1000 in the plan"),
            ("time_limit_s", "time_limit_s = 30 in the plan"),
        ):
            _positive(getattr(self, key), where=key, file=None, example=flag)
        return self._check_layers()

    def check_options(self) -> Plan:
        """The options that need no input file: model, language, CRSs, basemap.

        ``app.py demo`` checks these before it generates its district.
        """
        from layers.crs import parse_coord_system, parse_metric_crs

        if self.model not in MODELS:
            msg = f"unknown model '{self.model}'"
            raise InputError(
                msg,
                fix=f"{_did_you_mean(self.model, MODELS)}use --model {' | '.join(MODELS)}",
            )
        if self.lang not in LANGS:
            msg = f"unknown language '{self.lang}'"
            raise InputError(msg, fix="use --lang zh or --lang en")
        if self.crs is not None:
            parse_metric_crs(self.crs, flag="--crs")
        try:
            parse_coord_system(self.export_crs)
        except InputError as err:
            msg = f"--export-crs {self.export_crs}: {err.problem}"
            near = re.search(r"did you mean '[^']+'\? ", err.fix or "")
            raise InputError(
                msg,
                fix=f"{near.group(0) if near else ''}write --export-crs (plan: export_crs) as "
                "wgs84, cgcs2000, gcj02, bd09 or an EPSG code such as 4549",
            ) from None
        if self.basemap not in BASEMAPS:
            msg = f"unknown basemap '{self.basemap}'"
            raise InputError(
                msg,
                fix=f"{_did_you_mean(self.basemap, BASEMAPS)}use --basemap (plan: basemap) "
                f"{' | '.join(BASEMAPS)}",
            )
        return self

    def _check_layers(self) -> Plan:
        from layers.spec import TARGET_GROUP_LABELS, check_speed_kmh, load_layer_table

        specs = load_layer_table(self.layer_table)
        kinds = [li.kind for li in self.layers]
        for kind in kinds:
            if kind not in specs:
                msg = f"unknown layer kind '{kind}'"
                raise InputError(
                    msg,
                    fix=f"{_did_you_mean(kind, specs)}use one of {', '.join(specs)}, "
                    "or add it to a --layer-table file",
                )
        for table, flag in ((self.suggest, "--suggest"), (self.speed, "--speed")):
            for kind in table:
                if kind not in kinds:
                    msg = f"{flag} '{kind}' is not one of the given layers"
                    raise InputError(
                        msg,
                        fix=f"{_did_you_mean(kind, kinds)}use one of {', '.join(kinds)} "
                        f"or add --layer {kind}=FILE",
                    )
        for kind, n in self.suggest.items():
            _check_suggest(kind, n, self.model)
        for kind, kmh in self.speed.items():
            check_speed_kmh(
                kmh,
                where=f"speed of '{kind}'",
                file=None,
                example=f"--speed {kind}=3.6 (or {kind} = 3.6 under [speed] in the plan)",
            )
        groups = dict.fromkeys([*TARGET_GROUP_LABELS, *(s.target_group for s in specs.values())])
        check_keys(
            self.residents_columns,
            dict.fromkeys([*groups, *RESIDENT_COLUMN_KEYS]),
            where="--residents-columns / [residents_columns]",
            file=None,
        )
        for key, allowed in (
            ("streets_columns", STREET_COLUMN_KEYS),
            ("communities_columns", COMMUNITY_COLUMN_KEYS),
            ("candidates_columns", POINT_COLUMN_KEYS),
        ):
            check_keys(
                getattr(self, key), allowed, where=f"{COLUMN_TABLES[key]} / [{key}]", file=None
            )
        for li in self.layers:
            check_keys(
                li.columns,
                POINT_COLUMN_KEYS,
                where=f"--layer-columns {li.kind}: / columns of [layers] {li.kind}",
                file=None,
            )
        return self


def _check_suggest(kind: str, n: int, model: str) -> None:
    """A number of new sites fits the model: LSCP chooses its own number, the others need one.

    ``0`` stands for "no number given" (``--suggest KIND`` or ``KIND = true``).
    """
    if model == "lscp":
        if n > 0:
            msg = (
                f"--suggest {kind}={n}: --model lscp finds the fewest sites that reach every "
                "reachable resident; it takes no number of sites"
            )
            raise InputError(
                msg,
                fix=f"drop ={n} (--suggest {kind}, or {kind} = true under [suggest]), "
                f"or use --model mclp to place {n} sites",
            )
        if n < 0:
            msg = f"--suggest {kind}={n}: a number of sites cannot be negative"
            raise InputError(msg, fix=f"write --suggest {kind}")
        return
    if n == 0:
        msg = f"--suggest {kind}: --model {model} places a given number of new sites"
        raise InputError(
            msg,
            fix=f"write --suggest {kind}=5 ({kind} = 5 under [suggest]), "
            "or use --model lscp to find the fewest sites that reach everyone",
        )
    if n < 0:
        msg = f"--suggest {kind}={n}: the number of sites must be positive"
        raise InputError(msg, fix=f"write e.g. --suggest {kind}=5")


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    from layers.validate import closest

    near = closest(name, [str(o) for o in options])
    return f"did you mean '{near}'? " if near else ""


def _positive(value: Any, *, where: str, file: str | None, example: str) -> float:
    number = finite_number(value)
    if number is None or number <= 0:
        msg = f"'{where}' must be a positive number, got {value!r}"
        raise InputError(msg, file=file, fix=f"write {example}")
    return number


def whole_count(value: Any, *, where: str, example: str, file: str | None = None) -> int:
    """A number of sites: ``3`` and ``3.0`` are 3; ``2.7``, text and booleans are refused.

    ``int(2.7)`` is 2, so a silent cast would suggest fewer sites than asked for.
    """
    number = finite_number(value)
    if number is None:
        msg = f"{where}: {value!r} is not a number"
        raise InputError(msg, file=file, fix=f"write {example}")
    if not number.is_integer():
        msg = f"{where}: {number:g} is not a whole number of sites"
        raise InputError(msg, file=file, fix=f"write {example}")
    return int(number)


def _path(value: Any, base: Path | None, key: str, file: str = "plan") -> Path:
    if not isinstance(value, str) or not value:
        msg = f"'{key}' must be a file path"
        raise InputError(msg, file=file, fix=f'write {key} = "FILE"')
    p = Path(value).expanduser()
    return p if p.is_absolute() or base is None else base / p


def parse_minutes(
    text: str | float | list[Any] | tuple[Any, ...], *, file: str | None = None
) -> tuple[float, ...]:
    """Walking minutes: ``"5,10,15"`` (``--minutes``), ``[5, 10, 15]`` or ``15`` (plan file).

    A plan's ``minutes`` is a number or a list of numbers; text and booleans there are refused
    (``true`` would be 1 minute).
    """
    example = "--minutes 5,10,15" if file is None else "minutes = [5, 10, 15]"
    if isinstance(text, str):
        if file is not None:
            msg = f"minutes {text!r} is text, not numbers"
            raise InputError(msg, file=file, fix=f"write {example}")
        items: list[Any] = [v for v in text.split(",") if v.strip()]
    elif isinstance(text, int | float) and not isinstance(text, bool):
        items = [text]
    elif isinstance(text, list | tuple):
        items = list(text)
        if file is not None and any(isinstance(v, str | bool) for v in items):
            msg = f"minutes {text!r} must be numbers"
            raise InputError(msg, file=file, fix=f"write {example}")
    else:
        msg = f"minutes {text!r} must be a number or a list of numbers"
        raise InputError(msg, file=file, fix=f"write {example}")
    values = [finite_number(v) for v in items]
    if not values or any(v is None for v in values):
        msg = f"minutes {text!r} are not numbers"
        raise InputError(msg, file=file, fix=f"write {example}")
    if any(v is None or v <= 0 for v in values):
        msg = f"minutes {text!r} must be positive"
        raise InputError(msg, file=file, fix=f"write {example}")
    return tuple(sorted({v for v in values if v is not None}))


def parse_formats(text: str) -> list[str]:
    """``--formats gpkg,csv``: checked before any work, so a typo does not cost a whole run."""
    out: list[str] = []
    for item in text.split(","):
        key = item.strip().lower().lstrip(".")
        if not key:
            continue
        key = _FORMAT_ALIASES.get(key, key)
        if key not in EXPORT_FORMATS:
            msg = f"--formats: '{item.strip()}' is not an export format"
            raise InputError(
                msg,
                fix=f"{_did_you_mean(key, EXPORT_FORMATS)}write --formats with any of "
                f"{','.join(EXPORT_FORMATS)} (comma-separated)",
            )
        if key not in out:
            out.append(key)
    if not out:
        msg = "--formats names no export format"
        raise InputError(msg, fix=f"write e.g. --formats {','.join(EXPORT_FORMATS)}")
    return out


def parse_pair(
    text: str,
    *,
    flag: str,
    number: type = str,
    example: str = "canteen=...",
    shape: str = "KIND=VALUE",
) -> tuple[str, Any]:
    """``KIND=VALUE`` of a repeatable flag; ``example`` is shown after the flag in a fix."""
    if "=" not in text:
        msg = f"{flag} {text}: expected {shape}"
        raise InputError(msg, fix=f"write e.g. {flag} {example}")
    key, _, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not key or not value:
        msg = f"{flag} {text}: expected {shape}"
        raise InputError(msg, fix=f"write e.g. {flag} {example}")
    if number is str:
        return key, value
    if number is int:
        return key, whole_count(value, where=f"{flag} {text}", example=f"{flag} {key}=5")
    parsed = finite_number(value)
    if parsed is None:
        msg = f"{flag} {text}: '{value}' is not a number"
        raise InputError(msg, fix=f"write e.g. {flag} {key}=5")
    return key, number(parsed)


def read_plan(path: str | Path) -> Plan:
    """Read a TOML plan file (paths in it are relative to the file)."""
    p = Path(path)
    data = read_toml(p, what="plan file")
    return plan_from_mapping(data, base=p.parent, file=str(p))


def plan_from_mapping(
    data: Mapping[str, Any], *, base: Path | None = None, file: str = "plan"
) -> Plan:
    """Build a :class:`Plan` from a parsed TOML table.

    Every key at every level is checked: a misspelt key would otherwise be ignored and its
    default used without a word.
    """
    check_keys(data, _KNOWN_KEYS, where="plan", file=file)
    kw: dict[str, Any] = {}
    for key in ("network", "residents", "streets", "communities", "candidates", "layer_table"):
        if key in data:
            kw[key] = _path(data[key], base, key, file)
    for key in (
        "title",
        "place",
        "residents_layer",
        "streets_layer",
        "communities_layer",
        "candidates_layer",
        "model",
        "lang",
        "basemap",
    ):
        if key in data:
            kw[key] = _text(data[key], key, file)
    for key in ("coords", "export_crs", "crs"):
        if key in data:
            kw[key] = _system_text(data[key], key, file)
    for key in ("max_snap_m", "buffer_m", "time_limit_s"):
        if key in data:
            kw[key] = _positive(data[key], where=key, file=file, example=f"{key} = {_EXAMPLE[key]}")
    if "minutes" in data:
        kw["minutes"] = parse_minutes(data["minutes"], file=file)
    layers = []
    for kind, entry in _table(data, "layers", file).items():
        where = f"[layers] {kind}"
        if isinstance(entry, str):
            layers.append(LayerInput(kind, _path(entry, base, where, file)))
        elif isinstance(entry, dict) and "file" in entry:
            check_keys(entry, _LAYER_KEYS, where=where, file=file)
            coords = entry.get("coords")
            inner = entry.get("layer")
            layers.append(
                LayerInput(
                    kind,
                    _path(entry["file"], base, where, file),
                    None if coords is None else _system_text(coords, f"{where}.coords", file),
                    None if inner is None else _text(inner, f"{where}.layer", file),
                    _columns(entry.get("columns", {}), f"{where}.columns", file),
                )
            )
        else:
            if isinstance(entry, dict):
                check_keys(entry, _LAYER_KEYS, where=where, file=file)
            msg = f"{where} must be a file or {{file = ..., coords = ...}}"
            raise InputError(msg, file=file, fix=f'write {kind} = {{file = "FILE"}} under [layers]')
    kw["layers"] = tuple(layers)
    # ``KIND = true`` asks for suggestions without a number (LSCP chooses it): stored as 0
    kw["suggest"] = {
        kind: 0
        if v is True
        else whole_count(
            v, where=f"[suggest] {kind}", example=f"{kind} = 5 under [suggest]", file=file
        )
        for kind, v in _table(data, "suggest", file).items()
    }
    speeds = {}
    for kind, v in _table(data, "speed", file).items():
        number = finite_number(v)
        if number is None:
            msg = f"[speed] {kind}: {v!r} is not a number"
            raise InputError(msg, file=file, fix=f"write {kind} = 3.6 under [speed] (km/h)")
        speeds[kind] = number
    kw["speed"] = speeds
    if "targets" in data:
        raw = data["targets"]
        if isinstance(raw, str):
            tfile = _path(raw, base, "targets", file)
            kw["targets"], kw["targets_file"] = read_targets_file(tfile), str(tfile)
        elif isinstance(raw, list) and all(isinstance(e, dict) for e in raw):
            kw["targets"], kw["targets_file"] = tuple(raw), file
        else:
            msg = "'targets' must be [[targets]] tables or a TOML file path"
            raise InputError(msg, file=file, fix='write targets = "targets.toml"')
    for key in COLUMN_TABLES:
        kw[key] = _columns(_table(data, key, file), f"[{key}]", file)
    return Plan(**kw)


def _columns(value: Any, where: str, file: str) -> dict[str, str]:
    """A column table (our name = the user's column), every value text."""
    if not isinstance(value, dict):
        msg = f"{where} must be a table of our name = your column, got {value!r}"
        raise InputError(msg, file=file, fix='write e.g. columns = {name = "名称"}')
    return {str(k): _text(v, f"{where} {k}", file) for k, v in value.items()}


def parse_columns(text: str, *, flag: str) -> dict[str, str]:
    """``KEY=COLUMN,...`` of a ``--*-columns`` flag (``population=常住人口,elderly=60岁以上``).

    Column names are taken as written (spaces inside kept); a comma always separates pairs.
    """
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, value = parse_pair(item, flag=flag, example="name=名称", shape="KEY=COLUMN")
        out[key] = value
    if not out:
        msg = f"{flag} {text!r}: expected KEY=COLUMN"
        raise InputError(msg, fix=f"write e.g. {flag} name=名称")
    return out


def _table(data: Mapping[str, Any], key: str, file: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        msg = f"'{key}' must be a [{key}] table, got {value!r}"
        raise InputError(
            msg, file=file, fix=f"write [{key}] on its own line, then KIND = ... lines"
        )
    return value


def _text(value: Any, key: str, file: str) -> str:
    if not isinstance(value, str):
        msg = f"'{key}' must be text in quotes, got {value!r}"
        raise InputError(msg, file=file, fix=f'write {key} = "..."')
    return value


def _system_text(value: Any, key: str, file: str) -> str:
    """A coordinate system: a name or code in quotes, or a bare EPSG number (``crs = 4549``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value, key, file)


def read_targets_file(path: str | Path) -> tuple[Mapping[str, Any], ...]:
    """The ``[[targets]]`` tables of a TOML file (see :mod:`coverage.targets`)."""
    p = Path(path)
    data = read_toml(p, what="targets file")
    check_keys(data, ("targets",), where="targets file", file=p)
    entries = data.get("targets")
    tables = isinstance(entries, list) and all(isinstance(e, dict) for e in entries)
    if not tables or not entries:
        msg = "no [[targets]] tables"
        raise InputError(msg, file=p, fix="write one [[targets]] per target")
    return tuple(entries)


def merge(plan: Plan, **overrides: Any) -> Plan:
    """A flag overrides the plan file; ``None`` and empty values leave the plan's value."""
    kw = {}
    for key, value in overrides.items():
        if value is None or value == () or value == {}:
            continue
        if key == "layers":
            given = {li.kind: li for li in plan.layers}
            given.update({li.kind: li for li in value})
            value = tuple(given.values())
        elif key in ("suggest", "speed", *COLUMN_TABLES):
            value = {**getattr(plan, key), **value}
        kw[key] = value
    return replace(plan, **kw)

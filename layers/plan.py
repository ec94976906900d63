"""The study plan: which files, which layers, speeds, minutes and suggestions.

A plan comes from a TOML file, from command-line flags, or both (a flag overrides the file).
Everything is checked here, before any heavy work, so a typo costs a second, not a network
build.  Relative paths in a plan file are relative to the plan file.

Plan file keys (all optional except what a run needs)::

    title = "上城区15分钟公共服务圈"
    network = "westlake_10km.osm.pbf"      # or place = "上城区, 杭州市, 中国"
    residents = "residents.gpkg"
    streets = "areas.gpkg"                   # 街道 polygons  (streets_layer = "...")
    communities = "areas.gpkg"               # 社区 polygons  (communities_layer = "...")
    candidates = "candidates.geojson"
    layer_table = "my_layers.toml"
    coords = "wgs84"                         # default system of CSV/XLSX point tables
    minutes = [5, 10, 15]
    lang = "zh"
    crs = 4549                               # metric CRS for the analysis (default local UTM)
    export_crs = "wgs84"                     # wgs84 | cgcs2000 | gcj02 | EPSG code
    model = "mclp"
    max_snap_m = 300
    [layers]                                 # kind = file, or kind = {file=..., coords=...}
    canteen = {file = "canteens.csv", coords = "gcj02"}
    neighborhood_center = "centers.geojson"
    [suggest]
    canteen = 5
    [speed]
    canteen = 3.3
    [residents_columns]                      # rename: our name = your column
    population = "常住人口"
    elderly = "60岁以上"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from layers.errors import InputError
from layers.tomlfile import read_toml

MODELS = ("mclp", "lscp", "pmedian", "capacitated")
LANGS = ("zh", "en")
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
    "basemap",
    "buffer_m",
    "time_limit_s",
    "targets",
}


@dataclass(frozen=True)
class LayerInput:
    """One facility layer's file and, optionally, its coordinate system."""

    kind: str
    file: Path
    coords: str | None = None


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
        """Raise :class:`InputError` for anything a run cannot start with."""
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
        if self.model not in MODELS:
            msg = f"unknown model '{self.model}'"
            raise InputError(msg, fix=f"use one of {', '.join(MODELS)}")
        if self.lang not in LANGS:
            msg = f"unknown language '{self.lang}'"
            raise InputError(msg, fix="use zh or en")
        if self.crs is not None:
            import pyproj

            try:
                chosen = pyproj.CRS.from_user_input(self.crs)
            except pyproj.exceptions.CRSError:
                msg = f"unreadable CRS '{self.crs}'"
                raise InputError(msg, fix="give an EPSG code such as 4549 or 32651") from None
            if not chosen.is_projected:
                msg = f"CRS {chosen.name} is not projected in metres"
                raise InputError(msg, fix="choose a metric CRS such as EPSG:4549 or 32651")
        kinds = [li.kind for li in self.layers]
        for kind in list(self.suggest) + list(self.speed):
            if kind not in kinds:
                msg = f"'{kind}' is not one of the given layers"
                raise InputError(
                    msg, fix=f"use one of {', '.join(kinds)} or add --layer {kind}=FILE"
                )
        for kind, n in self.suggest.items():
            if n < 0 or (n == 0 and self.model != "lscp"):
                msg = f"--suggest {kind}={n}: the number of sites must be positive"
                raise InputError(msg, fix=f"write e.g. --suggest {kind}=5")
        return self


def _path(value: Any, base: Path | None, key: str) -> Path:
    if not isinstance(value, str) or not value:
        msg = f"'{key}' must be a file path"
        raise InputError(msg, file="plan", fix=f'write {key} = "FILE"')
    p = Path(value).expanduser()
    return p if p.is_absolute() or base is None else base / p


def parse_minutes(text: str | list[Any] | tuple[Any, ...]) -> tuple[float, ...]:
    """``"5,10,15"`` or ``[5, 10, 15]`` to positive minutes."""
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        values = tuple(float(str(v).strip()) for v in items if str(v).strip())
    except ValueError:
        msg = f"minutes '{text}' are not numbers"
        raise InputError(msg, fix="write e.g. --minutes 5,10,15") from None
    if not values or any(v <= 0 for v in values):
        msg = f"minutes '{text}' must be positive"
        raise InputError(msg, fix="write e.g. --minutes 5,10,15")
    return tuple(sorted(set(values)))


def parse_pair(text: str, *, flag: str, number: type = str) -> tuple[str, Any]:
    """``KIND=VALUE`` of a repeatable flag."""
    if "=" not in text:
        msg = f"{flag} {text}: expected KIND=VALUE"
        raise InputError(msg, fix=f"write e.g. {flag} canteen=...")
    key, _, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not key or not value:
        msg = f"{flag} {text}: expected KIND=VALUE"
        raise InputError(msg, fix=f"write e.g. {flag} canteen=...")
    if number is str:
        return key, value
    try:
        return key, number(value)
    except ValueError:
        msg = f"{flag} {text}: '{value}' is not a number"
        raise InputError(msg, fix=f"write e.g. {flag} {key}=5") from None


def read_plan(path: str | Path) -> Plan:
    """Read a TOML plan file (paths in it are relative to the file)."""
    p = Path(path)
    data = read_toml(p, what="plan file")
    return plan_from_mapping(data, base=p.parent, file=str(p))


def plan_from_mapping(
    data: Mapping[str, Any], *, base: Path | None = None, file: str = "plan"
) -> Plan:
    """Build a :class:`Plan` from a parsed TOML table."""
    import difflib

    for key in data:
        if key not in _KNOWN_KEYS:
            near = difflib.get_close_matches(key, sorted(_KNOWN_KEYS), n=1)
            hint = f"did you mean '{near[0]}'?" if near else "see the plan keys in the README"
            msg = f"unknown key '{key}'"
            raise InputError(msg, file=file, fix=hint)
    kw: dict[str, Any] = {}
    for key in ("network", "residents", "streets", "communities", "candidates", "layer_table"):
        if key in data:
            kw[key] = _path(data[key], base, key)
    for key in (
        "title",
        "place",
        "residents_layer",
        "streets_layer",
        "communities_layer",
        "coords",
        "model",
        "lang",
        "export_crs",
        "basemap",
    ):
        if key in data:
            kw[key] = str(data[key])
    if "crs" in data:
        kw["crs"] = str(data["crs"])
    for key in ("max_snap_m", "buffer_m", "time_limit_s"):
        if key in data:
            try:
                kw[key] = float(data[key])
            except (TypeError, ValueError):
                msg = f"'{key}' must be a number"
                raise InputError(msg, file=file, fix=f"write {key} = 300") from None
    if "minutes" in data:
        kw["minutes"] = parse_minutes(data["minutes"])
    layers = []
    for kind, entry in dict(data.get("layers", {})).items():
        if isinstance(entry, str):
            layers.append(LayerInput(kind, _path(entry, base, f"layers.{kind}")))
        elif isinstance(entry, dict) and "file" in entry:
            layers.append(
                LayerInput(
                    kind,
                    _path(entry["file"], base, f"layers.{kind}"),
                    None if entry.get("coords") is None else str(entry["coords"]),
                )
            )
        else:
            msg = f"layers.{kind} must be a file or {{file=..., coords=...}}"
            raise InputError(msg, file=file, fix=f'write {kind} = "FILE"')
    kw["layers"] = tuple(layers)
    for key, cast in (("suggest", int), ("speed", float)):
        table = {}
        for kind, v in dict(data.get(key, {})).items():
            try:
                table[kind] = cast(v)
            except (TypeError, ValueError):
                msg = f"{key}.{kind} must be a number"
                raise InputError(msg, file=file, fix=f"write {kind} = 5 under [{key}]") from None
        kw[key] = table
    if "targets" in data:
        raw = data["targets"]
        if isinstance(raw, str):
            tfile = _path(raw, base, "targets")
            kw["targets"], kw["targets_file"] = read_targets_file(tfile), str(tfile)
        elif isinstance(raw, list) and all(isinstance(e, dict) for e in raw):
            kw["targets"], kw["targets_file"] = tuple(raw), file
        else:
            msg = "'targets' must be [[targets]] tables or a TOML file path"
            raise InputError(msg, file=file, fix='write targets = "targets.toml"')
    kw["residents_columns"] = {
        str(k): str(v) for k, v in dict(data.get("residents_columns", {})).items()
    }
    return Plan(**kw)


def read_targets_file(path: str | Path) -> tuple[Mapping[str, Any], ...]:
    """The ``[[targets]]`` tables of a TOML file (see :mod:`coverage.targets`)."""
    p = Path(path)
    data = read_toml(p, what="targets file")
    entries = data.get("targets")
    if not isinstance(entries, list) or not entries:
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
        elif key in ("suggest", "speed", "residents_columns"):
            value = {**getattr(plan, key), **value}
        kw[key] = value
    return replace(plan, **kw)

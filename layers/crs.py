"""Coordinate systems met in Chinese planning data, and conversion to and from WGS84.

Four names cover almost every file a district receives:

``wgs84``
    GPS / OpenStreetMap longitude-latitude (EPSG:4326).
``cgcs2000``
    China Geodetic Coordinate System 2000 (EPSG:4490), the official datum of Chinese
    surveying.  It differs from WGS84 by well under 1 m, so pyproj's transformation is a
    no-op in practice, but the CRS is kept so that files written in it say so.
``gcj02``
    The obfuscated "Mars" coordinates of Amap (高德), Tencent and Apple maps in China.  No
    EPSG code exists: coordinates are longitude-latitude shifted by a published non-linear
    offset of a few hundred metres.  Outside China the offset is not applied.
``bd09``
    Baidu's second offset applied on top of GCJ-02.

Anything else (a projected CRS such as CGCS2000 / 3-degree Gauss-Kruger, a UTM zone, WKT) goes
through pyproj.  GCJ-02 and BD-09 are converted with the vectorised formulas below; their inverses
are solved by fixed-point iteration to below 1e-9 degrees (about 0.1 mm), not by the common
one-step approximation, which is off by up to a few metres.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from typing import Final, TypeAlias, overload

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from layers.errors import InputError

log = logging.getLogger(__name__)

#: A named system (one of :data:`NAMED_SYSTEMS`) or any pyproj CRS.
CoordSystem: TypeAlias = str | CRS

NAMED_SYSTEMS: Final = ("wgs84", "gcj02", "bd09", "cgcs2000")
#: Systems only used in China: data declared in them must lie in China.
CHINESE_SYSTEMS: Final = ("gcj02", "bd09", "cgcs2000")
#: Systems that are offsets of WGS84 longitude-latitude rather than real CRSs.
OFFSET_SYSTEMS: Final = ("gcj02", "bd09")

_ALIASES: Final[dict[str, str]] = {
    "wgs84": "wgs84",
    "wgs": "wgs84",
    "gps": "wgs84",
    "osm": "wgs84",
    "epsg:4326": "wgs84",
    "4326": "wgs84",
    "gcj02": "gcj02",
    "gcj": "gcj02",
    "mars": "gcj02",
    "amap": "gcj02",
    "gaode": "gcj02",
    "tencent": "gcj02",
    "火星坐标": "gcj02",
    "火星坐标系": "gcj02",
    "国测局坐标": "gcj02",
    "高德": "gcj02",
    "腾讯": "gcj02",
    "bd09": "bd09",
    "bd09ll": "bd09",
    "baidu": "bd09",
    "百度": "bd09",
    "百度坐标": "bd09",
    "cgcs2000": "cgcs2000",
    "epsg:4490": "cgcs2000",
    "4490": "cgcs2000",
    "国家2000": "cgcs2000",
    "2000国家大地坐标系": "cgcs2000",
}

_EPSG_OF: Final = {"wgs84": 4326, "cgcs2000": 4490, "gcj02": 4326, "bd09": 4326}

# GCJ-02 constants as published with the original algorithm: Krasovsky 1940 semi-major axis
# and its first eccentricity squared.
_A: Final = 6378245.0
_EE: Final = 0.00669342162296594323
_X_PI: Final = np.pi * 3000.0 / 180.0

# Box inside which the GCJ-02 offset applies (the rule of the original code, used by
# eviltransform and coordTransform_py): longitude 72.004-137.8347, latitude 0.8293-55.8271.
# It is a rectangle, not China's outline: it also holds Seoul, Pyongyang, Hanoi, Taipei and
# Ulaanbaatar, where Amap, Tencent and Baidu publish unshifted coordinates.  We keep it on
# purpose, because every published converter (and so every file a planner receives) uses it;
# the consequence, documented in the README, is that GCJ-02/BD-09 may only be declared for data
# in mainland China, where this rectangle and the real rule agree.
CHINA_BOX: Final = (72.004, 0.8293, 137.8347, 55.8271)

_INVERSE_TOL_DEG: Final = 1e-10
_INVERSE_MAX_ITER: Final = 30


def _norm_key(text: str) -> str:
    return "".join(text.strip().lower().replace("-", "").replace("_", "").split())


def parse_coord_system(value: str | int | CRS) -> str | CRS:
    """Normalise a user's coordinate-system declaration.

    Returns one of :data:`NAMED_SYSTEMS` for the four common systems (whatever their spelling,
    e.g. ``"GCJ-02"``, ``"高德"``, ``"EPSG:4490"``) and a :class:`pyproj.CRS` otherwise.

    Raises
    ------
    InputError
        When the text is neither a known name nor something pyproj understands; the message
        suggests the closest known name.
    """
    if isinstance(value, CRS):
        return _named_or_crs(value)
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"EPSG:{value}"
    if not isinstance(value, str) or not value.strip():
        msg = f"coordinate system {value!r} is not a name or EPSG code"
        raise InputError(
            msg,
            fix=f"give --coords or --export-crs (plan keys coords, export_crs) one of "
            f"{', '.join(NAMED_SYSTEMS)} or an EPSG code such as EPSG:4549",
        )
    key = _norm_key(value)
    if key in _ALIASES:
        return _ALIASES[key]
    if key.isdigit():
        value = f"EPSG:{key}"
    # only codes, WKT and PROJ strings go to pyproj: its name search would turn a typo such as
    # "mars" into the IAU Mars CRS
    text = value.strip()
    explicit = (
        (":" in text and text.split(":")[0].isalpha()) or text.startswith("+") or ("[" in text)
    )
    try:
        if not explicit:
            raise CRSError(text)
        crs = CRS.from_user_input(text)
        ellipsoid = crs.ellipsoid
        if ellipsoid is None or abs(ellipsoid.semi_major_metre - 6_378_137.0) > 20_000:
            raise CRSError(text)  # not an Earth CRS
    except CRSError:
        close = difflib.get_close_matches(key, list(_ALIASES), n=1, cutoff=0.5)
        hint = f"did you mean '{_ALIASES[close[0]]}'? " if close else ""
        msg = f"unknown coordinate system '{value}'"
        raise InputError(
            msg,
            fix=f"{hint}give --coords or --export-crs (plan keys coords, export_crs) one of "
            f"{', '.join(NAMED_SYSTEMS)} or an EPSG code such as EPSG:4549",
        ) from None
    return _named_or_crs(crs)


def _named_or_crs(crs: CRS) -> str | CRS:
    if crs.to_authority(min_confidence=90) == ("OGC", "CRS84"):
        return "wgs84"  # GeoJSON's longitude-first WGS84
    epsg = crs.to_epsg(min_confidence=90)
    if epsg == 4326:
        return "wgs84"
    if epsg == 4490:
        return "cgcs2000"
    return crs


def system_crs(system: CoordSystem) -> CRS:
    """The CRS that labels data in ``system``.

    GCJ-02 and BD-09 have no CRS of their own; their data is labelled EPSG:4326 because it is
    longitude-latitude, which is what every Chinese tool writes.
    """
    parsed = parse_coord_system(system)
    if isinstance(parsed, CRS):
        return parsed
    return CRS.from_epsg(_EPSG_OF[parsed])


def system_name(system: CoordSystem) -> str:
    """A short label for logs and messages: the name, ``EPSG:n`` or the CRS name."""
    parsed = parse_coord_system(system)
    if isinstance(parsed, str):
        return parsed
    epsg = parsed.to_epsg()
    return f"EPSG:{epsg}" if epsg else parsed.name


def is_offset_system(system: CoordSystem) -> bool:
    """True for GCJ-02 and BD-09: coordinates that need the offset formulas, not pyproj."""
    parsed = parse_coord_system(system)
    return isinstance(parsed, str) and parsed in OFFSET_SYSTEMS


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """Where the GCJ-02 offset applies (the published rectangle; NaN counts as outside)."""
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    x0, y0, x1, y1 = CHINA_BOX
    with np.errstate(invalid="ignore"):
        return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    x, y = np.broadcast_arrays(x, y)
    return np.array(x, dtype=np.float64), np.array(y, dtype=np.float64)


def _gcj_offset(
    lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The GCJ-02 shift (degrees) at a WGS84 point, without the out-of-China rule."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat += common
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlon += common
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return dlon, dlat


def _solve_inverse(
    forward: Callable[
        [NDArray[np.float64], NDArray[np.float64]], tuple[NDArray[np.float64], NDArray[np.float64]]
    ],
    target_x: NDArray[np.float64],
    target_y: NDArray[np.float64],
    guess_x: NDArray[np.float64],
    guess_y: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Solve ``forward(x, y) == target`` by fixed-point iteration from a close guess.

    Both forward maps are the identity plus a slowly varying shift (its derivative is below
    0.03), so each step gains about two digits; a handful of steps reach 1e-10 degrees.  Each
    point stops on its own, so its result does not depend on what else is in the batch.
    """
    x, y = guess_x.copy(), guess_y.copy()
    active = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    for _ in range(_INVERSE_MAX_ITER):
        if active.size == 0:
            break
        fx, fy = forward(x[active], y[active])
        ex, ey = fx - target_x[active], fy - target_y[active]
        x[active] -= ex
        y[active] -= ey
        active = active[np.maximum(np.abs(ex), np.abs(ey)) >= _INVERSE_TOL_DEG]
    return x, y


def _wgs_to_gcj_raw(
    lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def _in_china_only(
    fn: Callable[
        [NDArray[np.float64], NDArray[np.float64]], tuple[NDArray[np.float64], NDArray[np.float64]]
    ],
    lon: ArrayLike,
    lat: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Apply ``fn`` to the points inside China; the others are returned unchanged (copies)."""
    x, y = _as_arrays(lon, lat)
    inside = in_china(x, y)
    if inside.any():
        x[inside], y[inside] = fn(x[inside], y[inside])
    return x, y


def _gcj_to_wgs_raw(
    gx: NDArray[np.float64], gy: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    dx, dy = _gcj_offset(gx, gy)
    return _solve_inverse(_wgs_to_gcj_raw, gx, gy, gx - dx, gy - dy)


def _bd_to_gcj_raw(
    bx: NDArray[np.float64], by: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    ax, ay = _bd_to_gcj_approx(bx, by)
    return _solve_inverse(_gcj_to_bd_raw, bx, by, ax, ay)


def wgs84_to_gcj02(
    lon: ArrayLike, lat: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """WGS84 -> GCJ-02 (the published forward formula; identity outside China)."""
    return _in_china_only(_wgs_to_gcj_raw, lon, lat)


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """GCJ-02 -> WGS84, the exact inverse of :func:`wgs84_to_gcj02` (to ~1e-10 degrees).

    The one-step approximation ``wgs = gcj - offset(gcj)`` used by many libraries leaves errors
    of up to a few metres; iterating removes them.
    """
    return _in_china_only(_gcj_to_wgs_raw, lon, lat)


def _gcj_to_bd_raw(
    lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_to_gcj_approx(
    lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = lon - 0.0065
    y = lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def gcj02_to_bd09(
    lon: ArrayLike, lat: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """GCJ-02 -> BD-09 (Baidu's published forward formula; identity outside China)."""
    return _in_china_only(_gcj_to_bd_raw, lon, lat)


def bd09_to_gcj02(
    lon: ArrayLike, lat: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """BD-09 -> GCJ-02, the exact inverse of :func:`gcj02_to_bd09`.

    The usual closed-form inverse is itself approximate (up to about 1 m off); it is used as the
    starting guess and refined.
    """
    return _in_china_only(_bd_to_gcj_raw, lon, lat)


def wgs84_to_bd09(
    lon: ArrayLike, lat: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """WGS84 -> BD-09 (via GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(
    lon: ArrayLike, lat: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """BD-09 -> WGS84 (via GCJ-02, both steps exact inverses)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


_XY: TypeAlias = tuple[NDArray[np.float64], NDArray[np.float64]]
_TO_WGS: Final[dict[str, Callable[[ArrayLike, ArrayLike], _XY]]] = {
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
}
_FROM_WGS: Final[dict[str, Callable[[ArrayLike, ArrayLike], _XY]]] = {
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
}


def _coords_func(
    fn: Callable[[ArrayLike, ArrayLike], _XY],
) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    def apply(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = fn(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return apply


@overload
def to_wgs84(data: tuple[ArrayLike, ArrayLike], system: CoordSystem | None = None) -> _XY: ...
@overload
def to_wgs84(data: gpd.GeoDataFrame, system: CoordSystem | None = None) -> gpd.GeoDataFrame: ...


def to_wgs84(
    data: gpd.GeoDataFrame | tuple[ArrayLike, ArrayLike], system: CoordSystem | None = None
) -> gpd.GeoDataFrame | _XY:
    """Bring a GeoDataFrame (any geometry type) or an ``(x, y)`` pair into WGS84.

    Parameters
    ----------
    data
        A GeoDataFrame, or a pair of coordinate arrays.
    system
        The system the coordinates are really in.  For a GeoDataFrame it overrides ``data.crs``
        (files from Chinese web maps are often labelled EPSG:4326 while holding GCJ-02);
        ``None`` trusts ``data.crs``.  Required for coordinate pairs.

    Returns
    -------
    A new GeoDataFrame labelled EPSG:4326 (the input is not modified), or a new ``(lon, lat)``
    pair of arrays.
    """
    if isinstance(data, gpd.GeoDataFrame):
        if system is None:
            if data.crs is None:
                msg = "the layer has no coordinate system"
                raise InputError(
                    msg,
                    fix="declare it with --coords KIND=SYSTEM (plan: coords under [layers]); "
                    "SYSTEM is wgs84, gcj02, bd09, cgcs2000 or an EPSG code",
                )
            parsed: str | CRS = _named_or_crs(CRS.from_user_input(data.crs))
        else:
            parsed = parse_coord_system(system)
        if isinstance(parsed, str) and parsed in OFFSET_SYSTEMS:
            _check_geographic(data, parsed)
            out = data.copy()
            out[out.geometry.name] = shapely.transform(
                np.asarray(data.geometry.array), _coords_func(_TO_WGS[parsed])
            )
            return out.set_crs(4326, allow_override=True)
        src = system_crs(parsed)
        labelled = data.set_crs(src, allow_override=True) if system is not None else data
        return labelled.to_crs(4326)
    if system is None:
        msg = "to_wgs84 needs the coordinate system of an (x, y) pair (wgs84, gcj02, ...)"
        raise ValueError(msg)
    x, y = data
    parsed = parse_coord_system(system)
    if isinstance(parsed, str) and parsed in OFFSET_SYSTEMS:
        return _TO_WGS[parsed](x, y)
    return _pyproj_xy(x, y, system_crs(parsed), CRS.from_epsg(4326))


@overload
def from_wgs84(data: tuple[ArrayLike, ArrayLike], system: CoordSystem) -> _XY: ...
@overload
def from_wgs84(data: gpd.GeoDataFrame, system: CoordSystem) -> gpd.GeoDataFrame: ...


def from_wgs84(
    data: gpd.GeoDataFrame | tuple[ArrayLike, ArrayLike], system: CoordSystem
) -> gpd.GeoDataFrame | _XY:
    """Convert WGS84 data into ``system`` (the inverse of :func:`to_wgs84`).

    A GeoDataFrame in another CRS is first brought to WGS84 from its own ``crs``.  GCJ-02 and
    BD-09 results are labelled EPSG:4326, the label every Chinese tool expects for them.
    """
    parsed = parse_coord_system(system)
    if isinstance(data, gpd.GeoDataFrame):
        wgs = data if data.crs is not None and CRS(data.crs).to_epsg() == 4326 else to_wgs84(data)
        if isinstance(parsed, str) and parsed in OFFSET_SYSTEMS:
            out = wgs.copy()
            out[out.geometry.name] = shapely.transform(
                np.asarray(wgs.geometry.array), _coords_func(_FROM_WGS[parsed])
            )
            return out.set_crs(4326, allow_override=True)
        return wgs.to_crs(system_crs(parsed))
    x, y = data
    if isinstance(parsed, str) and parsed in OFFSET_SYSTEMS:
        return _FROM_WGS[parsed](x, y)
    return _pyproj_xy(x, y, CRS.from_epsg(4326), system_crs(parsed))


def _pyproj_xy(
    x: ArrayLike, y: ArrayLike, src: CRS, dst: CRS
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    tr = Transformer.from_crs(src, dst, always_xy=True)
    ox, oy = tr.transform(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return np.asarray(ox, dtype=np.float64), np.asarray(oy, dtype=np.float64)


def _check_geographic(data: gpd.GeoDataFrame, system: str) -> None:
    if data.crs is not None and not CRS(data.crs).is_geographic:
        msg = (
            f"the layer is in a projected CRS ({CRS(data.crs).name}) but was declared {system}, "
            "which is longitude-latitude"
        )
        raise InputError(
            msg,
            fix="declare the file's real coordinate system or export it as longitude-latitude",
        )


#: Largest scale error (relative) accepted for the analysis CRS: 0.5% of a 1 km walk is 5 m.
MAX_SCALE_ERROR: Final = 0.005
_METRE_UNITS: Final = frozenset({"metre", "meter", "m"})


def parse_metric_crs(value: str | int | CRS, *, flag: str = "--crs") -> CRS:
    """Read the analysis CRS and refuse what cannot hold distances in metres.

    This is the cheap check a plan runs before anything is read (a typo costs a second); whether
    the CRS is also accurate over the study area is :func:`check_metric_crs`, once the residents
    say where that is.

    Raises
    ------
    InputError
        For text that is no CRS, a longitude-latitude CRS or a CRS in other units than metres.
    """
    fix = (
        "leave out --crs (plan key crs) for the local UTM zone, or give a Gauss-Kruger CRS "
        "such as EPSG:4549"
    )
    try:
        parsed = parse_coord_system(value)
    except InputError:
        msg = f"{flag} {value}: unreadable CRS"
        raise InputError(msg, fix=fix) from None
    crs = system_crs(parsed) if isinstance(parsed, str) else parsed
    name = value.strip() if isinstance(value, str) else system_name(parsed)
    if not crs.is_projected:
        msg = f"{flag} {name} is longitude-latitude, not metres"
        raise InputError(msg, fix=fix)
    units = {str(a.unit_name).lower() for a in crs.axis_info}
    if not units or not units <= _METRE_UNITS:
        msg = f"{flag} {name} measures in {', '.join(sorted(units)) or 'unknown units'}, not metres"
        raise InputError(msg, fix=fix)
    return crs


def local_metric_crs_hint(bounds_wgs84: tuple[float, float, float, float]) -> str:
    """CRSs that keep distances over ``bounds_wgs84``: the UTM zone and, in China, Gauss-Kruger."""
    lon = (bounds_wgs84[0] + bounds_wgs84[2]) / 2.0
    lat = (bounds_wgs84[1] + bounds_wgs84[3]) / 2.0
    zone = min(max(int((lon + 180.0) // 6.0) + 1, 1), 60)
    utm = f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"
    cm = round(lon / 3.0) * 3
    if 75 <= cm <= 135 and bool(in_china(lon, lat)):
        # CGCS2000 / 3-degree Gauss-Kruger CM 75E .. CM 135E are EPSG:4534 .. 4554
        return f"the local UTM zone {utm} or the Gauss-Kruger CRS EPSG:{4534 + (cm - 75) // 3}"
    return f"the local UTM zone {utm}"


def check_metric_crs(
    crs: str | int | CRS,
    bounds_wgs84: tuple[float, float, float, float],
    *,
    max_scale_error: float = MAX_SCALE_ERROR,
    flag: str = "--crs",
) -> CRS:
    """The analysis CRS, refused when it stretches distances over the study area.

    Walking minutes are projected metres divided by a speed, so a CRS whose scale is not ~1
    where the residents live changes every number: Web Mercator (EPSG:3857) is 15% long at
    30°N, and canteen coverage of the demo falls from 60.4% to 48.9%.  The meridional and
    parallel scale factors (``pyproj.Proj.get_factors``) at the corners and the centre of the
    area bound the error; for the usual projections (transverse Mercator, Lambert, Mercator) the
    scale varies monotonically between those points.

    Parameters
    ----------
    crs
        What the user gave (``--crs`` or plan key ``crs``): an EPSG code, ``EPSG:n``, WKT, PROJ.
    bounds_wgs84
        ``(min_lon, min_lat, max_lon, max_lat)`` of the study area (e.g. the residents).
    max_scale_error
        Largest accepted ``|scale - 1|``; the default 0.5% is 5 m over a 1 km walk.
    flag
        How the user gave the CRS, for the message.

    Returns
    -------
    The parsed CRS.

    Raises
    ------
    InputError
        For a longitude-latitude CRS, other units than metres, an area outside the CRS's domain
        or a scale error above ``max_scale_error``.
    """
    import pyproj

    chosen = parse_metric_crs(crs, flag=flag)
    name = system_name(chosen)
    x0, y0, x1, y1 = (float(v) for v in bounds_wgs84)
    lons = [x0, x1, x0, x1, (x0 + x1) / 2.0]
    lats = [y0, y0, y1, y1, (y0 + y1) / 2.0]
    fix = f"leave out --crs (plan key crs) or use {local_metric_crs_hint((x0, y0, x1, y1))}"
    try:
        factors = pyproj.Proj(chosen).get_factors(lons, lats, errcheck=True)
        scales = np.concatenate(
            [
                np.asarray(factors.meridional_scale, dtype=np.float64),
                np.asarray(factors.parallel_scale, dtype=np.float64),
            ]
        )
    except (pyproj.exceptions.ProjError, CRSError):
        scales = np.array([np.nan])
    if not np.isfinite(scales).all():
        area = f"{x0:.3f}-{x1:.3f}E, {y0:.3f}-{y1:.3f}N"
        msg = f"{flag} {name} does not cover the study area ({area})"
        raise InputError(msg, fix=fix)
    error = float(np.max(np.abs(scales - 1.0)))
    if error > max_scale_error:
        shown = f"{error:.1%}" if error >= 0.01 else f"{error:.2%}"
        msg = f"{flag} {name} distorts distances by {shown} here"
        raise InputError(msg, fix=fix)
    log.info("%s %s: scale error %.3f%% over the study area", flag, name, error * 100)
    return chosen


# ------------------------------------------------------------------ declared systems

_DISPLAY: Final = {"wgs84": "WGS84", "gcj02": "GCJ-02", "bd09": "BD-09", "cgcs2000": "CGCS2000"}


def crs_label(system: CoordSystem) -> str:
    """``EPSG:4326`` for a CRS with a code, ``GCJ-02`` for the offset systems (for messages)."""
    parsed = parse_coord_system(system)
    if isinstance(parsed, str):
        return f"EPSG:{_EPSG_LABEL[parsed]}" if parsed in _EPSG_LABEL else _DISPLAY[parsed]
    return system_name(parsed)


_EPSG_LABEL: Final = {"wgs84": 4326, "cgcs2000": 4490}


def resolve_system(
    crs: object,
    where: str,
    *,
    named: str | CRS | None,
    general: str | CRS | None,
) -> tuple[str | CRS | None, str]:
    """The system a layer's coordinates are in, and why (``coords``/``default_coords``/``file``).

    ``crs`` is the layer's own label (``None`` when it has none).  The input's own declaration
    (``named``) wins over the label, with a warning since it contradicts the file; the run's
    general declaration (``general``) fills in only for a layer without a label.  Returns
    ``(None, "file")`` for an unlabelled layer with no declaration.
    """
    declared = None if crs is None else parse_coord_system(CRS.from_user_input(crs))
    if named is not None:
        if declared is not None and not _same_system(declared, named):
            log.warning(
                "%s declares %s; treated as %s because this input was declared coords=%s",
                where,
                crs_label(declared),
                _DISPLAY.get(str(named), system_name(named)),
                system_name(named),
            )
        return named, "coords"
    if declared is not None:
        if general is not None and not _same_system(declared, general):
            log.info(
                "%s declares %s; the general coords=%s is for tables without a coordinate "
                "system, so it is not applied here (declare this input to override its label)",
                where,
                crs_label(declared),
                system_name(general),
            )
        return declared, "file"
    if general is not None:
        log.info(
            "%s declares no coordinate system; read as %s (coords=%s)",
            where,
            _DISPLAY.get(str(general), system_name(general)),
            system_name(general),
        )
        return general, "default_coords"
    return None, "file"


def _same_system(a: str | CRS, b: str | CRS) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return bool(a == b)

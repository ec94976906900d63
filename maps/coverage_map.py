"""The interactive coverage map: one self-contained HTML file that works without internet.

Government intranets have no internet, so the file must not fetch anything but (optionally) basemap
tiles.  folium's default page loads Leaflet, jQuery, Bootstrap, Font Awesome and awesome-markers
from CDNs; :class:`OfflineMap` drops those defaults and inlines only Leaflet, vendored unmodified
in ``maps/assets/leaflet`` (see ``maps/assets/README.md``).  Nothing on the map needs the rest:
facilities and residents are circle markers, suggested sites are ``L.DivIcon`` badges, popups
and tooltips are folium's ``GeoJsonPopup`` / ``GeoJsonTooltip`` (plain DOM, no jQuery), and the
legend and title are small HTML/CSS elements.  The PyPI package ``folium-offline`` was evaluated
and not used: it is a separate fork of the whole of folium (``offlinefolium``, 7 MB of Python
source holding the assets as string literals, first released April 2026, no repository of its
own), it embeds about 1.4 MB of jQuery/Bootstrap into every map, and its Glyphicons CSS still
points at a CDN font, so default folium icons would still break offline.

The map only renders the :class:`~coverage.result.StudyResult` tables; it computes no metric.
Every text that comes from users (names, ids, layer labels, the study title, area names, data
sources) is escaped with :func:`html.escape` before it reaches the page, because Leaflet inserts
popup, tooltip and layer-control labels as HTML.

Layers are listed in a grouped panel (:class:`LayerPanel`, ``maps/assets/layer_panel``): one
collapsible section per facility kind (facilities, suggested sites, residents, walk network,
service areas, gaps, coverage by 街道/社区), only the first open, and a shared section.  The
legend shows the kind whose section was opened last; every popup is headed by its layer's name.

Planning targets about every 街道 or 社区 get one layer each (off at start, in the panel's shared
section): the target's units from ``result.areas`` coloured met / not met, with the unit's value
and shortfall from ``result.target_units`` in the popup.

Without tiles (``basemap="none"``, or tiles failing on an intranet) the walk network of
``result.streets`` is drawn, coloured by the kind's minute classes, so the map stays readable.

Large studies stay a page a browser opens (issue 15): above ``aggregate_above`` resident units
(:data:`AGGREGATE_ABOVE`) residents are drawn summed to H3 hexagons computed by
:func:`coverage.aggregate.resident_hexes` (one canvas polygon per cell and kind, coloured by the
share of the target population within the goal, the rings shipped once for every kind), and
every other part is bounded: at most :data:`MAX_STREETS` streets (the longest, on a canvas),
:data:`MAX_GAPS` gap zones per kind (the worst), polygon layers simplified to
:data:`MAX_POLYGON_COORDS` vertices.  A 1M-resident study wrote 569 MB before.

With ``basemap="gcj02"`` the tiles are Amap's, which are drawn in GCJ-02 coordinates; every
overlay is then shifted from WGS84 to GCJ-02 (``layers.crs``) so that it lands on the right street.
"""

from __future__ import annotations

import base64
import functools
import html
import itertools
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.template import Template
from folium.utilities import JsCode
from pyproj import CRS

from coverage.aggregate import ResidentHexes, resident_hexes
from coverage.result import StudyResult
from layers.atomic import atomic_path
from layers.crs import from_wgs84
from layers.errors import InputError
from layers.spec import LayerSpec
from maps import i18n
from maps.i18n import text

log = logging.getLogger(__name__)

ASSETS: Final = Path(__file__).resolve().parent / "assets"

BASEMAPS: Final = ("osm", "none", "gcj02")
AMAP_TILES: Final = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
AMAP_ATTRIBUTION: Final = "&copy; 高德地图 AutoNavi"

#: Display simplification of polygons (degrees, about 0.5 m): invisible, but it keeps rings
#: built from buffered street segments from bloating the file.
SIMPLIFY_DEG: Final = 5e-6
#: Coordinates are written with 6 decimals (about 0.1 m).
DECIMALS: Final = 6
#: Studies with more resident units than this draw them summed to H3 hexagons (one polygon per
#: cell and kind) instead of one point each.  A point costs about 340 bytes of page per kind
#: (its popup fields): 10k residents and 4 kinds are about 14 MB, 50k were 68 MB and 11 s to
#: open in Chromium, 1M wrote 569 MB that no browser opens.
AGGREGATE_ABOVE: Final = 10_000
#: Streets drawn at most: above, the longest are kept (about 30 bytes of page each, so 50k are
#: 1.5 MB and about 1 s of drawing); a real district has tens of thousands, a city-sized grid of
#: 1M nodes 1.8M.
MAX_STREETS: Final = 50_000
#: Vertices per polygon layer at most (service areas, gaps of one kind): above, the layer is
#: simplified more coarsely (up to :data:`MAX_SIMPLIFY_DEG`) until it fits, so a city's rings
#: and thousands of gap zones stay a few MB.
MAX_POLYGON_COORDS: Final = 60_000
#: Gap zones drawn per kind at most, the worst first (by ``gap_id``): a city-sized study finds
#: thousands, most of them a few residents wide, and each costs about 1 kB of page.
MAX_GAPS: Final = 1_000
#: Above this many streets (or when residents are summed to hexagons) the walk network is drawn
#: on a canvas: 100k streets as SVG took 4.7 s to open in Chromium, on a canvas 0.3 s.
CANVAS_STREETS: Final = 30_000
MAX_SIMPLIFY_DEG: Final = 1e-4

#: Stacking of the overlays, independent of the order in which layers are toggled on.
PANES: Final[dict[str, int]] = {
    "sc-areas": 410,
    "sc-streets": 415,
    "sc-service": 420,
    "sc-gaps": 430,
    "sc-residents": 440,
    "sc-facilities": 450,
}

#: Coverage-rate classes of the area choropleth (lower bounds) and their colours (RdYlGn).
CHOROPLETH: Final[tuple[tuple[float, str], ...]] = (
    (0.95, "#1a9641"),
    (0.85, "#a6d96a"),
    (0.70, "#ffffbf"),
    (0.50, "#fdae61"),
    (0.0, "#d7191c"),
)
NO_DATA_COLOUR: Final = "#bdbdbd"
#: Minute classes of residents inside the goal, best first (a green ramp, cut to the thresholds).
WITHIN_COLOURS: Final = ("#1a9850", "#66bd63", "#a6d96a", "#d9ef8b", "#fee08b", "#fdae61")
UNCOVERED_COLOUR: Final = "#d7191c"
UNREACHABLE_COLOUR: Final = "#7b3294"
UNSNAPPED_COLOUR: Final = "#252525"
#: Outline of a facility beyond the snapping limit (drawn hollow: it serves no one).
UNSNAPPED_FACILITY_COLOUR: Final = "#666666"
GAP_COLOUR: Final = "#b2182b"
#: Units of a planning target: met / not met.
TARGET_MET_COLOUR: Final = "#1a9641"
TARGET_NOT_MET_COLOUR: Final = "#d7191c"

_COLOUR_RE: Final = re.compile(r"^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20})$")
_CSS_URL_RE: Final = re.compile(r"url\((images/[A-Za-z0-9_.-]+\.png)\)")


def _esc(value: object) -> str:
    """User text as HTML text (``<script>`` shows as text, quotes are safe in attributes)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def _safe_colour(colour: str) -> str:
    """A colour from the layer table, or a neutral grey when it is not a plain CSS colour."""
    if _COLOUR_RE.match(colour or ""):
        return colour
    log.warning("layer colour %r is not a hex or named colour; using grey", colour)
    return "#333333"


# --------------------------------------------------------------------------------------------
# Offline Leaflet
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def leaflet_assets() -> tuple[str, str]:
    """Leaflet's JS and CSS as text ready to inline (images as ``data:`` URIs, no source map)."""
    folder = ASSETS / "leaflet"
    js = (folder / "leaflet.js").read_text(encoding="utf-8")
    js = re.sub(r"\n//# sourceMappingURL=\S+\s*$", "\n", js)
    css = (folder / "leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match[str]) -> str:
        data = base64.b64encode((folder / match.group(1)).read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    return js, _CSS_URL_RE.sub(inline, css)


class InlineLeaflet(MacroElement):
    """Leaflet's JS and CSS written into the page header instead of CDN links."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>{{ this.css }}</style>
        <script>{{ this.js }}</script>
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "InlineLeaflet"
        self.js, self.css = leaflet_assets()


class OfflineMap(folium.Map):
    """A :class:`folium.Map` that loads nothing from the internet but its tiles.

    folium's CDN defaults (``default_js`` / ``default_css``: Leaflet, jQuery, Bootstrap, Font
    Awesome, awesome-markers) are replaced by the inline Leaflet of :class:`InlineLeaflet`.  Use
    only elements that need nothing else: vector layers, ``GeoJson`` with ``GeoJsonPopup`` /
    ``GeoJsonTooltip``, ``DivIcon``, ``TileLayer``, :class:`LayerPanel` (``folium.Popup`` and
    ``folium.Icon`` need jQuery / Font Awesome and would fail).
    """

    default_js: list[tuple[str, str]] = []  # noqa: RUF012  (class attributes in folium)
    default_css: list[tuple[str, str]] = []  # noqa: RUF012

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_child(InlineLeaflet(), name="inline_leaflet")


class HtmlBlock(MacroElement):
    """Trusted markup (already escaped) placed on the page, with its CSS in the header."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        {% if this.css %}<style>{{ this.css }}</style>{% endif %}
        {% endmacro %}
        {% macro html(this, kwargs) %}{{ this.markup }}{% endmacro %}
        """
    )

    def __init__(self, markup: str, css: str = "") -> None:
        super().__init__()
        self._name = "HtmlBlock"
        self.markup = markup
        self.css = css


_PAGE_CSS: Final = """
body, .leaflet-container { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei",
  "PingFang SC", "WenQuanYi Micro Hei", "Helvetica Neue", Arial, sans-serif; }
.leaflet-container { background: #f2efe9; }
.sc-title { position: fixed; top: 10px; left: 56px; z-index: 1000; max-width: 46vw;
  background: rgba(255,255,255,.92); padding: 6px 12px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,.35); font-size: 16px; font-weight: 600; }
.sc-title .sc-sub { font-size: 12px; font-weight: 400; color: #444; }
.sc-synthetic { display: inline-block; margin-top: 4px; padding: 2px 8px; background: #b2182b;
  color: #fff; font-size: 12px; font-weight: 700; letter-spacing: .05em; border-radius: 3px; }
.sc-legend { position: fixed; bottom: 48px; left: 10px; z-index: 1000;
  max-height: calc(100vh - 170px); overflow-y: auto; background: rgba(255,255,255,.93);
  padding: 8px 10px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,.35); font-size: 12px; line-height: 1.45; max-width: 300px; }
.sc-legend h4 { margin: 6px 0 2px; font-size: 12px; }
.sc-legend h4:first-child { margin-top: 0; }
.sc-legend .sw { display: inline-block; width: 12px; height: 12px; margin-right: 5px;
  vertical-align: -2px; border: 1px solid #555; }
.sc-legend .dot { border-radius: 50%; }
.sc-legend .src { margin-top: 6px; color: #555; font-size: 11px; }
.sc-site { width: 22px; height: 22px; border-radius: 50%; border: 2px solid #fff;
  box-shadow: 0 0 0 2px #222; color: #fff; font: 700 12px/22px sans-serif; text-align: center; }
.sc-site-small { display: inline-block; width: 16px; height: 16px; line-height: 16px;
  font-size: 10px; background: #555; margin: 2px 6px 2px 2px; }
.sc-legend .ln { display: inline-block; width: 14px; height: 4px; margin-right: 5px;
  vertical-align: 2px; border-radius: 2px; }
.sc-legend [hidden] { display: none; }
.sc-legend .sc-lg-kind { border-top: 1px solid #ddd; margin-top: 6px; padding-top: 2px; }
.sc-legend .note { color: #555; font-size: 11px; }
.sc-pop-layer { font-weight: 700; margin: 0 0 4px; padding-bottom: 3px;
  border-bottom: 1px solid #ddd; }
"""


# --------------------------------------------------------------------------------------------
# Geometry for display
# --------------------------------------------------------------------------------------------


def _display_geometry(
    gdf: gpd.GeoDataFrame, *, gcj02: bool, max_coords: int | None = None
) -> np.ndarray:
    """Geometries in the basemap's coordinates, lightly simplified and rounded for the page.

    With ``max_coords``, polygons are simplified with a tolerance doubled from
    :data:`SIMPLIFY_DEG` up to :data:`MAX_SIMPLIFY_DEG` (about 10 m) until the layer holds at
    most that many vertices: the page of a city stays bounded, a district's is unchanged.
    """
    if gdf.crs is not None and CRS(gdf.crs).to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    if gcj02:
        gdf = from_wgs84(gdf, "gcj02")
    geoms = np.asarray(gdf.geometry.array, dtype=object)
    polygonal = shapely.get_dimensions(geoms) == 2
    if polygonal.any():
        source = geoms[polygonal]
        geoms = geoms.copy()
        tolerance = SIMPLIFY_DEG
        while True:
            geoms[polygonal] = shapely.simplify(source, tolerance, preserve_topology=True)
            n = int(shapely.get_num_coordinates(geoms[polygonal]).sum())
            if max_coords is None or n <= max_coords or tolerance >= MAX_SIMPLIFY_DEG:
                break
            tolerance = min(2 * tolerance, MAX_SIMPLIFY_DEG)
        if tolerance > SIMPLIFY_DEG:
            log.info("%d polygon vertices drawn, simplified to %.0e degrees", n, tolerance)
    return shapely.transform(geoms, lambda c: np.round(c, DECIMALS))


def _frame(
    gdf: gpd.GeoDataFrame,
    props: Mapping[str, Sequence[Any]],
    *,
    gcj02: bool,
    layer: str,
    max_coords: int | None = None,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of display properties; rows without geometry are reported.

    Built directly from ``shapely.to_geojson`` rather than ``GeoDataFrame.__geo_interface__``,
    which walks rows in Python and takes minutes for a district's tens of thousands of residents.
    """
    geoms = _display_geometry(gdf, gcj02=gcj02, max_coords=max_coords)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        log.warning("%s: %d row(s) without geometry are not drawn", layer, int(missing.sum()))
    keys = list(props)
    columns = [list(props[k]) for k in keys]
    keep = np.flatnonzero(~missing)
    texts = shapely.to_geojson(geoms[keep])
    features = [
        {
            "type": "Feature",
            "properties": {k: col[i] for k, col in zip(keys, columns, strict=True)},
            "geometry": json.loads(text),
        }
        for i, text in zip(keep.tolist(), texts.tolist(), strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}


def _count(fc: Mapping[str, Any]) -> int:
    return len(fc["features"])


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------


class LayerPopup(folium.GeoJsonPopup):
    """folium's popup table headed by the name of its layer ("社区食堂/助餐点 · 设施").

    With a dozen layers on at once, a popup must say which one it belongs to: a resident point of
    one kind and of another sit on the same spot and differ only by the layer.  The title is
    escaped here (Leaflet inserts popups as HTML) and written into the script as a JSON string.
    """

    _template = Template(
        """
    {% macro script(this, kwargs) %}
    {{ this._parent.get_name() }}.bindPopup("""
        + folium.features.GeoJsonDetail.base_template.replace(
            "let table = '<table>' +",
            "let table = '<div class=\"sc-pop-layer\">' + {{ this.title | tojson }} + '</div>"
            "<table>' +",
        )
        + """,{{ this.popup_options | tojavascript }});
    {% endmacro %}
    """
    )

    def __init__(self, *, title: str, fields: Sequence[str], aliases: Sequence[str]) -> None:
        super().__init__(fields=fields, aliases=aliases, max_width=360)
        self.title = _esc(title)


def _popup(fields: Sequence[tuple[str, str]], *, title: str) -> LayerPopup:
    keys = [k for k, _ in fields]
    return LayerPopup(title=title, fields=keys, aliases=[_esc(label) for _, label in fields])


def _tooltip(field: str) -> folium.GeoJsonTooltip:
    return folium.GeoJsonTooltip(fields=[field], labels=False, sticky=True)


def _circle_marker(pane: str, radius: float) -> folium.CircleMarker:
    marker = folium.CircleMarker(radius=radius)
    marker.options["pane"] = pane  # folium has no pane argument for GeoJson markers
    return marker


class PanelGroup(folium.FeatureGroup):
    """A map layer with its full name (``layer_name``, escaped) and its row in the layer panel.

    ``title`` is the raw full name ("社区食堂/助餐点 · 设施（2）", used for popups) and
    ``panel_name`` the raw name inside its kind's section ("设施（2）"); the panel sets them as
    text, never as HTML.  ``control=False``: folium's flat layer control is not used.
    """

    def __init__(self, title: str, panel_name: str, *, show: bool) -> None:
        super().__init__(name=_esc(title), show=show, control=False)
        self.title = title
        self.panel_name = panel_name


def _group(prefix: str, panel_name: str, *, show: bool) -> PanelGroup:
    """A layer named "prefix · panel_name" (prefix: the kind's label)."""
    return PanelGroup(f"{prefix} · {panel_name}", panel_name, show=show)


def class_style_js(styles: Sequence[Mapping[str, Any]]) -> JsCode:
    """Per-feature styling by class index (``properties.s``) as an ``onEachFeature`` hook.

    folium's ``style_function`` writes one ``case`` per feature id into a JavaScript ``switch``;
    with tens of thousands of residents that switch costs quadratic time in the browser (17 s
    instead of 6 s for 21k points).  A lookup in a small array of class styles is constant time
    and adds nothing per feature.  The styles hold only numbers and checked colours.
    """
    table = json.dumps(list(styles), separators=(",", ":"), sort_keys=True)
    return JsCode(
        "function(feature, layer) {"
        f" const styles = {table};"
        " if (layer.setStyle) { layer.setStyle(styles[feature.properties.s || 0]); } }"
    )


def _add_geojson(
    group: PanelGroup,
    frame: dict[str, Any],
    *,
    styles: Sequence[dict[str, Any]],
    popup: Sequence[tuple[str, str]] | None = None,
    tooltip: str | None = None,
    marker: folium.CircleMarker | folium.Marker | None = None,
    pane: str | None = None,
) -> None:
    kwargs: dict[str, Any] = {} if pane is None else {"pane": pane}
    if marker is not None and not isinstance(marker, folium.CircleMarker):
        # Icons have no setStyle: folium merges style_function output into the icon options
        # (used for the few suggested sites, whose DivIcon carries the rank).
        def style(feature: dict[str, Any]) -> dict[str, Any]:
            return dict(styles[feature["properties"].get("s", 0)])

        kwargs["style_function"] = style
    else:
        kwargs["on_each_feature"] = class_style_js(styles)
    folium.GeoJson(
        frame,
        marker=marker,
        popup=_popup(popup, title=group.title) if popup else None,
        tooltip=_tooltip(tooltip) if tooltip else None,
        control=False,
        **kwargs,
    ).add_to(group)


def _facility_layer(
    result: StudyResult, spec: LayerSpec, lang: str, *, gcj02: bool
) -> PanelGroup | None:
    fac = result.facilities[result.facilities["kind"] == spec.kind]
    label = spec.label(lang)
    if fac.empty:
        log.info("no %s facilities: no facility layer drawn", spec.kind)
        return None
    unknown = text("unknown", lang)
    props: dict[str, list[Any]] = {
        "name": [_esc(v) for v in fac["name"]],
        "fid": [_esc(v) for v in fac["facility_id"]],
        "kind": [_esc(label)] * len(fac),
        "cap": [unknown if pd.isna(v) else i18n.fmt_number(float(v), 0) for v in fac["capacity"]],
        "snap": [
            i18n.fmt_bool(True, lang) if v else text("facility_unsnapped", lang)
            for v in fac["snapped"]
        ],
        "s": [0 if v else 1 for v in fac["snapped"]],  # off-network sites drawn hollow, grey
        "acc": [i18n.fmt_number(float(v), 0) for v in fac["access_m"]],
    }
    frame = _frame(fac, props, gcj02=gcj02, layer=f"facilities {spec.kind}")
    colour = _safe_colour(spec.colour)
    group = _group(label, f"{text('facilities', lang)}{_paren(_count(frame), lang)}", show=True)
    _add_geojson(
        group,
        frame,
        styles=[
            {
                "color": "#ffffff",
                "weight": 3,
                "fill": True,
                "fillColor": colour,
                "fillOpacity": 1.0,
            },
            {
                "color": UNSNAPPED_FACILITY_COLOUR,
                "weight": 2,
                "dashArray": "3",
                "fill": True,
                "fillOpacity": 0.0,
            },
        ],
        popup=[
            ("name", text("name", lang)),
            ("fid", text("id", lang)),
            ("kind", text("kind", lang)),
            ("cap", text("capacity", lang)),
            ("snap", text("snapped", lang)),
            ("acc", text("access_m", lang)),
        ],
        tooltip="name",
        marker=_circle_marker("sc-facilities", 10),
    )
    return group


def _service_area_layer(
    result: StudyResult, spec: LayerSpec, lang: str, *, gcj02: bool, show: bool
) -> PanelGroup | None:
    sa = result.service_areas
    rings = sa[(sa["kind"] == spec.kind) & (sa["facility_id"] == "")]
    if rings.empty:
        log.info("no dissolved service areas for %s: no ring layer drawn", spec.kind)
        return None
    rings = rings.sort_values("minutes", ascending=False)  # largest first, smaller on top
    label = spec.label(lang)
    props: dict[str, list[Any]] = {
        "label": [_esc(f"{label} · {text('ring', lang, m=float(m))}") for m in rings["minutes"]],
        "s": list(range(len(rings))),
    }
    frame = _frame(
        rings,
        props,
        gcj02=gcj02,
        layer=f"service areas {spec.kind}",
        max_coords=MAX_POLYGON_COORDS,
    )
    colour = _safe_colour(spec.colour)
    n = max(_count(frame), 1)
    group = _group(label, text("service_areas", lang), show=show)
    _add_geojson(
        group,
        frame,
        styles=[
            {
                "color": colour,
                "weight": 1.5,
                "dashArray": "4 3" if i == 0 else None,
                "fillColor": colour,
                "fillOpacity": 0.08 + 0.06 * i / n,
            }
            for i in range(n)
        ],
        tooltip="label",
        pane="sc-service",
    )
    return group


def _within(spec: LayerSpec) -> list[float]:
    """The layer's thresholds up to its headline: the 'within' minute classes, shortest first."""
    return sorted(t for t in spec.thresholds_min if t <= spec.headline_min) or [spec.headline_min]


def _minute_classes(spec: LayerSpec, lang: str) -> list[tuple[str, str]]:
    """(label, colour) of every resident class of a layer, in legend order.

    Streets use the same classes but the last one (a street is never off the network).
    """
    within = _within(spec)
    colours = WITHIN_COLOURS[: len(within)] if len(within) <= len(WITHIN_COLOURS) else None
    if colours is None:  # many thresholds: spread the ramp
        idx = np.linspace(0, len(WITHIN_COLOURS) - 1, len(within)).round().astype(int)
        colours = tuple(WITHIN_COLOURS[i] for i in idx)
    classes = [(text("within", lang, m=float(t)), c) for t, c in zip(within, colours, strict=True)]
    classes.append((text("beyond", lang, m=float(spec.headline_min)), UNCOVERED_COLOUR))
    classes.append((text("unreachable", lang), UNREACHABLE_COLOUR))
    classes.append((text("unsnapped", lang), UNSNAPPED_COLOUR))
    return classes


def _resident_class(minutes: float, covered: bool, snapped: bool, within: Sequence[float]) -> int:
    """Index into :func:`_minute_classes` (display bins of the given minutes, no analysis)."""
    n = len(within)
    if not snapped:
        return n + 2
    if not math.isfinite(minutes):
        return n + 1
    if not covered:
        return n
    for i, t in enumerate(within):
        if minutes <= t:
            return i
    return n - 1


def _resident_layer(
    result: StudyResult, spec: LayerSpec, lang: str, *, gcj02: bool, show: bool
) -> PanelGroup | None:
    res = result.residents
    kind = spec.kind
    if res.empty or f"minutes_{kind}" not in res:
        log.info("no resident minutes for %s: no resident layer drawn", kind)
        return None
    within = _within(spec)
    classes = _minute_classes(spec, lang)
    minutes = res[f"minutes_{kind}"].to_numpy(dtype=float)
    covered = res[f"covered_{kind}"].to_numpy(dtype=bool)
    snapped = res["snapped"].to_numpy(dtype=bool)
    cls = [
        _resident_class(m, c, s, within) for m, c, s in zip(minutes, covered, snapped, strict=True)
    ]
    if spec.target_group in res:
        target = res[spec.target_group]
    else:
        log.warning(
            "residents lack the '%s' column; popups show total population", spec.target_group
        )
        target = res["population"]
    unsnapped = text("unsnapped", lang)
    props: dict[str, list[Any]] = {
        "name": [_esc(v) for v in res["name"]],
        "rid": [_esc(v) for v in res["resident_id"]],
        "area": [_esc(v) for v in res["area"]],
        "comm": [_esc(v) for v in res.get("community", pd.Series([""] * len(res)))],
        "pop": [i18n.fmt_people(float(v)) for v in target],
        "min": [
            i18n.fmt_minutes(float(v), lang) if ok else unsnapped
            for v, ok in zip(minutes, snapped, strict=True)
        ],
        "fac": [_esc(v) for v in res[f"facility_{kind}"]],
        "s": cls,
    }
    frame = _frame(res, props, gcj02=gcj02, layer=f"residents {kind}")
    n_within = len(within)
    styles = []
    for i, (_, colour) in enumerate(classes):
        flagged = i >= n_within  # uncovered, unreachable, unsnapped: highlighted
        styles.append(
            {
                "color": "#000000" if flagged else "#ffffff",
                "weight": 2 if flagged else 1,
                "fill": True,
                "fillColor": colour,
                "fillOpacity": 0.95 if flagged else 0.85,
                "radius": 6 if flagged else 5,
            }
        )
    label = spec.label(lang)
    group = _group(label, text("residents", lang), show=show)
    _add_geojson(
        group,
        frame,
        styles=styles,
        popup=[
            ("name", text("name", lang)),
            ("rid", text("id", lang)),
            ("area", text("area", lang)),
            ("comm", text("community", lang)),
            (
                "pop",
                text("target_population", lang)
                + _paren(i18n.target_group_label(spec.target_group, lang), lang),
            ),
            ("min", text("nearest_minutes", lang)),
            ("fac", text("nearest_facility", lang)),
        ],
        tooltip="name",
        marker=_circle_marker("sc-residents", 5),
    )
    return group


# --------------------------------------------------------------------------------------------
# Residents summed to hexagons (large studies)
# --------------------------------------------------------------------------------------------


def _ring_codes(cells: gpd.GeoDataFrame, *, gcj02: bool) -> list[list[int]]:
    """Each hexagon's ring as flat integers in 1e-6 degrees, [lat0, lon0, dlat1, dlon1, ...].

    The streets' encoding (:func:`_street_data`), without the closing vertex; written once per
    map and shared by every kind's hexagon layer.
    """
    geoms = _display_geometry(cells, gcj02=gcj02)
    coords, ring = shapely.get_coordinates(shapely.get_exterior_ring(geoms), return_index=True)
    micro = np.rint(coords[:, ::-1] * 10**DECIMALS).astype(np.int64)
    first = np.r_[True, ring[1:] != ring[:-1]]
    last = np.r_[ring[1:] != ring[:-1], True]  # the closing vertex repeats the first
    delta = micro - np.vstack([micro[:1], micro[:-1]])
    delta[first] = micro[first]
    keep = ~last
    flat_ring = ring[keep]
    flat = delta[keep]
    starts = np.r_[0, np.flatnonzero(flat_ring[1:] != flat_ring[:-1]) + 1, len(flat)]
    values = flat.ravel().tolist()
    return [values[2 * a : 2 * b] for a, b in itertools.pairwise(starts.tolist())]


class PaneCanvas(MacroElement):
    """Draw every vector layer of one pane on a canvas instead of SVG.

    Leaflet picks a pane's renderer once, from ``map._paneRenderers``; setting it before any
    layer of the pane is built makes them all canvas.  The pane keeps ``pointer-events: none``,
    so the canvas never catches a click meant for the layers below (used for the
    non-interactive walk network).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}._paneRenderers[{{ this.pane | tojson }}] =
          L.canvas({ pane: {{ this.pane | tojson }} });
        {% endmacro %}
        """
    )

    def __init__(self, pane: str) -> None:
        super().__init__()
        self._name = "PaneCanvas"
        self.pane = pane


class HexRings(MacroElement):
    """The hexagon rings shared by every kind's hexagon layer (``sc_hex_xy``), in the header."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <script>var sc_hex_xy = {{ this.data }};
</script>
        {% endmacro %}
        """
    )

    def __init__(self, rings: list[list[int]]) -> None:
        super().__init__()
        self._name = "HexRings"
        self.data = _script_json(rings)


class HexLayer(MacroElement):
    """One kind's hexagons, drawn into its :class:`PanelGroup` on a canvas when first shown.

    Per cell one class character (``chr(48 + class)``, the area choropleth's classes of the
    covered share), the target population, the covered share in 1/10000, the mean minutes in
    tenths (-1: none) and the resident units; popups are built from them on click.  A canvas
    draws tens of thousands of polygons where SVG would need as many DOM nodes; the canvas takes
    the pointer events its pane (``pointer_events=False``) would otherwise swallow.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
          var group = {{ this._parent.get_name() }};
          var d = {{ this.data }};
          var built = false;
          function ring(flat) {
            var out = [], lat = 0, lon = 0;
            for (var i = 0; i + 1 < flat.length; i += 2) {
              lat += flat[i]; lon += flat[i + 1]; out.push([lat / 1e6, lon / 1e6]);
            }
            return out;
          }
          function esc(s) {
            return String(s).replace(/[&<>"']/g, function (ch) {
              return "&#" + ch.charCodeAt(0) + ";";
            });
          }
          function popup(i) {
            var pop = d.pop[i], sh = d.share[i], mn = d.min[i];
            var vals = [
              d.units[i].toLocaleString("en-US"),
              pop.toLocaleString("en-US"),
              sh < 0 ? d.dash : (sh / 100).toFixed(1) + "%",
              mn < 0 ? d.dash : (mn / 10).toFixed(1)
            ];
            var rows = d.labels.map(function (label, k) {
              return "<tr><th>" + label + "</th><td>" + esc(vals[k]) + "</td></tr>";
            }).join("");
            return '<div class="sc-pop-layer">' + d.title + "</div><table>" + rows + "</table>";
          }
          function build() {
            if (built) { return; }
            built = true;
            var renderer = L.canvas({ pane: d.pane, padding: 0.2 });
            for (var i = 0; i < d.c.length; i++) {
              var style = L.extend({ renderer: renderer }, d.styles[d.c.charCodeAt(i) - 48]);
              var poly = L.polygon(ring(sc_hex_xy[i]), style);
              poly.bindPopup(popup.bind(null, i), { maxWidth: 360 });
              group.addLayer(poly);
            }
            var el = renderer.getContainer ? renderer.getContainer() : renderer._container;
            if (el) { el.style.pointerEvents = "auto"; }
          }
          group.on("add", build);
          if (group._map) { build(); }
        })();
        {% endmacro %}
        """
    )

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__()
        self._name = "HexLayer"
        self.data = _script_json(data)


def _hex_layer(
    result: StudyResult,
    spec: LayerSpec,
    lang: str,
    hexes: ResidentHexes,
    *,
    show: bool,
) -> PanelGroup | None:
    """One kind's residents summed to hexagons, coloured by the share within the goal."""
    rows = hexes.layer(spec.kind)
    if rows.empty:
        log.info("no resident minutes for %s: no hexagon layer drawn", spec.kind)
        return None
    share = rows["covered_share"].to_numpy(dtype=float)
    mean = rows["mean_minutes"].to_numpy(dtype=float)
    classes = [choropleth_class(v) for v in share]
    label = spec.label(lang)
    group = _group(label, text("residents_hex", lang), show=show)
    headline = f"{spec.headline_min:g} {text('minutes_short', lang)}"
    target = i18n.target_group_label(spec.target_group, lang)
    data = {
        "title": _esc(group.title),
        "pane": "sc-residents",
        "dash": i18n.DASH,
        "labels": [
            _esc(text("resident_units", lang)),
            _esc(text("target_population", lang) + _paren(target, lang)),
            _esc(text("covered_share", lang) + _paren(headline, lang)),
            _esc(text("mean_minutes", lang)),
        ],
        "styles": [
            {"color": "#555555", "weight": 0.5, "fillColor": c, "fillOpacity": 0.7}
            for c in [*(c for _, c in CHOROPLETH), NO_DATA_COLOUR]
        ],
        "c": "".join(chr(48 + c) for c in classes),
        "units": rows["residents"].astype(int).tolist(),
        "pop": np.rint(rows["population"].to_numpy(dtype=float)).astype(int).tolist(),
        "share": np.where(np.isfinite(share), np.rint(share * 10_000), -1).astype(int).tolist(),
        "min": np.where(np.isfinite(mean), np.rint(mean * 10), -1).astype(int).tolist(),
    }
    group.add_child(HexLayer(data), name="hexes")
    return group


def _gap_layer(
    result: StudyResult, spec: LayerSpec, lang: str, *, gcj02: bool, show: bool
) -> PanelGroup | None:
    gaps = result.gaps[result.gaps["kind"] == spec.kind].sort_values("gap_id")
    if gaps.empty:
        log.info("no gap zones for %s: no gap layer drawn", spec.kind)
        return None
    total = len(gaps)
    if total > MAX_GAPS:  # gap_id 1 is the worst: the first ones matter most
        gaps = gaps.iloc[:MAX_GAPS]
        log.info("gaps %s: the %d worst of %d gap zones drawn", spec.kind, MAX_GAPS, total)
    label = spec.label(lang)
    people = [i18n.fmt_people(float(v)) for v in gaps["uncovered_population"]]
    props: dict[str, list[Any]] = {
        "tip": [
            _esc(f"{label} · {text('gap_rank', lang)} {int(g)} · {p}")
            for g, p in zip(gaps["gap_id"], people, strict=True)
        ],
        "gid": [str(int(v)) for v in gaps["gap_id"]],
        "area": [_esc(v) for v in gaps["area"]],
        "unc": people,
        "units": [i18n.fmt_count(float(v)) for v in gaps["residents"]],
        "km2": [i18n.fmt_number(float(v), 2) for v in gaps["area_km2"]],
        "fac": [_esc(v) for v in gaps["nearest_facility"]],
        "min": [i18n.fmt_minutes(float(v), lang) for v in gaps["nearest_facility_minutes"]],
    }
    frame = _frame(
        gaps, props, gcj02=gcj02, layer=f"gaps {spec.kind}", max_coords=MAX_POLYGON_COORDS
    )
    name = (
        text("gaps", lang)
        if total == len(gaps)
        else text("gaps_worst", lang, n=len(gaps), total=total)
    )
    group = _group(label, name, show=show)
    _add_geojson(
        group,
        frame,
        styles=[
            {
                "color": GAP_COLOUR,
                "weight": 2,
                "dashArray": "6 4",
                "fillColor": GAP_COLOUR,
                "fillOpacity": 0.22,
            }
        ],
        popup=[
            ("gid", text("gap_rank", lang)),
            ("area", text("area", lang)),
            ("unc", text("uncovered_population", lang)),
            ("units", text("resident_units", lang)),
            ("km2", text("area_km2", lang)),
            ("fac", text("nearest_facility", lang)),
            ("min", text("nearest_minutes", lang)),
        ],
        tooltip="tip",
        pane="sc-gaps",
    )
    return group


def choropleth_class(rate: float) -> int:
    """Class of a coverage rate in :data:`CHOROPLETH`; ``len(CHOROPLETH)`` when NaN (no people)."""
    if not math.isfinite(rate):
        return len(CHOROPLETH)
    for i, (lower, _) in enumerate(CHOROPLETH):
        if rate >= lower:
            return i
    return len(CHOROPLETH) - 1


def _area_layers(
    result: StudyResult, spec: LayerSpec, lang: str, *, gcj02: bool, skip_hex: bool = False
) -> list[PanelGroup]:
    """One choropleth per level of ``result.areas``.

    ``skip_hex``: the H3 level is left out (residents are drawn summed to hexagons, which show
    the same covered share at the same or a finer grain: a second copy of thousands of cells
    per kind would double the page).
    """
    areas = result.areas
    col = f"coverage_{spec.kind}"
    if areas.empty or col not in areas:
        return []
    label = spec.label(lang)
    groups = []
    for level in ("street", "community", "hex"):
        part = areas[areas["level"] == level]
        if part.empty:
            continue
        if level == "hex" and skip_hex:
            log.info("areas %s: hexagon choropleth left out (residents are in hexagons)", spec.kind)
            continue
        rates = part[col].to_numpy(dtype=float)
        pops = part[f"population_{spec.kind}"].to_numpy(dtype=float)
        props: dict[str, list[Any]] = {
            "tip": [
                _esc(f"{a} · {i18n.fmt_percent(r)}")
                for a, r in zip(part["area"], rates, strict=True)
            ],
            "area": [_esc(v) for v in part["area"]],
            "parent": [_esc(v) for v in part["parent"]],
            "rate": [i18n.fmt_percent(r) for r in rates],
            "pop": [i18n.fmt_people(p) for p in pops],
            "s": [choropleth_class(r) for r in rates],
        }
        frame = _frame(part, props, gcj02=gcj02, layer=f"areas {level} {spec.kind}")
        name = f"{text('coverage_map', lang)}{_paren(i18n.level_label(level, lang), lang)}"
        group = _group(label, name, show=False)
        fields = [("area", i18n.level_label(level, lang))]
        if level == "community":
            fields.append(("parent", i18n.level_label("street", lang)))
        fields += [
            (
                "rate",
                text("coverage_rate", lang)
                + _paren(f"{spec.headline_min:g} {text('minutes_short', lang)}", lang),
            ),
            (
                "pop",
                text("target_population", lang)
                + _paren(i18n.target_group_label(spec.target_group, lang), lang),
            ),
        ]
        _add_geojson(
            group,
            frame,
            styles=[
                {"color": "#444444", "weight": 1, "fillColor": c, "fillOpacity": 0.55}
                for c in [*(c for _, c in CHOROPLETH), NO_DATA_COLOUR]
            ],
            popup=fields,
            tooltip="tip",
            pane="sc-areas",
        )
        groups.append(group)
    return groups


def _target_layers(result: StudyResult, lang: str, *, gcj02: bool) -> list[PanelGroup]:
    """One layer per 街道 / 社区 target: its units coloured met / not met."""
    targets, units, areas = result.targets, result.target_units, result.areas
    if targets is None or targets.empty or units is None or units.empty or areas.empty:
        return []
    groups = []
    for i, t in enumerate(targets.to_dict("records")):
        scope, measure = str(t["scope"]), str(t["measure"])
        if scope not in ("street", "community"):
            continue
        rows = units[units["target"] == i]
        polys = areas[areas["level"] == scope][["area", "geometry"]]
        part = polys.merge(rows, left_on="area", right_on="unit", how="inner")
        missing = sorted(set(rows["unit"]) - set(part["unit"]))
        if missing:
            log.warning(
                "target %d: %d unit(s) have no %s polygon and are not drawn: %s",
                i + 1,
                len(missing),
                scope,
                ", ".join(missing[:5]),
            )
        if part.empty:
            continue
        part = gpd.GeoDataFrame(part, geometry="geometry", crs=areas.crs)
        label = str(t["label"])
        met = part["met"].to_numpy(dtype=bool)
        status = [i18n.status_label("met" if m else "not met", lang) for m in met]
        values = [i18n.fmt_target_value(float(v), measure) for v in part["value"]]
        if measure == "facility_count":
            short = [i18n.fmt_count(float(v)) for v in part["shortfall_sites"]]
            short_label = text("shortfall_sites", lang)
        else:
            short = [i18n.fmt_people(float(v)) for v in part["shortfall_population"]]
            short_label = text("shortfall_population", lang)
        props: dict[str, list[Any]] = {
            "tip": [
                _esc(f"{u} · {s_} · {v}")
                for u, s_, v in zip(part["unit"], status, values, strict=True)
            ],
            "target": [_esc(label)] * len(part),
            "unit": [_esc(v) for v in part["unit"]],
            "status": status,
            "value": values,
            "threshold": [i18n.fmt_target_value(float(t["threshold"]), measure)] * len(part),
            "short": short,
            "s": [0 if m else 1 for m in met],
        }
        frame = _frame(part, props, gcj02=gcj02, layer=f"target {i + 1}")
        name = f"{text('target', lang)}{text('label_sep', lang)}{label}"
        group = PanelGroup(name, name, show=False)
        _add_geojson(
            group,
            frame,
            styles=[
                {
                    "color": TARGET_MET_COLOUR,
                    "weight": 2,
                    "fillColor": TARGET_MET_COLOUR,
                    "fillOpacity": 0.35,
                },
                {
                    "color": TARGET_NOT_MET_COLOUR,
                    "weight": 2,
                    "fillColor": TARGET_NOT_MET_COLOUR,
                    "fillOpacity": 0.45,
                },
            ],
            popup=[
                ("target", text("target", lang)),
                ("unit", i18n.level_label(scope, lang)),
                ("status", text("target_status", lang)),
                ("value", text("target_value", lang)),
                ("threshold", text("target_threshold", lang)),
                ("short", short_label),
            ],
            tooltip="tip",
            pane="sc-areas",
        )
        groups.append(group)
    return groups


def _badge(colour: str, rank: int) -> str:
    return f'<div class="sc-site" style="background:{colour}">{rank}</div>'


def _suggestion_layer(
    result: StudyResult, spec: LayerSpec, lang: str, *, gcj02: bool
) -> PanelGroup | None:
    sug = result.suggestions
    sug = sug[sug["kind"] == spec.kind].sort_values("rank")
    if sug.empty:
        return None
    colour = _safe_colour(spec.colour)
    props: dict[str, list[Any]] = {
        "name": [_esc(v) for v in sug["name"]],
        "rank": [str(int(v)) for v in sug["rank"]],
        "sid": [_esc(v) for v in sug["site_id"]],
        "model": [_esc(v) for v in sug["model"]],
        "added": [i18n.fmt_people(float(v)) for v in sug["added_population"]],
        "after": [i18n.fmt_percent(float(v)) for v in sug["coverage_rate_after"]],
        "s": list(range(len(sug))),
    }
    frame = _frame(sug, props, gcj02=gcj02, layer=f"suggestions {spec.kind}")
    label = spec.label(lang)
    group = _group(label, f"{text('suggestions', lang)}{_paren(_count(frame), lang)}", show=True)
    _add_geojson(
        group,
        frame,
        # A DivIcon per site carries its rank; folium merges this dict into the icon options.
        styles=[{"html": _badge(colour, int(r))} for r in sug["rank"]],
        popup=[
            ("rank", text("rank", lang)),
            ("name", text("name", lang)),
            ("sid", text("site_id", lang)),
            ("model", text("model", lang)),
            ("added", text("added_population", lang)),
            ("after", text("coverage_after", lang)),
        ],
        tooltip="name",
        marker=folium.Marker(
            icon=folium.DivIcon(icon_size=(26, 26), icon_anchor=(13, 13), class_name="sc-site-icon")
        ),
    )
    return group


# --------------------------------------------------------------------------------------------
# The walk network, coloured by walking minutes
# --------------------------------------------------------------------------------------------


def street_classes(minutes: np.ndarray, spec: LayerSpec) -> np.ndarray:
    """Minute class of every street (index into :func:`_minute_classes`), vectorised.

    The same bins as the residents' (:func:`_resident_class`) for a point on the network that is
    covered when its minutes are within the headline: the first threshold the minutes reach,
    then beyond the headline, then unreachable (``inf`` or NaN).  Display binning only.
    """
    within = np.asarray(_within(spec), dtype=float)
    n = len(within)
    minutes = np.asarray(minutes, dtype=float)
    finite = np.isfinite(minutes)
    safe = np.where(finite, minutes, 0.0)
    cls = np.minimum(np.searchsorted(within, safe, side="left"), n - 1)
    cls = np.where(safe <= spec.headline_min, cls, n)
    return np.where(finite, cls, n + 1).astype(np.int64)


def street_styles(spec: LayerSpec, lang: str) -> list[dict[str, Any]]:
    """Line style of each street class: the residents' colours, unreachable ones dashed.

    Problems are not drawn thicker as residents are: in a district short of sites most streets
    are beyond the goal, and thick red lines would bury the points.
    """
    classes = _minute_classes(spec, lang)[:-1]  # no 'off the network' class for a street
    n_within = len(classes) - 2
    styles: list[dict[str, Any]] = [
        {"color": colour, "weight": 2, "opacity": 0.85} for _, colour in classes
    ]
    styles[n_within + 1]["dashArray"] = "4 3"
    return styles


def _street_data(result: StudyResult, *, gcj02: bool) -> tuple[dict[str, Any] | None, list[str]]:
    """The walk network for the page, once for all kinds, and the kinds it can colour.

    Per street a flat list of integer coordinates in 1e-6 degrees (the 6-decimal rounding of
    every overlay), the first point absolute and the others as differences from the previous
    one, [lat, lon] as Leaflet wants them; per kind one character per street, its minute class
    (``chr(48 + class)``).  A district network has tens of thousands of streets: written as
    GeoJSON features with properties it would be several times larger.
    """
    streets = result.streets
    if streets is None or streets.empty:
        return None, []
    kinds = [k for k in result.specs if f"minutes_{k}" in streets]
    if not kinds:
        log.info("the street network carries no layer's minutes: no street layer drawn")
        return None, []
    if len(streets) > MAX_STREETS:
        # a city's network: keep the longest streets (the main roads in a real city), so the
        # network still frames the map when there are no tiles, within a bounded page
        length = shapely.length(np.asarray(streets.geometry.array, dtype=object))
        keep = np.sort(np.argsort(-length, kind="stable")[:MAX_STREETS])
        log.info("street network: the %d longest of %d streets drawn", len(keep), len(streets))
        streets = streets.iloc[keep]
    geoms = _display_geometry(streets, gcj02=gcj02)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    parts, row = shapely.get_parts(geoms[ok], return_index=True)
    coords, part = shapely.get_coordinates(parts, return_index=True)
    micro = np.rint(coords[:, ::-1] * 10**DECIMALS).astype(np.int64)
    first = np.r_[True, part[1:] != part[:-1]]
    delta = micro - np.vstack([micro[:1], micro[:-1]])
    delta[first] = micro[first]
    starts = np.flatnonzero(first)
    flat = delta.ravel().tolist()
    bounds = [*(2 * starts).tolist(), len(flat)]
    xy = [flat[a:b] for a, b in itertools.pairwise(bounds)]
    drawn = row[np.unique(part)]  # the source row of each part that has coordinates
    classes = {}
    for kind in kinds:
        minutes = streets[f"minutes_{kind}"].to_numpy(dtype=float)[ok][drawn]
        codes = street_classes(minutes, result.specs[kind]) + 48
        classes[kind] = codes.astype(np.uint8).tobytes().decode("ascii")
    log.info("street network: %d streets drawn for %d layer(s)", len(xy), len(kinds))
    return {"xy": xy, "c": [classes[k] for k in kinds]}, kinds


def _script_json(value: object) -> str:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` can close or open a tag."""
    out = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@functools.lru_cache(maxsize=1)
def layer_panel_assets() -> tuple[str, str]:
    """The grouped layer panel's JS and CSS (``maps/assets/layer_panel``), to inline."""
    folder = ASSETS / "layer_panel"
    js = (folder / "layer_panel.js").read_text(encoding="utf-8")
    return js, (folder / "layer_panel.css").read_text(encoding="utf-8")


class LayerPanel(MacroElement):
    """The grouped, collapsible layer panel (``maps/assets/layer_panel``).

    It replaces folium's flat ``LayerControl`` (31 loose checkboxes for a real study).
    ``config`` holds one group per facility kind plus the shared group; each entry names a
    folium layer by its JavaScript variable (``ref``) or a kind of the street network
    (``streets``, built in the browser on first use).  Add it after every layer it refers to.
    """

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>{{ this.css }}</style>
        <script>{{ this.js }}</script>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        L.control.scLayers({{ this.config }}, {
        {%- for ref in this.refs %}{{ ref }}: {{ ref }}{{ ", " if not loop.last }}{% endfor -%}
        }).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, config: Mapping[str, Any], refs: Sequence[str]) -> None:
        super().__init__()
        self._name = "LayerPanel"
        self.js, self.css = layer_panel_assets()
        self.config = _script_json(config)
        if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", r) for r in refs):
            msg = "layer references must be JavaScript identifiers"
            raise ValueError(msg)
        self.refs = list(refs)


# --------------------------------------------------------------------------------------------
# Title and legend
# --------------------------------------------------------------------------------------------


def _title_markup(result: StudyResult, lang: str) -> str:
    sub = _esc(text("map_subtitle", lang))
    parts = [
        f'<div class="sc-title" id="sc-title">{_esc(result.title)}<div class="sc-sub">{sub}</div>'
    ]
    if result.synthetic:
        parts.append(
            f'<div class="sc-synthetic" id="sc-synthetic">{_esc(i18n.SYNTHETIC_BANNER)}</div>'
        )
    parts.append("</div>")
    return "".join(parts)


def _paren(value: object, lang: str) -> str:
    """A bracketed note in the language's own brackets."""
    return f"（{value}）" if lang == "zh" else f" ({value})"


def _swatch(colour: str, *, dot: bool = False, border: str = "#555", opacity: float = 1.0) -> str:
    cls = "sw dot" if dot else "sw"
    style = f"background:{colour};opacity:{opacity:g};border-color:{border}"
    return f'<span class="{cls}" style="{style}"></span>'


def _heading(label: str) -> str:
    return label[:1].upper() + label[1:]


def _has_unit_targets(result: StudyResult) -> bool:
    t = result.targets
    return t is not None and not t.empty and bool(t["scope"].isin(["street", "community"]).any())


def _kind_legend(
    result: StudyResult,
    spec: LayerSpec,
    lang: str,
    *,
    key: str,
    visible: bool,
    streets: bool,
    hex_edge_m: float | None = None,
) -> str:
    """One kind's part of the legend, in the colours its layers are drawn with.

    Only the kind whose panel section was opened last is shown (``hidden`` otherwise): a legend
    of every kind at once does not fit a laptop screen and leaves the reader to pick the rows.
    """
    minutes = text("minutes_short", lang)
    colour = _safe_colour(spec.colour)
    hidden = "" if visible else " hidden"
    rows = [f'<div class="sc-lg-kind" data-legend="{key}"{hidden}>']
    rows.append(f"<h4>{_swatch(colour, dot=True)}{_esc(spec.label(lang))}</h4>")
    if hex_edge_m is not None:
        rows.append(_hex_legend(spec, lang, edge_m=hex_edge_m, streets=streets))
    else:
        rows.append(_dot_legend(spec, lang, streets=streets))
    rings = " / ".join(f"{t:g}" for t in sorted(spec.thresholds_min)) + f" {minutes}"
    rows.append(f"<h4>{_esc(_heading(text('service_areas', lang)))}</h4>")
    rows.append(f"<div>{_swatch(colour, opacity=0.35, border=colour)}{_esc(rings)}</div>")
    if (result.gaps["kind"] == spec.kind).any():
        gap_swatch = _swatch(GAP_COLOUR, opacity=0.5, border=GAP_COLOUR)
        rows.append(f"<div>{gap_swatch}{_esc(text('gaps', lang))}</div>")
    if (result.suggestions["kind"] == spec.kind).any():
        rows.append(f"<h4>{_esc(_heading(text('suggestions', lang)))}</h4>")
        rows.append(
            f'<div><span class="sc-site sc-site-small" style="background:{colour}">1</span>'
            f"{_esc(text('suggestion_badge', lang))}</div>"
        )
    rows.append("</div>")
    return "".join(rows)


def _dot_legend(spec: LayerSpec, lang: str, *, streets: bool) -> str:
    """Residents drawn one point each: the minute classes (and the streets' lines)."""
    rows = [f"<h4>{_esc(_heading(text('residents', lang)))}</h4>"]
    classes = _minute_classes(spec, lang)
    for i, (label, c) in enumerate(classes):
        flagged = i >= len(classes) - 3
        line = f'<span class="ln" style="background:{c}"></span>'
        if not streets or i == len(classes) - 1:  # a street is never off the network
            line = ""
        border = "#000" if flagged else "#fff"
        rows.append(f"<div>{_swatch(c, dot=True, border=border)}{line}{_esc(label)}</div>")
    if streets:
        rows.append(f'<div class="note">{_esc(text("legend_dots_lines", lang))}</div>')
    return "".join(rows)


def _hex_legend(spec: LayerSpec, lang: str, *, edge_m: float, streets: bool) -> str:
    """Residents summed to hexagons: the covered-share classes, said to be aggregated."""
    headline = float(spec.headline_min)
    rows = [f"<h4>{_esc(_heading(text('residents_hex', lang)))}</h4>"]
    for i, (lower, colour) in enumerate(CHOROPLETH):
        upper = 1.0 if i == 0 else CHOROPLETH[i - 1][0]
        label = f"≥ {lower:.0%}" if i == 0 else f"{lower:.0%} – {upper:.0%}"
        rows.append(f"<div>{_swatch(colour, opacity=0.7)}{_esc(label)}</div>")
    rows.append(f"<div>{_swatch(NO_DATA_COLOUR)}{_esc(text('no_target', lang))}</div>")
    note = text("legend_hex", lang, edge=round(edge_m), m=headline)
    rows.append(f'<div class="note" id="sc-hex-note">{_esc(note)}</div>')
    if streets:
        rows.append(f"<h4>{_esc(_heading(text('streets', lang)))}</h4>")
        for label, c in _minute_classes(spec, lang)[:-1]:  # a street is never off the network
            rows.append(f'<div><span class="ln" style="background:{c}"></span>{_esc(label)}</div>')
    return "".join(rows)


def _legend_markup(
    result: StudyResult,
    lang: str,
    *,
    street_kinds: Sequence[str] = (),
    hexes: ResidentHexes | None = None,
) -> str:
    minutes = text("minutes_short", lang)
    rows = [f"<h4>{_esc(_heading(text('facilities', lang)))}</h4>"]
    for spec in result.specs.values():
        n = int((result.facilities["kind"] == spec.kind).sum())
        label = spec.label(lang) + _paren(n, lang)
        head = result.metrics[
            (result.metrics["kind"] == spec.kind)
            & (result.metrics["level"] == "district")
            & (result.metrics["minutes"] == spec.headline_min)
        ]
        if len(head):
            rate = i18n.fmt_percent(float(head["coverage_rate"].iloc[0]))
            label += f" · {spec.headline_min:g} {minutes} {rate}"
        rows.append(f"<div>{_swatch(_safe_colour(spec.colour), dot=True)}{_esc(label)}</div>")
    if not result.facilities["snapped"].astype(bool).all():
        hollow = _swatch("transparent", dot=True, border=UNSNAPPED_FACILITY_COLOUR)
        rows.append(f"<div>{hollow}{_esc(text('legend_unsnapped_facility', lang))}</div>")
    for i, spec in enumerate(result.specs.values()):
        rows.append(
            _kind_legend(
                result,
                spec,
                lang,
                key=f"k{i}",
                visible=i == 0,
                streets=spec.kind in street_kinds,
                hex_edge_m=None if hexes is None else hexes.edge_m,
            )
        )
    rows.append(f"<h4>{_esc(_heading(text('coverage_map', lang)))}</h4>")
    for i, (lower, colour) in enumerate(CHOROPLETH):
        upper = 1.0 if i == 0 else CHOROPLETH[i - 1][0]
        label = f"≥ {lower:.0%}" if i == 0 else f"{lower:.0%} – {upper:.0%}"
        rows.append(f"<div>{_swatch(colour, opacity=0.8)}{_esc(label)}</div>")
    rows.append(f"<div>{_swatch(NO_DATA_COLOUR)}{_esc(text('no_target', lang))}</div>")
    if _has_unit_targets(result):
        rows.append(f"<h4>{_esc(_heading(text('targets', lang)))}</h4>")
        for colour, status in ((TARGET_MET_COLOUR, "met"), (TARGET_NOT_MET_COLOUR, "not met")):
            swatch = _swatch(colour, opacity=0.6, border=colour)
            rows.append(f"<div>{swatch}{_esc(i18n.status_label(status, lang))}</div>")
    if result.sources:
        src = "<br>".join(_esc(s) for s in i18n.attributed_sources(result.sources))
        rows.append(f'<div class="src"><b>{_esc(text("sources", lang))}</b><br>{src}</div>')
    body = "".join(rows)
    return (
        f'<div class="sc-legend" id="sc-legend"><h4>{_esc(text("legend", lang))}</h4>{body}</div>'
    )


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _bounds(frames: Iterable[gpd.GeoDataFrame], *, gcj02: bool) -> list[list[float]] | None:
    boxes = []
    for gdf in frames:
        if gdf is None or gdf.empty:
            continue
        geoms = _display_geometry(gdf, gcj02=gcj02)
        geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
        if len(geoms):
            boxes.append(shapely.total_bounds(geoms))
    if not boxes:
        return None
    b = np.array(boxes)
    return [
        [float(b[:, 1].min()), float(b[:, 0].min())],
        [float(b[:, 3].max()), float(b[:, 2].max())],
    ]


def _tile_layer(basemap: str) -> folium.TileLayer | None:
    if basemap == "osm":
        return folium.TileLayer("OpenStreetMap", name="OpenStreetMap", control=False)
    if basemap == "gcj02":
        return folium.TileLayer(
            tiles=AMAP_TILES,
            attr=AMAP_ATTRIBUTION,
            name="高德地图 Amap",
            subdomains="1234",
            max_zoom=18,
            control=False,
        )
    return None


def _kind_groups(
    result: StudyResult,
    spec: LayerSpec,
    lang: str,
    *,
    gcj02: bool,
    show: bool,
    hexes: ResidentHexes | None = None,
) -> list[PanelGroup]:
    """A kind's layers in panel order: what is there, who is served, where the gaps are.

    With ``hexes`` the residents are drawn summed to hexagons instead of one point each.
    """
    residents = (
        _resident_layer(result, spec, lang, gcj02=gcj02, show=show)
        if hexes is None
        else _hex_layer(result, spec, lang, hexes, show=show)
    )
    layers = [
        _facility_layer(result, spec, lang, gcj02=gcj02),
        _suggestion_layer(result, spec, lang, gcj02=gcj02),
        residents,
        _service_area_layer(result, spec, lang, gcj02=gcj02, show=show),
        _gap_layer(result, spec, lang, gcj02=gcj02, show=show),
        *_area_layers(result, spec, lang, gcj02=gcj02, skip_hex=hexes is not None),
    ]
    return [g for g in layers if g is not None]


def build_map(
    result: StudyResult,
    *,
    lang: str = "zh",
    basemap: str = "osm",
    aggregate_above: int = AGGREGATE_ABOVE,
) -> OfflineMap:
    """Build the folium map of a study (see :func:`render_map`); nothing is written.

    Layers sit in a grouped panel (:class:`LayerPanel`): one collapsible section per facility
    kind, the first one open, and a shared section for the planning targets and the base map.
    The walk network coloured by minutes is drawn for the first kind when there are no tiles
    (``basemap="none"``, or an intranet without tile server): without it the points float on a
    blank page.
    """
    i18n.check_lang(lang)
    if basemap not in BASEMAPS:
        msg = f"basemap '{basemap}' is not known"
        raise InputError(msg, column="basemap", fix=f"use one of {', '.join(BASEMAPS)}")
    gcj02 = basemap == "gcj02"
    bounds = _bounds(
        (result.residents, result.facilities, result.suggestions, result.areas), gcj02=gcj02
    )
    if bounds is None:
        msg = "the study has no residents, facilities, sites or areas to map"
        raise InputError(msg, fix="check that the inputs hold features inside the study area")

    m = OfflineMap(location=None, tiles=None, control_scale=True, zoom_start=14)
    m.get_root().title = _esc(result.title)  # type: ignore[attr-defined]
    tiles = _tile_layer(basemap)
    if tiles is not None:
        tiles.add_to(m)
    for pane, z in PANES.items():
        folium.map.CustomPane(pane, z_index=z, pointer_events=False).add_to(m)

    hexes = None
    if len(result.residents) > aggregate_above:
        hexes = resident_hexes(result.residents, result.specs)
        # in the basemap's coordinates, as every overlay (H3 cells are defined on WGS84)
        m.add_child(HexRings(_ring_codes(hexes.cells, gcj02=gcj02)), name="sc_hex_rings")
    refs: list[str] = []

    def entry(group: folium.map.Layer, name: str) -> dict[str, Any]:
        refs.append(group.get_name())
        return {"name": name, "ref": group.get_name()}

    targets = _target_layers(result, lang, gcj02=gcj02)
    for group in targets:
        group.add_to(m)
    streets, street_kinds = _street_data(result, gcj02=gcj02)
    if streets is not None and (hexes is not None or len(streets["xy"]) > CANVAS_STREETS):
        m.add_child(PaneCanvas("sc-streets"), name="sc_streets_canvas")
    sections = []
    for i, (kind, spec) in enumerate(result.specs.items()):
        rows = []
        for group in _kind_groups(result, spec, lang, gcj02=gcj02, show=i == 0, hexes=hexes):
            group.add_to(m)
            rows.append(entry(group, group.panel_name))
        if kind in street_kinds:
            names = [r["name"] for r in rows]
            res_name = text("residents" if hexes is None else "residents_hex", lang)
            at = names.index(res_name) + 1 if res_name in names else 0
            rows.insert(
                at,
                {
                    "name": text("streets", lang),
                    "streets": street_kinds.index(kind),
                    "styles": street_styles(spec, lang),
                    "pane": "sc-streets",
                    # a city's hexagons frame the map by themselves; its network (1-2 s to
                    # draw) waits to be switched on, or for the tiles to fail
                    "show": i == 0 and tiles is None and hexes is None,
                    "fallback": i == 0,  # drawn when the tiles fail (intranet)
                },
            )
        sections.append(
            {
                "title": spec.label(lang),
                "colour": _safe_colour(spec.colour),
                "open": i == 0,
                "legend": f"k{i}",
                "layers": rows,
            }
        )
    shared = [entry(g, g.panel_name) for g in targets]
    if tiles is not None:
        shared.append(entry(tiles, f"{text('basemap', lang)}{_paren(tiles.layer_name, lang)}"))
    if shared:
        sections.append({"title": text("shared_layers", lang), "open": False, "layers": shared})
    config = {
        "title": text("layers", lang),
        "fold": text("fold_panel", lang),
        "groups": sections,
        "streets": streets,
        "tiles": None if tiles is None else tiles.get_name(),
    }
    m.add_child(LayerPanel(config, refs), name="sc_layers")
    m.add_child(HtmlBlock(_title_markup(result, lang), _PAGE_CSS), name="sc_title")
    legend = _legend_markup(result, lang, street_kinds=street_kinds, hexes=hexes)
    m.add_child(HtmlBlock(legend), name="sc_legend")
    m.fit_bounds(bounds, padding=(20, 20))
    return m


def render_map(
    result: StudyResult,
    path: str | Path,
    *,
    lang: str = "zh",
    basemap: str = "osm",
    force: bool = False,
    aggregate_above: int = AGGREGATE_ABOVE,
) -> Path:
    """Write the interactive coverage map of ``result`` as one self-contained HTML file.

    Parameters
    ----------
    result
        The analysis result; only its tables are read.
    path
        The HTML file to write (atomically).
    lang
        ``"zh"`` (default) or ``"en"`` for labels, popups and legend.
    basemap
        ``"osm"`` OpenStreetMap tiles (needs internet for the tiles only), ``"none"`` no tiles
        (fully offline), ``"gcj02"`` Amap tiles with every overlay shifted to GCJ-02.
    force
        Overwrite an existing file.
    aggregate_above
        With more resident units than this, residents are drawn summed to H3 hexagons
        (:func:`coverage.aggregate.resident_hexes`: target population, share within the goal,
        mean minutes per cell) instead of one point each, so the page stays small and quick.

    Returns
    -------
    The path written.

    Raises
    ------
    InputError
        Unknown ``lang`` or ``basemap``, nothing to map, or ``path`` exists without ``force``.
    """
    m = build_map(result, lang=lang, basemap=basemap, aggregate_above=aggregate_above)
    with atomic_path(path, force=force) as tmp:
        m.save(str(tmp))
        size = tmp.stat().st_size
    log.info("map written: %s (%.1f MB)", path, size / 1e6)
    return Path(path)


def page_text(m: folium.Map) -> str:
    """The full HTML of a built map (for tests and previews)."""
    root = m.get_root()
    assert isinstance(root, Element)
    return root.render()

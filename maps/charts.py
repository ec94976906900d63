"""Static charts for the gap report: matplotlib figures inlined as SVG (or PNG).

Chinese text must render as glyphs, never as boxes: :func:`cjk_font` looks for an installed
font that really draws CJK (Noto Sans CJK from Debian's ``fonts-noto-cjk``, Source Han,
WenQuanYi, SimHei, Microsoft YaHei, PingFang...), refuses fallback fonts that map every code point
to one box (matplotlib's bundled Last Resort), and refreshes matplotlib's cached font list once
when that list predates the font's installation.  When no such font exists the charts switch to
English labels and any data text that the remaining fonts cannot draw (a 街道 name, say) is
replaced by a numbered placeholder, with a warning in the log.  SVG text is written as paths, so
the report needs no font on the reader's machine.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state, no GUI
backend).  Styling goes through process-wide rcParams, so :func:`chart_style` holds a lock while
a chart is built or saved, and turns matplotlib's warnings into log lines.

Charts only draw the result's tables; the one derived quantity, the population-weighted share of
residents within x minutes, is a plot of the residents' own minutes and equals ``coverage_rate``
at every threshold.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import re
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import matplotlib as mpl
import numpy as np
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.ticker import PercentFormatter

from coverage.result import StudyResult
from maps import i18n

log = logging.getLogger(__name__)

#: Fonts tried first, in order (Simplified Chinese faces before other CJK faces).
CJK_FONT_CANDIDATES: Final = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "STHeiti",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Source Han Sans",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "AR PL UKai CN",
)
#: Characters a font must have to count as a CJK font.
CJK_PROBE: Final = "中文覆盖率街道社区分钟人口"
#: Distinct characters whose outlines must differ: a font that draws them alike is a fallback
#: "box" font (matplotlib's bundled Last Resort High-Efficiency maps every code point).
CJK_DISTINCT_PROBE: Final = "食堂邻"
LATIN_FONT: Final = "DejaVu Sans"


@dataclass(frozen=True)
class Chart:
    """One chart ready to inline: ``svg`` is an ``<svg>`` element (no XML prolog)."""

    key: str
    title: str
    svg: str


# --------------------------------------------------------------------------------------------
# Fonts
# --------------------------------------------------------------------------------------------


@functools.cache
def _open_face(path: str, index: int) -> FT2Font:
    # ``face_index`` only for faces after the first: matplotlib < 3.11 knows no face indices
    # (and never hands out one other than 0).
    return FT2Font(path, face_index=index) if index else FT2Font(path)


def _face(path: str, index: int | None = None) -> tuple[str, int]:
    """``(file, face index)`` of a path from ``findfont`` (a ``FontPath`` since matplotlib 3.11)."""
    return str(path), int(getattr(path, "face_index", 0) if index is None else index)


@functools.cache
def _charmap(path: str, index: int = 0) -> frozenset[int]:
    return frozenset(_open_face(path, index).get_charmap())


def _font_has(path: str, chars: str) -> bool:
    """True when the font file (face) at ``path`` maps every non-space character of ``chars``."""
    try:
        cmap = _charmap(*_face(path))
    except (OSError, RuntimeError, ValueError):
        return False
    return all(ord(c) in cmap for c in chars if not c.isspace())


def _distinct_outlines(path: str, index: int, chars: str) -> bool:
    """True when each of ``chars`` has its own, non-empty glyph outline in the face.

    A fallback font such as matplotlib's bundled *Last Resort High-Efficiency* maps every code
    point, so a character map check accepts it, yet it draws every character as the same box.
    Comparing the outlines of a few distinct characters tells such a font from a real one.
    """
    font = _open_face(path, index)
    font.set_size(48, 72)
    outlines = set()
    for char in chars:
        if font.get_char_index(ord(char)) == 0:  # .notdef: the font's own "missing" box
            return False
        font.load_char(ord(char))
        vertices, codes = font.get_path()
        if len(codes) == 0:
            return False
        outlines.add((np.asarray(vertices).tobytes(), np.asarray(codes).tobytes()))
    return len(outlines) == len(chars)


@functools.cache
def _draws_cjk(path: str, index: int = 0) -> bool:
    """True when the face has real, distinct glyphs for Chinese text (not one box for all)."""
    try:
        cmap = _charmap(path, index)
        if not all(ord(c) in cmap for c in CJK_PROBE + CJK_DISTINCT_PROBE):
            return False
        return _distinct_outlines(path, index, CJK_DISTINCT_PROBE)
    except (OSError, RuntimeError, ValueError):
        return False


def _find_cjk_font(manager: font_manager.FontManager) -> str | None:
    """The first family in ``manager``'s font list that draws Chinese, preferred names first."""
    for name in CJK_FONT_CANDIDATES:
        try:
            # A list, not a string: a string is parsed as a fontconfig pattern.
            path = manager.findfont(
                font_manager.FontProperties(family=[name]), fallback_to_default=False
            )
        except ValueError:
            continue
        if _draws_cjk(*_face(path)):
            return name
    for entry in manager.ttflist:  # any other font that has the glyphs
        if _draws_cjk(*_face(entry.fname, getattr(entry, "index", 0))):
            return str(entry.name)
    return None


def _add_new_system_fonts(manager: font_manager.FontManager) -> int:
    """Add system font files missing from ``manager``'s list; return how many were added.

    matplotlib lists the system's fonts once and caches the list (``fontlist-*.json`` in
    ``matplotlib.get_cachedir()``), so a font installed after that (``make demo`` before
    ``make test`` installs fonts-noto-cjk) stays invisible to every later process.  The files
    are added with the public ``FontManager.addfont`` to the very manager that draws text (a new
    manager would not reach the renderers, which hold the one loaded at import), and the cache
    is rewritten so that the next process starts with the complete list.
    """
    known = {str(Path(entry.fname).resolve()) for entry in manager.ttflist}
    added = 0
    for path in sorted(font_manager.findSystemFonts()):
        if str(Path(path).resolve()) in known:
            continue
        try:
            manager.addfont(path)
        except (OSError, RuntimeError, ValueError) as exc:
            log.debug("font file %s skipped: %s", path, exc)
            continue
        added += 1
    if added:
        cache = Path(mpl.get_cachedir()) / f"fontlist-v{font_manager.FontManager.__version__}.json"
        font_manager.json_dump(manager, cache)
        log.info("matplotlib's font list was out of date: %d font files added (%s)", added, cache)
    return added


_FONT_LOCK: Final = threading.Lock()


@functools.cache
def cjk_font() -> str | None:
    """Family name of an installed font with real CJK glyphs, or ``None`` (charts use English).

    A font counts when it maps :data:`CJK_PROBE` and draws :data:`CJK_DISTINCT_PROBE` as
    different outlines, so a fallback font that draws one box for every character is refused.
    When matplotlib's font list has none, the list is refreshed from the system's font folders
    once before giving up: it may predate the installation of a CJK font.  The answer is cached
    for the process.
    """
    manager = font_manager.fontManager
    with _FONT_LOCK:  # two first calls at once must not add the same files twice
        name = _find_cjk_font(manager)
        if name is None and _add_new_system_fonts(manager):
            name = _find_cjk_font(manager)
    if name is None:
        log.warning(
            "no font with Chinese glyphs found (Debian: apt-get install fonts-noto-cjk); "
            "charts use English labels"
        )
    return name


def _families() -> list[str]:
    cjk = cjk_font()
    return [cjk, LATIN_FONT] if cjk else [LATIN_FONT]


#: rcParams and the warnings filters are process-wide: one chart is styled and drawn at a time.
_RENDER_LOCK: Final = threading.RLock()

_GLYPH_RE: Final = re.compile(r"Glyph \d+ \((.+?)\) missing from font")


def _log_library_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Turn matplotlib's warnings while drawing a chart into at most one log line each kind."""
    glyphs: dict[str, None] = {}
    other: dict[str, None] = {}
    for w in caught:
        text = str(w.message)
        match = _GLYPH_RE.search(text)
        if match:
            glyphs[match.group(1)] = None
        elif "tight_layout" in text.lower() or "tight layout" in text.lower():
            other["the chart's labels do not fit its size; some may be clipped"] = None
        else:
            other[text.splitlines()[0] if text else type(w.message).__name__] = None
    if glyphs:
        log.warning(
            "chart fonts have no glyph for %d characters (drawn as boxes): %s",
            len(glyphs),
            ", ".join(glyphs),
        )
    for text in other:
        log.warning("chart drawing: %s", text)


@contextlib.contextmanager
def chart_style() -> Iterator[None]:
    """Fonts and styling used both when a figure is built and when it is saved.

    matplotlib's own warnings (a label that does not fit, a missing glyph) are caught here and
    logged as one line each instead of reaching the user's terminal as raw library warnings.
    """
    families = _families()
    with (
        _RENDER_LOCK,
        warnings.catch_warnings(record=True) as caught,
        mpl.rc_context(
            {
                "font.family": "sans-serif",
                "font.sans-serif": families,
                "axes.unicode_minus": False,
                "svg.fonttype": "path",
                "axes.spines.top": False,
                "axes.spines.right": False,
                "font.size": 9,
            }
        ),
    ):
        warnings.simplefilter("always")
        try:
            yield
        finally:
            _log_library_warnings(caught)


@functools.cache
def _font_paths() -> tuple[tuple[str, int], ...]:
    paths = []
    for family in _families():
        with contextlib.suppress(ValueError):
            paths.append(
                _face(
                    font_manager.findfont(
                        font_manager.FontProperties(family=[family]), fallback_to_default=False
                    )
                )
            )
    return tuple(paths)


def renderable(text: str) -> bool:
    """True when the chart fonts have a glyph for every character of ``text``."""
    maps = []
    for path, index in _font_paths():
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            maps.append(_charmap(path, index))
    return all(c.isspace() or any(ord(c) in m for m in maps) for c in text)


def chart_lang(lang: str) -> str:
    """The label language charts can use: Chinese needs a CJK font."""
    i18n.check_lang(lang)
    if lang == "zh" and cjk_font() is None:
        return "en"
    return lang


def _data_label(text: str, placeholder: str) -> str:
    """A data string (area or layer name) if the fonts can draw it, else ``placeholder``."""
    if renderable(text):
        return text
    log.warning(
        "chart label %r cannot be drawn with the installed fonts; shown as %s", text, placeholder
    )
    return placeholder


def _label(key: str, lang: str, **values: object) -> str:
    """A chart's words from the catalogue (:mod:`maps.i18n`, keys ``chart_*``)."""
    return i18n.text(f"chart_{key}", lang, **values)


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def coverage_by_area_figure(result: StudyResult, *, lang: str = "zh") -> Figure | None:
    """Horizontal bars: coverage at each layer's headline minutes per 街道, one bar per layer."""
    lang = chart_lang(lang)
    m = result.metrics
    street = m[m["level"] == "street"]
    if street.empty or not result.specs:
        return None
    areas = list(dict.fromkeys(street["area"]))
    specs = list(result.specs.values())
    heads = {s.headline_min for s in specs}
    head_label = "/".join(f"{h:g}" for h in sorted(heads))
    with chart_style():
        fig = Figure(figsize=(7.0, 0.5 + 0.32 * len(areas) * max(len(specs), 1) + 0.6))
        ax = fig.add_subplot()
        height = 0.8 / len(specs)
        y = np.arange(len(areas))
        for i, spec in enumerate(specs):
            rows = street[(street["kind"] == spec.kind) & (street["minutes"] == spec.headline_min)]
            rate = dict(zip(rows["area"], rows["coverage_rate"], strict=True))
            values = np.array([rate.get(a, np.nan) for a in areas], dtype=float)
            ypos = y - 0.4 + height * (i + 0.5)
            ax.barh(
                ypos,
                np.nan_to_num(values, nan=0.0),
                height=height * 0.9,
                color=_mpl_colour(spec.colour),
                label=_data_label(spec.label(lang), spec.kind),
            )
            for yy, v in zip(ypos, values, strict=True):
                ax.text(
                    (0.0 if math.isnan(v) else v) + 0.01,
                    yy,
                    i18n.fmt_percent(v),
                    va="center",
                    fontsize=7,
                )
        ax.set_yticks(y, [_data_label(a or "—", f"#{k + 1}") for k, a in enumerate(areas)])
        ax.invert_yaxis()
        ax.set_xlim(0, 1.12)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.axvline(1.0, color="#555555", lw=0.8, ls="--")
        ax.set_xlabel(_label("by_area_x", lang))
        ax.set_title(_label("by_area", lang, m=head_label), loc="left", fontsize=10, pad=18)
        ax.legend(
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            ncol=min(len(specs), 4),
            fontsize=7,
            frameon=False,
        )
        fig.tight_layout()
    return fig


def minutes_distribution_figure(result: StudyResult, *, lang: str = "zh") -> Figure | None:
    """Population-weighted share of each layer's target group within x walking minutes.

    Unsnapped and unreachable residents stay in the denominator (as in ``coverage_rate``), so each
    curve levels off below 100% by their share, and its value at the headline minutes equals the
    district coverage rate.
    """
    lang = chart_lang(lang)
    res = result.residents
    if res.empty or not result.specs:
        return None
    snapped = res["snapped"].to_numpy(dtype=bool)
    with chart_style():
        fig = Figure(figsize=(7.0, 3.6))
        ax = fig.add_subplot()
        xmax = 0.0
        drawn = False
        for spec in result.specs.values():
            col = f"minutes_{spec.kind}"
            if col not in res or spec.target_group not in res:
                continue
            minutes = np.where(snapped, res[col].to_numpy(dtype=float), np.inf)
            weight = res[spec.target_group].to_numpy(dtype=float)
            total = weight.sum()
            if total <= 0:
                continue
            finite = np.isfinite(minutes)
            order = np.argsort(minutes[finite], kind="stable")
            x = minutes[finite][order]
            share = np.cumsum(weight[finite][order]) / total
            xmax = max(xmax, spec.headline_min * 2, float(x.max()) if x.size else 0.0)
            ax.step(
                np.concatenate([[0.0], x]),
                np.concatenate([[0.0], share]),
                where="post",
                color=_mpl_colour(spec.colour),
                lw=1.8,
                label=_data_label(spec.label(lang), spec.kind),
            )
            drawn = True
        if not drawn:
            return None
        for head in sorted({s.headline_min for s in result.specs.values()}):
            ax.axvline(head, color="#555555", lw=0.8, ls="--")
            ax.text(head, 1.02, _label("goal", lang, m=f"{head:g}"), ha="center", fontsize=7)
        ax.set_xlim(0, min(xmax, 120.0) if xmax > 0 else 30.0)
        ax.set_ylim(0, 1.06)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel(_label("cdf_x", lang))
        ax.set_ylabel(_label("cdf_y", lang))
        ax.set_title(_label("cdf", lang), loc="left", fontsize=10, pad=14)
        ax.legend(loc="lower right", fontsize=7, frameon=False)
        ax.grid(alpha=0.3)
        fig.tight_layout()
    return fig


def coverage_curve_figure(result: StudyResult, *, lang: str = "zh") -> Figure | None:
    """District coverage against the number of suggested sites, per layer with a curve."""
    lang = chart_lang(lang)
    runs = [r for r in result.suggestion_runs.values() if r.curve and r.kind in result.specs]
    if not runs:
        return None
    with chart_style():
        fig = Figure(figsize=(7.0, 3.4))
        ax = fig.add_subplot()
        top = 0
        for run in runs:
            spec = result.specs[run.kind]
            n = [p for p, _ in run.curve]
            rate = [r for _, r in run.curve]
            top = max(top, max(n))
            ax.plot(
                n,
                rate,
                marker="o",
                ms=4,
                color=_mpl_colour(spec.colour),
                label=_data_label(spec.label(lang), spec.kind),
            )
        ax.set_xticks(range(top + 1))
        ax.set_ylim(0, 1.05)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel(_label("curve_x", lang))
        ax.set_ylabel(_label("curve_y", lang))
        ax.set_title(_label("curve", lang), loc="left", fontsize=10)
        ax.legend(loc="lower right", fontsize=7, frameon=False)
        ax.grid(alpha=0.3)
        fig.tight_layout()
    return fig


_HEX_RE: Final = re.compile(r"^#[0-9a-fA-F]{6}$")


def _mpl_colour(colour: str) -> str:
    return colour if _HEX_RE.match(colour or "") else "#555555"


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def figure_svg(fig: Figure) -> str:
    """The figure as an inline ``<svg>`` element (text as paths: no font needed to view it)."""
    buf = io.StringIO()
    with chart_style():
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def figure_png(fig: Figure, *, dpi: int = 150) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    with chart_style():
        fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def report_charts(result: StudyResult, *, lang: str = "zh") -> list[Chart]:
    """The report's charts that have data, in reading order."""
    lang_used = chart_lang(lang)
    builders = (
        ("coverage_by_area", "by_area", coverage_by_area_figure),
        ("minutes_distribution", "cdf", minutes_distribution_figure),
        ("coverage_curve", "curve", coverage_curve_figure),
    )
    heads = "/".join(f"{h:g}" for h in sorted({s.headline_min for s in result.specs.values()}))
    charts = []
    for key, label, build in builders:
        fig = build(result, lang=lang)
        if fig is None:
            continue
        charts.append(Chart(key=key, title=_label(label, lang_used, m=heads), svg=figure_svg(fig)))
    return charts

"""Static charts for the gap report: matplotlib figures inlined as SVG (or PNG).

Chinese text must render as glyphs, never as empty boxes: :func:`cjk_font` looks for an installed
font that really has CJK glyphs (Noto Sans CJK from Debian's ``fonts-noto-cjk``, Source Han,
WenQuanYi, SimHei, Microsoft YaHei, PingFang...).  When none exists the charts switch to English
labels and any data text that the remaining fonts cannot draw (a 街道 name, say) is replaced by a
numbered placeholder, with a warning in the log.  SVG text is written as paths, so the report
needs no font on the reader's machine.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state, no GUI
backend), so rendering is safe in threads and servers.  Charts only draw the result's tables;
the one derived quantity, the population-weighted share of residents within x minutes, is a plot
of the residents' own minutes and equals ``coverage_rate`` at every threshold.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
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
LATIN_FONT: Final = "DejaVu Sans"

_CHART_LABELS: Final[dict[str, tuple[str, str]]] = {
    "by_area": ("各街道覆盖率（{m}分钟目标）", "Coverage by sub-district (goal {m} min)"),
    "by_area_x": ("服务对象覆盖率", "share of target population covered"),
    "cdf": ("步行时间分布（按服务对象人口加权）", "Walking minutes (population-weighted)"),
    "cdf_x": ("到最近设施的步行时间（分钟）", "walking minutes to the nearest facility"),
    "cdf_y": ("在该时间内可达的服务对象比例", "share of target population within"),
    "curve": ("新增站点数与覆盖率", "Coverage vs number of new sites"),
    "curve_x": ("新增站点数", "number of new sites"),
    "curve_y": ("全区覆盖率", "district coverage"),
    "goal": ("{m}分钟目标", "{m}-min goal"),
}


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
def _charmap(path: str) -> frozenset[int]:
    return frozenset(FT2Font(path).get_charmap())


def _font_has(path: str, chars: str) -> bool:
    try:
        cmap = _charmap(path)
    except (OSError, RuntimeError, ValueError):
        return False
    return all(ord(c) in cmap for c in chars if not c.isspace())


@functools.cache
def cjk_font() -> str | None:
    """Family name of an installed font with CJK glyphs, or ``None`` (then charts use English)."""
    for name in CJK_FONT_CANDIDATES:
        try:
            path = font_manager.findfont(
                font_manager.FontProperties(family=name), fallback_to_default=False
            )
        except ValueError:
            continue
        if _font_has(path, CJK_PROBE):
            return name
    for entry in font_manager.fontManager.ttflist:  # any other font that has the glyphs
        if _font_has(entry.fname, CJK_PROBE):
            return str(entry.name)
    log.warning(
        "no font with Chinese glyphs found (install fonts-noto-cjk); charts use English labels"
    )
    return None


def _families() -> list[str]:
    cjk = cjk_font()
    return [cjk, LATIN_FONT] if cjk else [LATIN_FONT]


@contextlib.contextmanager
def chart_style() -> Iterator[None]:
    """Fonts and styling used both when a figure is built and when it is saved."""
    with mpl.rc_context(
        {
            "font.family": "sans-serif",
            "font.sans-serif": _families(),
            "axes.unicode_minus": False,
            "svg.fonttype": "path",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 9,
        }
    ):
        yield


@functools.cache
def _font_paths() -> tuple[str, ...]:
    paths = []
    for family in _families():
        with contextlib.suppress(ValueError):
            paths.append(
                font_manager.findfont(
                    font_manager.FontProperties(family=family), fallback_to_default=False
                )
            )
    return tuple(paths)


def renderable(text: str) -> bool:
    """True when the chart fonts have a glyph for every character of ``text``."""
    maps = []
    for path in _font_paths():
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            maps.append(_charmap(path))
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
    zh, en = _CHART_LABELS[key]
    return (zh if lang == "zh" else en).format(**values)


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

"""The gap report: every number equals the analysis, the workbook equals the page, CJK renders."""

from __future__ import annotations

import logging
import math
import re
import warnings
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from layers.errors import InputError
from maps import charts, i18n
from maps.report import FORMATS, report_tables, write_report
from tests.fixtures_result import HOSTILE, make_result


@pytest.fixture(scope="module")
def result():
    return make_result()


@pytest.fixture(scope="module")
def written(result, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    files = write_report(result, folder / "report.html", xlsx_path=folder / "report.xlsx")
    return files, _parse(files.html.read_text(encoding="utf-8"))


class _ReportParser(HTMLParser):
    """Collects every table (rows of (data-value, text) cells, row data-*) and the cards."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.cards: dict[str, str] = {}
        self._table: dict | None = None
        self._row: dict | None = None
        self._cell: list | None = None
        self._card_kind: str | None = None
        self._in_rate = False
        self.external: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "link", "img", "iframe") or (tag != "a" and "src" in a):
            self.external.append((tag, a))
        if tag == "table":
            self._table = {"headers": [], "rows": []}
            self.tables[a["data-table"]] = self._table
        elif tag == "th" and self._table is not None:
            self._table["headers"].append(a.get("data-key"))
        elif tag == "tr" and self._table is not None:
            self._row = {
                "attrs": {k[5:]: v for k, v in a.items() if k.startswith("data-")},
                "cells": [],
            }
        elif tag == "td" and self._row is not None and "data-value" in a:
            self._cell = [a["data-value"], ""]
        elif tag == "div" and a.get("class") == "card":
            self._card_kind = a["data-kind"]
        elif tag == "div" and a.get("class") == "card-rate":
            self.cards[self._card_kind] = a["data-value"]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row["cells"].append(tuple(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row["cells"]:
                self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


def _parse(page: str) -> _ReportParser:
    p = _ReportParser()
    p.feed(page)
    return p


def _val(text: str):
    """Back from data-value to a Python value."""
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text)
    except ValueError:
        return text


def _same(shown, expected) -> bool:
    if isinstance(expected, bool | np.bool_):
        return shown == bool(expected)
    if isinstance(expected, int | float | np.integer | np.floating):
        e = float(expected)
        return (math.isnan(e) and math.isnan(shown)) or shown == e
    return shown == expected


def _column(table: dict, key: str) -> list:
    j = table["headers"].index(key)
    return [_val(r["cells"][j][0]) for r in table["rows"]]


def test_headline_equals_metrics(result, written):
    _, page = written
    t = page.tables["headline"]
    assert [r["attrs"]["kind"] for r in t["rows"]] == list(result.specs)
    for row in t["rows"]:
        head = result.headline(row["attrs"]["kind"])
        for key in (
            "minutes",
            "population",
            "covered_population",
            "coverage_rate",
            "mean_minutes",
            "p90_minutes",
            "unsnapped",
            "unreachable",
        ):
            j = t["headers"].index(key)
            assert _same(_val(row["cells"][j][0]), head[key]), key
        # the card repeats the headline rate exactly
        assert float(page.cards[row["attrs"]["kind"]]) == head["coverage_rate"]


def test_threshold_and_area_tables_equal_metrics(result, written):
    _, page = written
    m = result.metrics
    district = m[m["level"] == "district"]
    t = page.tables["thresholds"]
    assert len(t["rows"]) == len(district)
    for row in t["rows"]:
        kind = row["attrs"]["kind"]
        minutes = _val(row["cells"][t["headers"].index("minutes")][0])
        ref = district[(district["kind"] == kind) & (district["minutes"] == minutes)].iloc[0]
        for key in ("population", "covered_population", "coverage_rate"):
            assert _same(_val(row["cells"][t["headers"].index(key)][0]), ref[key])
    for table, level in (("street_detail", "street"), ("communities", "community")):
        t = page.tables[table]
        rows = m[m["level"] == level]
        rows = rows[[r.minutes == result.specs[r.kind].headline_min for r in rows.itertuples()]]
        assert len(t["rows"]) == len(rows)
        for row in t["rows"]:
            ref = rows[
                (rows["kind"] == row["attrs"]["kind"]) & (rows["area"] == row["attrs"]["area"])
            ].iloc[0]
            for key in ("population", "covered_population", "coverage_rate"):
                assert _same(_val(row["cells"][t["headers"].index(key)][0]), ref[key])
    wide = page.tables["streets"]
    for row in wide["rows"]:
        for kind, spec in result.specs.items():
            ref = m[
                (m["level"] == "street")
                & (m["area"] == row["attrs"]["area"])
                & (m["kind"] == kind)
                & (m["minutes"] == spec.headline_min)
            ]["coverage_rate"].iloc[0]
            assert _same(_val(row["cells"][wide["headers"].index(f"rate_{kind}")][0]), ref)
    parents = dict(zip(result.areas["area"], result.areas["parent"], strict=True))
    comm = page.tables["communities"]
    for row in comm["rows"]:
        assert (
            _val(row["cells"][comm["headers"].index("parent")][0]) == parents[row["attrs"]["area"]]
        )


def test_gaps_suggestions_equity_equal_result(result, written):
    _, page = written
    gaps = page.tables["gaps"]
    expected = pd.concat(
        [result.gaps[result.gaps["kind"] == k].sort_values("gap_id").head(10) for k in result.specs]
    )
    assert len(gaps["rows"]) == len(expected)
    for row, ref in zip(gaps["rows"], expected.itertuples(), strict=True):
        assert row["attrs"]["kind"] == ref.kind
        for key in (
            "gap_id",
            "uncovered_population",
            "residents",
            "area",
            "area_km2",
            "nearest_facility",
            "nearest_facility_minutes",
        ):
            assert _same(_val(row["cells"][gaps["headers"].index(key)][0]), getattr(ref, key)), key
    sug = page.tables["suggestions"]
    ref_sug = result.suggestions.sort_values(["kind", "rank"])
    for row, ref in zip(sug["rows"], ref_sug.itertuples(), strict=True):
        for key in ("rank", "name", "site_id", "model", "added_population", "coverage_rate_after"):
            assert _same(_val(row["cells"][sug["headers"].index(key)][0]), getattr(ref, key)), key
    runs = page.tables["runs"]
    assert [r["attrs"]["kind"] for r in runs["rows"]] == list(result.suggestion_runs)
    for row in runs["rows"]:
        run = result.suggestion_runs[row["attrs"]["kind"]]
        for key in (
            "coverage_rate_before",
            "coverage_rate_after",
            "optimal",
            "gap",
            "status",
            "unreachable_population",
        ):
            assert _same(_val(row["cells"][runs["headers"].index(key)][0]), getattr(run, key)), key
        assert _val(row["cells"][runs["headers"].index("sites")][0]) == run.curve[-1][0]
    eq = page.tables["equity"]
    for row, ref in zip(eq["rows"], result.equity.itertuples(), strict=True):
        for key in (
            "gini",
            "cv",
            "worst_area",
            "worst_rate",
            "best_area",
            "best_rate",
            "best_worst_gap",
        ):
            assert _same(_val(row["cells"][eq["headers"].index(key)][0]), getattr(ref, key)), key


def test_shown_text_is_the_formatted_value(result, written):
    """Percent with one decimal, whole people, one-decimal minutes, 'unreachable' for inf."""
    _, page = written
    tables = {t.key: t for t in report_tables(result)}
    seen_inf = False
    for key, parsed in page.tables.items():
        cols = tables[key].columns
        for row in parsed["rows"]:
            for col, (raw, shown) in zip(cols, row["cells"], strict=True):
                value = _val(raw) if raw != "" else None
                if col.fmt == "text":
                    assert shown == raw
                    continue
                assert shown == FORMATS[col.fmt][0](value, "zh"), (key, col.key)
                if col.fmt == "percent" and isinstance(value, float) and math.isfinite(value):
                    assert re.fullmatch(r"-?\d+\.\d%", shown)
                if col.fmt == "minutes" and value == math.inf:
                    assert shown == "路网不可达"
                    seen_inf = True
    assert seen_inf  # the fixture has unreachable gaps: inf is shown in words


def test_page_is_self_contained_and_complete(result, written):
    files, page = written
    text = files.html.read_text(encoding="utf-8")
    assert not page.external, page.external  # no script, image, link or iframe to fetch
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text)
    assert text.count("<svg") >= 3  # charts inline
    assert "@page { size: A4" in text
    assert "合成数据 / SYNTHETIC DATA" in text
    assert "© OpenStreetMap contributors, ODbL" in text
    for spec in result.specs.values():  # method: speeds, thresholds, target groups
        assert f"{spec.speed_kmh:.1f}" in text
        assert i18n.target_group_label(spec.target_group, "zh") in text
    assert text.index("一、总体覆盖") < text.index("二、各街道") < text.index("三、服务缺口")
    real = write_report(replace(result, synthetic=False), files.html.with_name("real.html"))
    assert "SYNTHETIC" not in real.html.read_text(encoding="utf-8")


def test_osm_attribution_added_when_osm_is_named(result, tmp_path):
    r = replace(result, sources=("walk network from OpenStreetMap (2026-11 extract)",))
    text = write_report(r, tmp_path / "r.html").html.read_text(encoding="utf-8")
    assert "© OpenStreetMap contributors, ODbL" in text


def test_xlsx_equals_the_tables(result, written):
    files, _ = written
    wb = openpyxl.load_workbook(files.xlsx)
    tables = report_tables(result, lang="zh")
    assert wb.sheetnames == [t.sheet for t in tables]
    assert "总体覆盖" in wb.sheetnames and "街道覆盖率" in wb.sheetnames
    for t in tables:
        ws = wb[t.sheet]
        rows = list(ws.iter_rows(values_only=True))
        assert list(rows[0]) == [c.label for c in t.columns]
        assert len(rows) - 1 == len(t.rows)
        for got, rec in zip(rows[1:], t.rows.to_dict("records"), strict=True):
            for value, col in zip(got, t.columns, strict=True):
                want = rec[col.key]
                if isinstance(want, float) and not math.isfinite(want):
                    assert value is None
                elif isinstance(want, bool | np.bool_):
                    assert value is bool(want)
                elif isinstance(want, float):
                    # openpyxl stores 16 significant digits ("%.16g"): equal at that precision
                    assert value == float(f"{want:.16g}"), (t.key, col.key)
                else:  # an empty text is an empty cell in XLSX
                    assert value == (None if want == "" else want), (t.key, col.key)
        for j, col in enumerate(t.columns, start=1):
            if col.fmt == "percent" and ws.max_row > 1:
                assert ws.cell(row=2, column=j).number_format == "0.0%"


def test_english_report_and_sheets(result, tmp_path):
    files = write_report(result, tmp_path / "en.html", lang="en", xlsx_path=tmp_path / "en.xlsx")
    text = files.html.read_text(encoding="utf-8")
    assert "Coverage against the 15-minute goal" in text and "总体覆盖" not in text
    assert "Community canteen" in text
    assert openpyxl.load_workbook(files.xlsx).sheetnames[0] == "Headline"


def test_hostile_names_are_text(tmp_path):
    r = make_result(hostile=True)
    files = write_report(r, tmp_path / "h.html", xlsx_path=tmp_path / "h.xlsx")
    text = files.html.read_text(encoding="utf-8")
    assert "<script>alert" not in text and "<img src=x" not in text
    page = _parse(text)
    assert not page.external
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    sug = page.tables["suggestions"]
    names = _column(sug, "name")
    assert names == list(r.suggestions.sort_values(["kind", "rank"])["name"])  # shown as text
    assert any(HOSTILE in n for n in names)
    wb = openpyxl.load_workbook(files.xlsx)  # the workbook keeps the text as it is
    assert [c.value for c in wb["建议选址"]["C"]][1:] == names


def test_no_overwrite_without_force(result, tmp_path):
    html_path, xlsx_path = tmp_path / "r.html", tmp_path / "r.xlsx"
    html_path.write_text("old", encoding="utf-8")
    with pytest.raises(InputError, match="exists"):
        write_report(result, html_path, xlsx_path=xlsx_path)
    assert html_path.read_text(encoding="utf-8") == "old"
    assert not xlsx_path.exists()  # nothing written when one target is refused
    write_report(result, html_path, xlsx_path=xlsx_path, force=True)
    assert html_path.read_text(encoding="utf-8") != "old" and xlsx_path.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    with pytest.raises(InputError, match="language"):
        write_report(result, tmp_path / "x.html", lang="de")


def test_empty_suggestions_and_gaps(result, tmp_path):
    r = replace(
        result,
        suggestions=result.suggestions.iloc[0:0],
        suggestion_runs={},
        gaps=result.gaps.iloc[0:0],
    )
    files = write_report(r, tmp_path / "e.html", xlsx_path=tmp_path / "e.xlsx")
    page = _parse(files.html.read_text(encoding="utf-8"))
    assert page.tables["gaps"]["rows"] == [] and page.tables["suggestions"]["rows"] == []
    assert "（无）" in files.html.read_text(encoding="utf-8")
    assert openpyxl.load_workbook(files.xlsx)["服务缺口"].max_row == 1


@given(st.floats(min_value=0, max_value=1, allow_nan=False))
def test_percent_format_has_one_decimal(rate):
    shown = i18n.fmt_percent(rate)
    assert re.fullmatch(r"\d{1,3}\.\d%", shown)
    assert abs(float(shown[:-1]) - rate * 100) <= 0.05 + 1e-9


# ------------------------------------------------------------------------------ CJK charts

CJK_TEXT = "清波街道覆盖率分钟"


def _render_text_png(text: str, family: list[str]) -> tuple[np.ndarray, list[str]]:
    """Render ``text`` with ``family``; return the image and any missing-glyph warnings."""
    import matplotlib as mpl

    with (
        warnings.catch_warnings(record=True) as caught,
        mpl.rc_context({"font.family": "sans-serif", "font.sans-serif": family}),
    ):
        warnings.simplefilter("always")
        fig = Figure(figsize=(3, 0.6), dpi=80)
        fig.text(0.02, 0.3, text, fontsize=16)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        image = np.asarray(canvas.buffer_rgba()).copy()
    return image, [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_cjk_font_is_found_and_has_the_glyphs():
    name = charts.cjk_font()
    if name is None:
        pytest.skip("no CJK font installed (Debian: fonts-noto-cjk); charts fall back to English")
    path = font_manager.findfont(
        font_manager.FontProperties(family=name), fallback_to_default=False
    )
    assert charts._font_has(path, CJK_TEXT)
    assert charts.renderable(CJK_TEXT)


def test_cjk_chart_renders_glyphs_not_boxes(result, caplog):
    if charts.cjk_font() is None:
        pytest.skip("no CJK font installed (Debian: fonts-noto-cjk)")
    # 1. the real charts draw without a single missing-glyph warning
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        for build in (
            charts.coverage_by_area_figure,
            charts.minutes_distribution_figure,
            charts.coverage_curve_figure,
        ):
            fig = build(result, lang="zh")
            assert fig is not None
            png = charts.figure_png(fig, dpi=60)
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []
    assert not [r for r in caplog.records if "missing" in r.getMessage().lower()]
    # 2. the found font draws distinct glyphs; a font without CJK draws identical boxes and warns
    good_a, warn_a = _render_text_png("清", [charts.cjk_font()])
    good_b, warn_b = _render_text_png("波", [charts.cjk_font()])
    box_a, warn_box_a = _render_text_png("清", ["DejaVu Sans"])
    box_b, _ = _render_text_png("波", ["DejaVu Sans"])
    assert warn_a == [] and warn_b == []
    assert warn_box_a, "DejaVu Sans has no CJK: matplotlib must warn (the check above is live)"
    assert np.array_equal(box_a, box_b)  # every missing glyph is the same box
    assert not np.array_equal(good_a, good_b)  # real glyphs differ
    assert not np.array_equal(good_a, box_a)
    full, warn_full = _render_text_png(CJK_TEXT, [charts.cjk_font(), "DejaVu Sans"])
    boxes, _ = _render_text_png(CJK_TEXT, ["DejaVu Sans"])
    assert warn_full == [] and not np.array_equal(full, boxes)


def test_charts_fall_back_to_english_without_cjk_font(result, monkeypatch, caplog):
    monkeypatch.setattr(charts, "cjk_font", lambda: None)
    charts._font_paths.cache_clear()
    try:
        assert charts.chart_lang("zh") == "en"
        with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
            warnings.simplefilter("always")
            fig = charts.coverage_by_area_figure(result, lang="zh")
            charts.figure_png(fig, dpi=50)
        assert not [w for w in caught if "missing from font" in str(w.message)]
        labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        assert labels == ["#1", "#2"]  # 街道 names the fonts cannot draw become placeholders
        assert any("cannot be drawn" in r.getMessage() for r in caplog.records)
        assert fig.axes[0].get_xlabel() == "share of target population covered"
    finally:
        charts._font_paths.cache_clear()

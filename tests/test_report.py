"""The gap report: every number equals the analysis, the workbook equals the page, CJK renders."""

from __future__ import annotations

import html
import json
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
    """Collects every table (rows of (data-value, text) cells, row data-*) and the cards.

    Headers come from ``thead`` only; a group heading row (``tr.group``, a ``th``) names the
    group of the rows after it; a detail row (``tr.detail``) is attached to the row above it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.order: list[str] = []  # table keys in page order
        self.headings: list[str] = []  # h2 texts in page order
        self.cards: dict[str, str] = {}
        self.bare_cells: list[tuple[str, dict]] = []  # td without data-value (not "no rows")
        self._table: dict | None = None
        self._row: dict | None = None
        self._cell: list | None = None
        self._group: list | None = None
        self._h2: list | None = None
        self._in_head = False
        self._card_kind: str | None = None
        self.external: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "link", "img", "iframe") or (tag != "a" and "src" in a):
            self.external.append((tag, a))
        if tag == "table":
            self._table = {"headers": [], "rows": [], "groups": [], "cls": a.get("class")}
            self.tables[a["data-table"]] = self._table
            self.order.append(a["data-table"])
        elif tag == "thead":
            self._in_head = True
        elif tag == "th" and self._table is not None and self._in_head:
            self._table["headers"].append(a.get("data-key"))
        elif tag == "th" and self._row is not None and self._row["cls"] == "group":
            self._group = [""]
        elif tag == "tr" and self._table is not None:
            self._row = {
                "attrs": {k[5:]: v for k, v in a.items() if k.startswith("data-")},
                "cells": [],
                "keys": [],
                "classes": [],
                "cls": a.get("class"),
                "group": self._table["groups"][-1] if self._table["groups"] else None,
            }
        elif tag == "td" and self._row is not None and "data-value" in a:
            self._cell = [a["data-value"], ""]
            self._row["keys"].append(a.get("data-key"))
            self._row["classes"].append(a.get("class", ""))
        elif tag == "td" and self._row is not None and self._row["cls"] != "empty":
            self.bare_cells.append((tag, a))
        elif tag == "h2":
            self._h2 = [""]
        elif tag == "div" and a.get("class") == "card":
            self._card_kind = a["data-kind"]
        elif tag == "div" and a.get("class") == "card-rate":
            self.cards[self._card_kind] = a["data-value"]

    def handle_data(self, data):
        for buf in (self._cell, self._group, self._h2):
            if buf is not None:
                buf[-1] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row["cells"].append(tuple(self._cell))
            self._cell = None
        elif tag == "th" and self._group is not None:
            self._table["groups"].append(self._group[0])
            self._group = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "h2" and self._h2 is not None:
            self.headings.append(self._h2[0])
            self._h2 = None
        elif tag == "tr" and self._row is not None:
            if self._row["cls"] == "detail":
                self._table["rows"][-1]["detail"] = self._row["cells"][0]
            elif self._row["cells"]:
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


def _cells(row: dict) -> dict:
    """A parsed row's cells by column key: (data-value, shown text)."""
    return dict(zip(row["keys"], row["cells"], strict=True))


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
            "nearest_facility_minutes",
        ):
            assert _same(_val(row["cells"][gaps["headers"].index(key)][0]), getattr(ref, key)), key
        fac = result.facilities  # the reader sees the facility's name, not its id
        name = fac.loc[
            (fac["kind"] == ref.kind) & (fac["facility_id"] == ref.nearest_facility), "name"
        ]
        shown = _val(row["cells"][gaps["headers"].index("nearest_name")][0])
        assert shown == (name.iloc[0] if len(name) else ref.nearest_facility)
    sug = page.tables["suggestions"]
    ref_sug = result.suggestions.sort_values(["kind", "rank"])
    for row, ref in zip(sug["rows"], ref_sug.itertuples(), strict=True):
        for key in ("rank", "name", "site_id", "added_population", "coverage_rate_after"):
            assert _same(_val(row["cells"][sug["headers"].index(key)][0]), getattr(ref, key)), key
        assert _val(row["cells"][sug["headers"].index("model")][0]) == i18n.model_label(
            ref.model, "zh"
        )
    runs = page.tables["runs"]
    assert [r["attrs"]["kind"] for r in runs["rows"]] == list(result.suggestion_runs)
    for row in runs["rows"]:
        run = result.suggestion_runs[row["attrs"]["kind"]]
        for key in (
            "coverage_rate_before",
            "coverage_rate_after",
            "optimal",
            "gap",
            "unreachable_population",
        ):
            assert _same(_val(row["cells"][runs["headers"].index(key)][0]), getattr(run, key)), key
        status = _val(row["cells"][runs["headers"].index("status")][0])
        assert status == (
            "已证明最优" if run.optimal else f"时限内未证明最优，与最优解最多相差{run.gap:.1%}"
        )
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
    seen = set()
    for key, parsed in page.tables.items():
        table = tables[key]
        cols = table.html_columns()
        records = table.rows.to_dict("records")
        assert len(parsed["rows"]) == len(records), key
        for row, rec in zip(parsed["rows"], records, strict=True):
            assert row["keys"] == [c.key for c in cols], key
            for col, (raw, shown) in zip(cols, row["cells"], strict=True):
                value = _val(raw) if raw != "" else None
                fmt = col.fmt_of(rec)
                seen.add(fmt)
                if fmt == "text":
                    assert shown == raw
                    continue
                if fmt in ("status", "units"):  # coded words: the code stays in data-value
                    value = raw
                assert shown == FORMATS[fmt][0](value, "zh"), (key, col.key)
                if fmt == "percent" and isinstance(value, float) and math.isfinite(value):
                    assert re.fullmatch(r"-?\d+\.\d%", shown)
                if fmt == "minutes" and value == math.inf:
                    assert shown == "路网不可达"
                    seen_inf = True
                if fmt == "na":
                    assert shown == "—"
    assert seen_inf  # the fixture has unreachable gaps: inf is shown in words
    assert {"status", "units", "na", "percent", "count"} <= seen
    assert page.bare_cells == []  # every cell carries the exact value it shows


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
    assert text.index("一、结论") < text.index("二、规划目标") < text.index("三、总体覆盖")
    assert text.index("三、总体覆盖") < text.index("四、各街道") < text.index("五、服务缺口")
    assert text.index("五、服务缺口") < text.index("八、方法与数据")
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
    assert wb.sheetnames[:2] == ["规划目标", "目标未达标单元"]
    for t in tables:
        ws = wb[t.sheet]
        rows = list(ws.iter_rows(values_only=True))
        assert list(rows[0]) == [c.label for c in t.columns]
        assert len(rows) - 1 == len(t.rows)
        records = t.rows.to_dict("records")
        for got, rec in zip(rows[1:], records, strict=True):
            for value, col in zip(got, t.columns, strict=True):
                want = rec[col.key]
                fmt = col.fmt_of(rec)
                if fmt == "na":  # not defined for the row's measure: an empty cell
                    assert value is None
                elif fmt in ("status", "units"):  # words, as the page shows them
                    shown = FORMATS[fmt][0](want, "zh") if want != "" else None
                    assert value == shown, (t.key, col.key)
                elif isinstance(want, float) and not math.isfinite(want):
                    assert value is None
                elif isinstance(want, bool | np.bool_):
                    assert value is bool(want)
                elif isinstance(want, float):
                    # openpyxl stores 16 significant digits ("%.16g"): equal at that precision
                    assert value == float(f"{want:.16g}"), (t.key, col.key)
                else:  # an empty text is an empty cell in XLSX
                    assert value == (None if want == "" else want), (t.key, col.key)
        for j, col in enumerate(t.columns, start=1):
            for i, rec in enumerate(records, start=2):
                fmt = FORMATS[col.fmt_of(rec)][1]
                if fmt is not None:  # per cell: a target's value is a share or a count
                    assert ws.cell(row=i, column=j).number_format == fmt, (t.key, col.key)


def test_english_report_and_sheets(result, tmp_path):
    files = write_report(result, tmp_path / "en.html", lang="en", xlsx_path=tmp_path / "en.xlsx")
    text = files.html.read_text(encoding="utf-8")
    assert "Coverage against the 15-minute goal" in text and "总体覆盖" not in text
    assert "Community canteen" in text
    assert openpyxl.load_workbook(files.xlsx).sheetnames[:3] == [
        "Targets",
        "Targets - worst units",
        "Headline",
    ]
    assert '<html lang="en">' in text
    page = _parse(text)
    assert page.headings[:2] == ["1. Conclusions", "2. Planning targets"]
    t = page.tables["targets"]
    shown = {c: [_cells(r)[c][1] for r in t["rows"]] for c in ("scope_label", "status")}
    scopes = {"district": "district", "street": "each sub-district", "community": "each community"}
    assert shown["scope_label"] == [scopes[s] for s in result.targets["scope"]]
    assert shown["status"] == list(result.targets["status"])  # "met" / "not met"
    assert "未达标" not in text and "各街道" not in text
    units = [_cells(r)["units"][1] for r in t["rows"]]
    assert "1/2 met" in units


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


# ------------------------------------------------------------------------------ planning targets


def test_report_opens_with_the_targets(result, written):
    files, page = written
    assert page.order[0] == "targets" and page.order[1] == "target_units"
    assert page.headings[:3] == ["一、结论", "二、规划目标完成情况", "三、总体覆盖与15分钟目标"]
    text = files.html.read_text(encoding="utf-8")
    assert text.index('id="t-targets"') < text.index('class="cards"')
    # without targets the report opens with the headline, numbered from one
    bare = replace(result, targets=pd.DataFrame(), target_units=pd.DataFrame())
    other = _parse(write_report(bare, files.html.with_name("bare.html")).html.read_text("utf-8"))
    assert "targets" not in other.tables and "target_units" not in other.tables
    assert other.headings[:2] == ["一、结论", "二、总体覆盖与15分钟目标"]
    assert other.order[0] == "headline"


def test_target_table_equals_result(result, written):
    _, page = written
    t = page.tables["targets"]
    ref = result.targets
    assert len(t["rows"]) == len(ref) == 5  # one row per target
    assert t["cls"] == "targets"
    scopes = {"district": "全区", "street": "各街道", "community": "各社区"}
    for i, (row, r) in enumerate(zip(t["rows"], ref.to_dict("records"), strict=True)):
        assert row["attrs"]["target"] == str(i)
        assert row["attrs"]["layer"] == r["layer"] and row["attrs"]["scope"] == r["scope"]
        cells = _cells(row)
        for key in (
            "label",
            "minutes",
            "threshold",
            "status",
            "value",
            "shortfall_population",
            "shortfall_sites",
            "sites_needed",
        ):
            assert _same(_val(cells[key][0]), r[key]), (i, key)
        assert cells["layer_label"][1] == result.specs[r["layer"]].label_zh
        assert cells["scope_label"][1] == scopes[r["scope"]]
        assert cells["status"][1] == ("达标" if r["status"] == "met" else "未达标")
        status_cls = row["classes"][row["keys"].index("status")]
        assert status_cls.split()[-1] == ("met" if r["status"] == "met" else "unmet")
        count = r["measure"] == "facility_count"
        threshold, value = cells["threshold"][1], cells["value"][1]
        if count:  # facility counts read as counts, shares as percent
            assert threshold == f"{r['threshold']:,.0f}" and value == f"{r['value']:,.0f}"
            assert cells["shortfall_population"][1] == "—"
            assert cells["shortfall_sites"][1] == f"{r['shortfall_sites']:,}"
        else:
            assert threshold == f"{r['threshold'] * 100:.1f}%"
            assert value == f"{r['value'] * 100:.1f}%"
            assert cells["shortfall_population"][1] == f"{r['shortfall_population']:,.0f}"
            assert cells["shortfall_sites"][1] == "—"
        if r["scope"] == "district":
            assert cells["units"] == ("", "—")
        else:  # the worst unit's value plus how many units meet it
            assert cells["units"][0] == f"{r['units_met']}/{r['units_total']}"
            assert cells["units"][1] == f"{r['units_met']}/{r['units_total']} 达标"
        if math.isnan(r["sites_needed"]):
            assert cells["sites_needed"][1] == "—"
        if r["reason"]:  # the coded reason under the target, in words; its code in data-value
            assert row["detail"][0] == r["reason"]
            said = i18n.target_reason(r["reason"], r["label"], "zh")
            assert row["detail"][1] == f"无法达标原因：{said}"
            (coded,) = json.loads(r["reason"])
            assert said.startswith(f"「{r['label']}」全区") and coded["unit"] == ""
            assert i18n.fmt_percent(coded["best_share"]) in said
            assert f"{i18n.fmt_people(coded['people_out_of_reach'])}人" in said
        else:
            assert "detail" not in row
    # the fixture covers every case the table distinguishes
    assert set(ref["status"]) == {"met", "not met"}
    assert (ref["reason"] != "").sum() == 1 and ref["sites_needed"].isna().sum() == 1
    assert {"district", "street", "community"} == set(ref["scope"])


def test_worst_units_equal_target_units(result, written):
    _, page = written
    t = page.tables["target_units"]
    units = result.target_units
    expected = []
    for i, r in enumerate(result.targets.to_dict("records")):
        if r["status"] == "met" or r["scope"] == "district":
            continue
        part = units[(units["target"] == i) & ~units["met"]].head(5)
        expected += [(i, r, u) for u in part.to_dict("records")]
    assert len(t["rows"]) == len(expected) > 0
    assert t["groups"] == list(dict.fromkeys(r["label"] for _, r, _ in expected))
    for row, (i, r, u) in zip(t["rows"], expected, strict=True):
        assert row["attrs"]["target"] == str(i) and row["attrs"]["unit"] == u["unit"]
        assert row["group"] == r["label"]  # under its target's heading
        cells = _cells(row)
        assert "label" not in cells  # said once, in the heading
        for key in ("unit", "value", "shortfall_population"):
            assert _same(_val(cells[key][0]), u[key]), key
        assert _same(_val(cells["threshold"][0]), r["threshold"])
    # worst first, as target_units orders them; every target lists at most 5
    ranks = [int(_val(_cells(row)["rank"][0])) for row in t["rows"]]
    assert max(ranks) <= 5 and ranks[0] == 1
    # columns no listed target defines are left out (no facility-count target is listed)
    assert "shortfall_sites" not in t["headers"]


def test_all_targets_met_lists_no_units(result, tmp_path):
    met = result.targets[result.targets["status"] == "met"].reset_index(drop=True)
    units = result.target_units[result.target_units["label"].isin(met["label"])].assign(target=0)
    r = replace(result, targets=met, target_units=units)
    files = write_report(r, tmp_path / "m.html", xlsx_path=tmp_path / "m.xlsx")
    page = _parse(files.html.read_text(encoding="utf-8"))
    assert page.order[0] == "targets" and "target_units" not in page.tables
    assert len(page.tables["targets"]["rows"]) == 1
    assert "目标未达标单元" not in openpyxl.load_workbook(files.xlsx).sheetnames


def test_hostile_target_labels_are_text(tmp_path):
    r = make_result(hostile=True)
    files = write_report(r, tmp_path / "h.html", xlsx_path=tmp_path / "h.xlsx")
    text = files.html.read_text(encoding="utf-8")
    assert "<script>alert" not in text and "<img src=x" not in text
    page = _parse(text)
    labels = [_cells(row)["label"][1] for row in page.tables["targets"]["rows"]]
    assert labels == list(r.targets["label"]) and all(HOSTILE in s or "<img" in s for s in labels)
    assert page.tables["target_units"]["groups"][0] in set(r.targets["label"])
    units = [_cells(row)["unit"][1] for row in page.tables["target_units"]["rows"]]
    assert set(units) <= set(r.target_units["unit"])
    reason = next(row["detail"] for row in page.tables["targets"]["rows"] if "detail" in row)
    assert HOSTILE in reason[1] or "<img" in reason[1]  # the label inside the reason, as text
    wb = openpyxl.load_workbook(files.xlsx)
    assert [c.value for c in wb["规划目标"]["A"]][1:] == labels


def test_targets_with_the_same_label_stay_apart(result, tmp_path):
    same = result.targets.assign(label="同一目标")
    units = result.target_units.assign(label="同一目标")
    files = write_report(replace(result, targets=same, target_units=units), tmp_path / "s.html")
    page = _parse(files.html.read_text(encoding="utf-8"))
    listed = {row["attrs"]["target"] for row in page.tables["target_units"]["rows"]}
    assert len(listed) == 2 and page.tables["target_units"]["groups"] == ["同一目标"] * 2


FORMULA_NAMES = ('=HYPERLINK("http://x","点我")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)")


def test_formula_like_names_stay_text_in_the_workbook(tmp_path):
    """A 街道 or site named like a formula is stored as a string cell, never as a formula."""
    r = make_result()
    streets = list(r.areas.loc[r.areas["level"] == "street", "area"])
    rename = {old: FORMULA_NAMES[-1 - i % len(FORMULA_NAMES)] for i, old in enumerate(streets)}
    areas = r.areas.assign(
        area=r.areas["area"].replace(rename), parent=r.areas["parent"].replace(rename)
    )
    metrics = r.metrics.assign(area=r.metrics["area"].replace(rename))
    sugg = r.suggestions.assign(
        name=[FORMULA_NAMES[i % len(FORMULA_NAMES)] for i in range(len(r.suggestions))]
    )
    r = replace(r, areas=areas, metrics=metrics, suggestions=sugg)
    files = write_report(r, tmp_path / "f.html", xlsx_path=tmp_path / "f.xlsx")
    wb = openpyxl.load_workbook(files.xlsx)
    seen: set[str] = set()
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str) and cell.value[:1] in "=+-@":
                    seen.add(cell.value)
    assert set(rename.values()) <= seen  # the 街道 names are there, verbatim
    assert set(sugg["name"]) <= seen  # and the site names
    import zipfile

    with zipfile.ZipFile(files.xlsx) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
        assert sheets and not any(b"<f>" in z.read(n) for n in sheets)


def test_report_opens_with_one_conclusion_per_layer(result, written):
    """The first section says, per layer, the rate, the worst 街道 and what new sites add."""
    from maps.report import conclusions

    files, _ = written
    text = files.html.read_text(encoding="utf-8")
    lines = conclusions(result, "zh")
    assert len(lines) == len(result.specs)
    m = result.metrics
    for line, (kind, spec) in zip(lines, result.specs.items(), strict=True):
        at = m[(m["kind"] == kind) & (m["minutes"] == spec.headline_min)]
        rate = at.loc[at["level"] == "district", "coverage_rate"].iloc[0]
        streets = at[at["level"] == "street"].sort_values("coverage_rate")
        assert line.startswith(i18n.target_group_label(spec.target_group, "zh"))
        assert f"{rate:.1%}" in line and f"{spec.headline_min:g}分钟" in line
        assert spec.label("zh") in line
        if streets["coverage_rate"].iloc[0] < 1:
            assert (
                f"最差的是{streets['area'].iloc[0]}（{streets['coverage_rate'].iloc[0]:.1%}）"
                in line
            )
        run = result.suggestion_runs.get(kind)
        if run is not None:
            n = int((result.suggestions["kind"] == kind).sum())
            assert f"新增{n}处可提高到{run.coverage_rate_after:.1%}" in line
        else:
            assert "新增" not in line
        assert line in html.unescape(text)
    assert text.index('id="conclusions"') < text.index("二、规划目标")
    names = sorted(map(str, result.areas["area"]), key=len, reverse=True)
    for line in conclusions(result, "en"):
        for name in names:  # place names stay as written; every other word is English
            line = line.replace(name, "")
        assert not re.search("[\u4e00-\u9fff]", line), line


def test_osm_proxy_layers_are_named_in_the_data_checks(result):
    """A layer built from OSM tags (prepare-osm) says so in the report, not only the sources."""
    r = replace(result, checks=replace(result.checks, osm_proxy_layers=("canteen",)))
    for lang, word in (("zh", "OpenStreetMap 标签"), ("en", "OpenStreetMap tags")):
        checks = next(t for t in report_tables(r, lang=lang) if t.key == "checks")
        first = checks.rows.iloc[0]
        assert word in first["check"] and r.specs["canteen"].label(lang) in first["check"]
        assert first["count"] == int((r.facilities["kind"] == "canteen").sum())

"""Chart fonts: real CJK glyphs or English labels, never boxes; no raw library warnings.

The font cases are simulated on matplotlib's real font manager (its list patched, restored after
each test) and, for the README's order (`make demo` caches matplotlib's font list, `make test`
then installs fonts-noto-cjk), in a child process started with a stale cached list.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import subprocess
import sys
import textwrap
import warnings
from dataclasses import replace
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.text import Text

from maps import charts
from tests.conftest import ROOT
from tests.fixtures_result import make_result

LAST_RESORT = Path(mpl.get_data_path(), "fonts", "ttf", "LastResortHE-Regular.ttf")


@pytest.fixture(scope="module")
def result():
    return make_result()


def _clear_font_caches() -> None:
    charts.cjk_font.cache_clear()
    charts._font_paths.cache_clear()
    font_manager.fontManager._findfont_cached.cache_clear()


@pytest.fixture
def fresh_fonts():
    """Forget every font answer before and after the test (monkeypatch restores the lists)."""
    _clear_font_caches()
    yield
    _clear_font_caches()


def _bundled(entries: list) -> list:
    """The entries of matplotlib's own fonts: what a machine without system fonts has."""
    data = str(Path(mpl.get_data_path()).resolve())
    return [e for e in entries if str(Path(e.fname).resolve()).startswith(data)]


def _system_cjk_files() -> set[str]:
    """System font files with real CJK glyphs (Debian: fonts-noto-cjk), skip when none.

    Checked here without the code under test: the font maps 食 and 堂 to two different glyphs.
    """
    files = set()
    for path in font_manager.findSystemFonts():
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            font = FT2Font(path)
            a, b = (font.get_char_index(ord(c)) for c in "食堂")
            if a and b and a != b:
                files.add(str(Path(path).resolve()))
    if not files:
        pytest.skip("no CJK font installed (Debian: apt-get install fonts-noto-cjk)")
    return files


def _render(text: str) -> np.ndarray:
    """Pixels of ``text`` drawn with the chart fonts."""
    with charts.chart_style():
        fig = Figure(figsize=(1.2, 0.6), dpi=80)
        fig.text(0.1, 0.25, text, fontsize=20)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba()).copy()


def test_box_font_is_refused_and_real_cjk_font_accepted():
    # Last Resort maps every code point, so a character-map check alone accepts it ...
    assert charts._font_has(str(LAST_RESORT), charts.CJK_PROBE)
    # ... but it draws 食, 堂 and 邻 as one and the same box
    assert not charts._draws_cjk(str(LAST_RESORT))
    dejavu = font_manager.findfont(font_manager.FontProperties(family=["DejaVu Sans"]))
    assert not charts._draws_cjk(str(dejavu))
    for path in _system_cjk_files():
        assert charts._distinct_outlines(path, 0, charts.CJK_DISTINCT_PROBE)


def test_without_cjk_fonts_charts_use_english_and_draw_no_boxes(
    result, monkeypatch, caplog, fresh_fonts
):
    manager = font_manager.fontManager
    monkeypatch.setattr(manager, "ttflist", _bundled(manager.ttflist))
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *a, **k: [])
    assert any(Path(e.fname).name == LAST_RESORT.name for e in manager.ttflist)
    with caplog.at_level(logging.WARNING, logger="maps.charts"):
        assert charts.cjk_font() is None
        assert charts.chart_lang("zh") == "en"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig = charts.coverage_by_area_figure(result, lang="zh")
            assert fig is not None
            charts.figure_png(fig, dpi=50)
    assert caught == []  # nothing reaches the terminal
    assert any("no font with Chinese glyphs" in r.getMessage() for r in caplog.records)
    assert not any("no glyph" in r.getMessage() for r in caplog.records)
    # every text on the chart is drawable by the Latin font alone: no box anywhere
    latin = charts._charmap(*charts._font_paths()[0])
    texts = [t.get_text() for t in fig.findobj(Text) if t.get_text()]
    assert texts and all(ord(c) in latin for t in texts for c in t if not c.isspace())
    assert fig.axes[0].get_xlabel() == "share of target population covered"


def test_stale_font_list_is_refreshed_once_and_draws_real_glyphs(
    monkeypatch, tmp_path, caplog, fresh_fonts
):
    cjk_files = _system_cjk_files()
    manager = font_manager.fontManager
    stale = [e for e in manager.ttflist if str(Path(e.fname).resolve()) not in cjk_files]
    monkeypatch.setattr(manager, "ttflist", stale)
    monkeypatch.setattr(mpl, "get_cachedir", lambda: str(tmp_path))
    calls = []
    find_system_fonts = font_manager.findSystemFonts

    def counting(*args, **kwargs):
        calls.append(1)
        return find_system_fonts(*args, **kwargs)

    monkeypatch.setattr(font_manager, "findSystemFonts", counting)
    with caplog.at_level(logging.INFO, logger="maps.charts"):
        name = charts.cjk_font()
        assert name is not None and charts.cjk_font() == name
    assert len(calls) == 1  # rebuilt once, then the answer is cached
    assert charts.chart_lang("zh") == "zh"
    # the refreshed list is saved where matplotlib reads it next time
    cached = json.loads(next(tmp_path.glob("fontlist-*.json")).read_text(encoding="utf-8"))
    assert {str(Path(e["fname"]).resolve()) for e in cached["ttflist"]} & cjk_files
    # a real rendering check: different characters give different pixels, not one box each
    with caplog.at_level(logging.WARNING, logger="maps.charts"):
        canteen, hall = _render("食堂"), _render("邻里")
    assert not np.array_equal(canteen, hall)
    assert not any("no glyph" in r.getMessage() for r in caplog.records)


def test_readme_order_stale_cache_then_font_install(tmp_path):
    """`make demo` cached a font list without CJK; `make test` installed the font afterwards."""
    cjk_files = _system_cjk_files()
    manager = font_manager.fontManager
    stale_manager = copy.copy(manager)
    stale_manager.ttflist = [
        e for e in manager.ttflist if str(Path(e.fname).resolve()) not in cjk_files
    ]
    cache = tmp_path / f"fontlist-v{font_manager.FontManager.__version__}.json"
    font_manager.json_dump(stale_manager, cache)
    script = textwrap.dedent(
        """
        from maps import charts
        from tests.fixtures_result import make_result

        got = charts.report_charts(make_result(), lang="zh")
        print(charts.cjk_font())
        print(" | ".join(c.title for c in got))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}  # Python's defaults
    env["MPLCONFIGDIR"] = str(tmp_path)
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    name, titles = run.stdout.splitlines()[-2:]
    assert name in charts.CJK_FONT_CANDIDATES or "CJK" in name
    assert "各街道覆盖率" in titles
    assert run.stderr == ""  # no raw warnings, no log warning: the charts drew Chinese
    saved = json.loads(cache.read_text(encoding="utf-8"))
    assert {str(Path(e["fname"]).resolve()) for e in saved["ttflist"]} & cjk_files


def test_layout_and_glyph_warnings_become_log_lines(result, caplog):
    long_name = "一个名字非常非常长的街道" * 12
    metrics = result.metrics.copy()
    metrics.loc[metrics["level"] == "street", "area"] = long_name
    crowded = replace(result, metrics=metrics)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        fig = charts.coverage_by_area_figure(crowded, lang="zh")
        assert fig is not None
        charts.figure_svg(fig)
        _render("\ue000")  # a private-use character no font draws
    assert caught == []
    messages = [r.getMessage() for r in caplog.records if r.name == "maps.charts"]
    assert sum("do not fit" in m for m in messages) == 1
    assert sum("no glyph for 1 characters" in m for m in messages) == 1

"""Progress: a bar per counted stage on a terminal, a few lines otherwise, nothing when quiet."""

from __future__ import annotations

import pytest

import app as cli
from coverage.progress import CountingProgress, count


@pytest.fixture
def cli_progress() -> type:
    return cli.Progress


def test_plain_receivers_take_counts_silently():
    lines: list[str] = []
    count(lines.append, "partitions", 3, 10)  # a plain callable: no count method, no call
    count(None, "partitions", 3, 10)
    assert lines == []


def test_counts_become_tenths_without_a_terminal(cli_progress, capsys):
    p = cli_progress(True, bars=False)
    assert isinstance(p, CountingProgress)
    for done in range(101):
        p.count("partitions", done, 100)
    err = capsys.readouterr().err.splitlines()
    assert [line.split("] ")[1] for line in err] == [
        f"  partitions: {d}/100" for d in range(0, 101, 10)
    ]
    p.count("routing layers", 1, 4)  # few items: their step lines say it already
    assert capsys.readouterr().err == ""


def test_counts_draw_a_bar_on_a_terminal_and_lines_pass_above_it(cli_progress, capsys):
    p = cli_progress(True, bars=True)
    p.count("partitions", 0, 40)
    p("a step line while the bar runs")
    for done in range(1, 41):
        p.count("partitions", done, 40)
    err = capsys.readouterr().err
    assert "partitions" in err and "40/40" in err  # tqdm's bar
    assert "a step line while the bar runs" in err
    assert p._bar is None  # closed when the stage is done


def test_quiet_shows_nothing(cli_progress, capsys):
    p = cli_progress(False, bars=True)
    p("step")
    p.count("partitions", 5, 10)
    assert capsys.readouterr().err == ""

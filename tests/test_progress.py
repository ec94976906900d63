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


def test_a_suggestion_says_its_first_answer_before_the_proof():
    """The CLI shows the heuristic's answer and bound while HiGHS proves it, not after."""
    import dataclasses

    import numpy as np

    from coverage.analysis import _Clock, _say_incumbent
    from coverage.optimize import CoverageProblem, solve

    rng = np.random.default_rng(3)
    rows, cols = rng.integers(0, 60, 400), rng.integers(0, 25, 400)
    problem = CoverageProblem.from_pairs(
        rng.integers(1, 50, 60).astype(float),
        rows,
        cols,
        rng.uniform(0, 20, 400),
        threshold_min=15.0,
        n_candidates=25,
    )
    lines: list[str] = []
    sol = solve(problem, "mclp", p=3, method="heuristic")
    _say_incumbent(
        _Clock(lines.append), "Community canteen", dataclasses.replace(sol, optimal=False)
    )
    assert len(lines) == 1
    assert f"first answer {sol.objective:,.0f} people" in lines[0]
    assert f"best possible {sol.bound:,.0f}" in lines[0]
    _say_incumbent(_Clock(lines.append), "x", dataclasses.replace(sol, optimal=True))
    assert len(lines) == 1  # a proven answer is said once, with the result

"""The layer table's specs: other thresholds never move a layer's goal."""

from __future__ import annotations

import logging

from layers.spec import load_layer_table


def test_minutes_without_the_goal_keep_the_goal(caplog):
    spec = load_layer_table()["canteen"]
    assert spec.headline_min == 15
    with caplog.at_level(logging.INFO, logger="layers.spec"):
        other = spec.with_thresholds((5.0, 10.0, 20.0))
    assert other.headline_min == 15  # never silently 20 (the largest given)
    assert other.thresholds_min == (5.0, 10.0, 15.0, 20.0)
    assert "goal of 15 minutes is kept" in caplog.text
    same = spec.with_thresholds((15.0, 5.0))
    assert same.thresholds_min == (5.0, 15.0) and same.headline_min == 15

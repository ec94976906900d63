"""The staged analysis: same numbers as before the restructuring, state reused, not recomputed."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

BASELINE = Path(__file__).parent / "data" / "demo_summary_before_stages.json"
#: Fields that may differ: measured times.  Fields the baseline lacks are new and allowed.
VOLATILE = {"timings_s"}
_TIME = re.compile(r"\b\d+(\.\d+)? m?s\b")


def _same(old, new, path="") -> list[str]:
    """Where ``new`` differs from ``old`` (new keys in ``new`` are allowed)."""
    if isinstance(old, dict):
        if not isinstance(new, dict):
            return [f"{path}: {type(new).__name__} instead of an object"]
        out = []
        for k, v in old.items():
            if k in VOLATILE:
                continue
            if k not in new:
                out.append(f"{path}.{k}: missing")
            else:
                out += _same(v, new[k], f"{path}.{k}")
        return out
    if isinstance(old, list):
        if not isinstance(new, list) or len(new) != len(old):
            return [f"{path}: {len(old)} items before, {new!r:.80} now"]
        return [
            e
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for e in _same(a, b, f"{path}[{i}]")
        ]
    if isinstance(old, float) and isinstance(new, (int, float)):
        return (
            []
            if math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-12)
            else [f"{path}: {old} -> {new}"]
        )
    if isinstance(old, str) and isinstance(new, str):  # solver lines carry their run time
        old, new = _TIME.sub("<t>", old), _TIME.sub("<t>", new)
    return [] if old == new else [f"{path}: {old!r:.80} -> {new!r:.80}"]


def test_demo_summary_unchanged_by_the_stages(tmp_path):
    """Issue 13: the demo's summary.json equals the copy made before the change (new fields aside)."""
    out = tmp_path / "demo"
    r = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "demo", "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "true"},
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    old = json.loads(BASELINE.read_text(encoding="utf-8"))
    new = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    diffs = _same(old, new)
    assert not diffs, "\n".join(diffs[:20])
    assert set(new["timings_s"]) >= {"snap", "measure", "total"}


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])

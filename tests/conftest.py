"""Shared fixtures: paths to the real OSM data beside the project, skipped cleanly when absent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_OSM = ROOT.parent / "shared" / "data" / "osm"
ARTIFACTS = ROOT / "tests" / "_artifacts"


def shared_file(name: str) -> Path:
    """Return a file of ../shared/data/osm, or skip the test when it is not there."""
    path = SHARED_OSM / name
    if not path.exists():
        pytest.skip(f"real OSM data not present: {path}")
    return path


@pytest.fixture
def artifacts_dir() -> Path:
    """A folder for screenshots and other files tests leave for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

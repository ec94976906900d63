"""GeoParquet, and plain Parquet tables with coordinate columns (read as CSV/XLSX tables are)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from layers.atomic import atomic_path
from layers.io.files import unreadable


def is_geoparquet(p: Path) -> bool:
    """True when the Parquet file carries GeoParquet ``geo`` metadata."""
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(p).metadata or {}
    except Exception as exc:
        raise unreadable(p, "GeoParquet", exc) from None
    return b"geo" in meta


def read_geoparquet(p: Path) -> gpd.GeoDataFrame:
    """Read a GeoParquet file."""
    try:
        return gpd.read_parquet(p)
    except Exception as exc:
        raise unreadable(p, "GeoParquet", exc) from None


def read_plain_parquet(p: Path) -> pd.DataFrame:
    """Read a Parquet table without geometry metadata (coordinates in columns)."""
    try:
        return pd.read_parquet(p)
    except Exception as exc:
        raise unreadable(p, "Parquet", exc) from None


def write_geoparquet(out: gpd.GeoDataFrame, p: Path, *, force: bool) -> None:
    """Write a GeoParquet file atomically."""
    with atomic_path(p, force=force) as tmp:
        out.to_parquet(tmp)

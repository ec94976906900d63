"""Reading and writing layer files, one module per format family.

::

    files     the suffix table, file checks, GDAL's sidecars, library warnings, text encodings
    ogr       GeoPackage, GeoJSON, Shapefile (.cpg and DBF encodings, 10-byte field names)
    tables    CSV and XLSX as offices write them (separators, title rows, office numbers)
    parquet   GeoParquet, and plain Parquet tables with coordinate columns
    api       read_table / write_table / list_layers: choose the family, settle the coordinates

Formats: GeoJSON, GeoPackage (several layers), Shapefile, GeoParquet, CSV and XLSX.  Tables
without a geometry column need coordinate columns (``lon/lat``, ``lng/lat``,
``longitude/latitude``, ``x/y``, ``经度/纬度``, ``东经/北纬``) or WKT in a ``geometry`` column.
Chinese text is read from UTF-8 (with or without BOM) and GBK/GB18030, which is what Excel and
ArcGIS on Chinese Windows produce; Shapefiles honour their ``.cpg``.
"""

from __future__ import annotations

from layers.io.api import list_layers, read_table, write_table
from layers.io.files import (
    FORMATS,
    WriteResult,
    library_warnings,
    no_sidecar_files,
    table_format,
)
from layers.io.ogr import shapefile_field_names

__all__ = [
    "FORMATS",
    "WriteResult",
    "library_warnings",
    "list_layers",
    "no_sidecar_files",
    "read_table",
    "shapefile_field_names",
    "table_format",
    "write_table",
]

"""GeoPackage, GeoJSON and Shapefile, read and written through GDAL (pyogrio).

Shapefiles are where text encodings go wrong: a ``.cpg`` naming a code page GDAL does not know,
a ``.dbf`` without ``.cpg`` in GBK, a ``.dbf`` that is UTF-8 except for a pasted record.  Each is
resolved here or named, with the record, in one line.  Field names cut to 10 bytes on writing are
restored on reading from the ``<name>_fields.csv`` written beside the Shapefile.
"""

from __future__ import annotations

import codecs
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Final

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from layers.atomic import atomic_path, check_target, publish_staged
from layers.errors import InputError
from layers.io.files import TEXT_ENCODINGS, mixed_utf8, no_sidecar_files, sibling, unreadable
from layers.validate import pick_named

log = logging.getLogger(__name__)

DRIVERS: Final = {"GeoJSON": "GeoJSON", "GeoPackage": "GPKG", "Shapefile": "ESRI Shapefile"}
_SHP_PARTS: Final = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp.xml")
_DBF_NAME_BYTES: Final = 10


def ogr_layers(p: Path, fmt: str) -> list[tuple[str, str | None]]:
    """``(name, geometry type or None)`` of every layer GDAL sees in the file."""
    no_sidecar_files()
    try:
        raw = pyogrio.list_layers(p)
    except Exception as exc:  # GDAL raises several error types for unreadable files
        raise unreadable(p, fmt, exc) from None
    return [(str(name), None if geom is None else str(geom)) for name, geom in raw]


def choose_layer(p: Path, fmt: str, layer: str | None, option: str) -> str | None:
    """The layer to read: the one named, else a GeoPackage's only spatial layer."""
    layers = ogr_layers(p, fmt)
    spatial = [name for name, geom in layers if geom]
    names = [name for name, _ in layers]
    if layer is not None:
        return pick_named(p, layer, names, noun="layer", option=option)
    if fmt != "GeoPackage":
        return None
    if len(spatial) == 1:
        return spatial[0]
    if not spatial:
        msg = "the GeoPackage has no layer with geometries"
        raise InputError(msg, file=p, fix="export a spatial layer")
    msg = f"the GeoPackage holds {len(spatial)} layers: {', '.join(spatial)}"
    raise InputError(msg, file=p, fix=f"choose one with {option}")


def read_ogr(
    p: Path, fmt: str, layer: str | None, encoding: str | None
) -> tuple[gpd.GeoDataFrame, str | None]:
    """Read one layer; a Shapefile's text encoding from its ``.cpg`` or its ``.dbf`` bytes."""
    used = encoding
    dbf = sibling(p, ".dbf") if fmt == "Shapefile" else None
    source = "the encoding passed"
    if fmt == "Shapefile" and encoding is None:
        cpg = sibling(p, ".cpg")
        if cpg is not None:
            encoding = _cpg_encoding(cpg, p)
            used = (
                cpg.read_bytes().decode("ascii", errors="replace").strip()
            )  # as the user wrote it
            source = cpg.name
            log.info("%s: text encoding %s (%s) from %s", p.name, used, encoding, cpg.name)
        elif dbf is not None:
            used = _dbf_text_encoding(dbf, p)
            if used is None:
                msg = "cannot tell the text encoding of the .dbf (neither UTF-8 nor GBK)"
                raise InputError(
                    msg, file=p, fix=f"add {p.stem}.cpg naming the encoding, or pass encoding="
                )
            log.info("%s: no .cpg file; text decoded as %s", p.name, used.upper())
            encoding = used
    no_sidecar_files()
    try:
        gdf = pyogrio.read_dataframe(p, layer=layer, encoding=encoding)
    except UnicodeDecodeError:
        row = _dbf_first_undecodable(dbf, encoding or "utf-8") if dbf is not None else None
        msg = f"text is not in the encoding {used or 'UTF-8'} named by {source}"
        raise InputError(
            msg,
            file=p,
            row=row,
            fix=f"write the right encoding (UTF-8 or GBK) in {p.stem}.cpg or pass the encoding "
            "(--encoding), or re-save the layer as UTF-8",
        ) from None
    except Exception as exc:
        raise unreadable(p, fmt, exc) from None
    if fmt == "Shapefile":
        gdf = _restore_field_names(gdf, p)
    return gdf, used


#: Code pages written in .cpg files by ArcGIS, QGIS and GDAL -> Python codecs.
_CODE_PAGES: Final = {"65001": "utf-8", "936": "gb18030", "950": "big5"}
_GB_FAMILY: Final = frozenset({"gbk", "gb2312", "gb18030", "cp936", "hz"})


def _cpg_encoding(cpg: Path, p: Path) -> str:
    """The Python codec named by a Shapefile's ``.cpg`` (``UTF-8``, ``936``, ``ANSI 936``...).

    GDAL reads an unknown name as Latin-1 and a code page number such as ``65001`` not at
    all, which garbles every Chinese name without a word; so the name is resolved here and an
    unknown one is an error.  GBK and GB2312 are read as GB18030, their superset.
    """
    text = cpg.read_bytes().decode("ascii", errors="replace").strip()
    key = text.upper().removeprefix("ANSI").strip().replace(" ", "")
    codec: str | None = None
    if key in _CODE_PAGES:
        codec = _CODE_PAGES[key]
    elif key.startswith("8859") and key[4:].strip("_-").isdigit():
        codec = f"iso8859-{key[4:].strip('_-')}"
    elif key.isdigit():
        codec = f"cp{key}"
    elif key:
        codec = key
    try:
        name = codecs.lookup(codec).name if codec else None
    except LookupError:
        name = None
    if name is None:
        shown = text[:40] or "(nothing)"
        msg = f"{cpg.name} names an unknown text encoding '{shown}'"
        raise InputError(
            msg,
            file=p,
            fix=f"write UTF-8 or GBK in {cpg.name} (whichever the .dbf really is), "
            "or pass the encoding (--encoding)",
        )
    return "gb18030" if name in _GB_FAMILY else name


def _restore_field_names(gdf: gpd.GeoDataFrame, p: Path) -> gpd.GeoDataFrame:
    """Undo the 10-byte cut of field names using the ``<name>_fields.csv`` written beside it."""
    mapping_file = p.with_name(f"{p.stem}_fields.csv")
    if not mapping_file.exists():
        return gdf
    try:
        table = pd.read_csv(mapping_file, dtype=str, encoding="utf-8-sig")
        back = dict(zip(table["shapefile_field"], table["field"], strict=True))
    except (KeyError, ValueError, pd.errors.ParserError):
        log.warning("%s: ignoring unreadable field-name mapping %s", p.name, mapping_file.name)
        return gdf
    rename = {c: back[c] for c in gdf.columns if c in back and back[c] != c}
    if rename:
        log.info("%s: %d field names restored from %s", p.name, len(rename), mapping_file.name)
    return gdf.rename(columns=rename)


def _dbf_text(dbf: Path) -> tuple[list[bytes], list[bytes]]:
    """A DBF's field names and, per record, the bytes of its character fields.

    Only character ('C') fields are kept: numeric and date fields are ASCII anyway, and the
    header's binary parts would make every decoding fail.
    """
    data = dbf.read_bytes()
    if len(data) < 32:
        return [], []
    n_records = int.from_bytes(data[4:8], "little")
    header_len = int.from_bytes(data[8:10], "little")
    record_len = int.from_bytes(data[10:12], "little")
    names: list[bytes] = []
    char_fields: list[tuple[int, int]] = []
    offset = 1  # deletion flag
    pos = 32
    while pos + 32 <= min(header_len, len(data)) and data[pos] != 0x0D:
        desc = data[pos : pos + 32]
        names.append(desc[:11].split(b"\0", 1)[0])
        length = desc[16]
        if chr(desc[11]) == "C":
            char_fields.append((offset, length))
        offset += length
        pos += 32
    body = data[header_len : header_len + n_records * record_len]
    if record_len <= 0 or not char_fields:
        return names, []
    n = len(body) // record_len
    table = np.frombuffer(body[: n * record_len], dtype=np.uint8).reshape(n, record_len)
    cols = np.concatenate([np.arange(start, start + length) for start, length in char_fields])
    records = table[:, cols]
    return names, [bytes(r) for r in records]


def _dbf_text_encoding(dbf: Path, p: Path) -> str | None:
    """Guess the encoding of a DBF's text (no ``.cpg``): UTF-8, else GB18030 for all of it.

    A DBF that is UTF-8 except for some records is an error naming the first of them.
    """
    names, records = _dbf_text(dbf)
    bad = mixed_utf8(records)
    if bad is not None:
        msg = "the .dbf text is UTF-8 except this record, which is in another encoding (GBK?)"
        raise InputError(
            msg,
            file=p,
            row=bad + 1,
            fix="correct that record in a GIS and save the layer again as UTF-8",
        )
    blob = b"\n".join(names + records)
    for enc in TEXT_ENCODINGS:
        try:
            blob.decode(enc)
        except UnicodeDecodeError:
            continue
        return enc
    return None


def _dbf_first_undecodable(dbf: Path, encoding: str) -> int | None:
    """1-based number of the first record whose text is not in ``encoding`` (``None``: none)."""
    try:
        _names, records = _dbf_text(dbf)
        codecs.lookup(encoding)
    except (LookupError, OSError):
        return None
    for number, record in enumerate(records, start=1):
        try:
            record.decode(encoding)
        except UnicodeDecodeError:
            return number
    return None


# ------------------------------------------------------------------------------- writing


def write_geojson(out: gpd.GeoDataFrame, p: Path, *, force: bool) -> None:
    """Write a GeoJSON file atomically, its layer named after the target, not the temporary file."""
    with atomic_path(p, force=force) as tmp:
        pyogrio.write_dataframe(out, tmp, layer=p.stem, driver=DRIVERS["GeoJSON"])


def write_gpkg(out: gpd.GeoDataFrame, p: Path, name: str, *, force: bool) -> None:
    """Write layer ``name`` into a new GeoPackage, or add it to (a copy of) an existing one."""
    if p.exists():
        existing = [n for n, _ in ogr_layers(p, "GeoPackage")]
        if name in existing and not force:
            msg = f"the GeoPackage already has a layer '{name}'"
            raise InputError(msg, file=p, fix="choose another layer name or pass --force")
        # Copy, add the layer to the copy, then swap it in: readers never see a half-written
        # GeoPackage, and a failure leaves the original untouched.
        with atomic_path(p, force=True) as tmp:
            shutil.copyfile(p, tmp)
            pyogrio.write_dataframe(out, tmp, layer=name, driver="GPKG")
        return
    with atomic_path(p, force=force) as tmp:
        pyogrio.write_dataframe(out, tmp, layer=name, driver="GPKG")


def shapefile_field_names(columns: list[str]) -> dict[str, str]:
    """Map column names to unique DBF field names of at most 10 UTF-8 bytes.

    Names are cut on character boundaries (a Chinese character takes 3 bytes), ``:`` becomes
    ``_`` as GDAL would make it, and clashes, compared case-insensitively as GDAL does, get
    ``_1``, ``_2``... suffixes.
    """
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for col in columns:
        clean = col.replace(":", "_")  # GDAL launders ':' (OSM keys such as name:zh)
        name, k = _cut_bytes(clean, _DBF_NAME_BYTES), 0
        while name.lower() in used:
            k += 1
            suffix = f"_{k}"
            name = _cut_bytes(clean, _DBF_NAME_BYTES - len(suffix)) + suffix
        used.add(name.lower())
        mapping[col] = name
    return mapping


def _cut_bytes(text: str, limit: int) -> str:
    out = ""
    for ch in text:
        if len((out + ch).encode("utf-8")) > limit:
            break
        out += ch
    return out or "f"


def write_shapefile(
    out: gpd.GeoDataFrame, p: Path, *, force: bool
) -> tuple[dict[str, str], tuple[Path, ...]]:
    """Write a Shapefile's parts together (UTF-8, 10-byte field names); the mapping and files."""
    kinds = set(out.geom_type.str.replace("Multi", ""))
    if len(kinds) > 1:
        msg = f"a Shapefile holds one geometry type; this layer mixes {', '.join(sorted(kinds))}"
        raise InputError(msg, file=p, fix="write a GeoPackage instead")
    check_target(p, force=force)
    cols = [str(c) for c in out.columns if c != out.geometry.name]
    mapping = shapefile_field_names(cols)
    renamed = {k: v for k, v in mapping.items() if k != v}
    frame = out.rename(columns=mapping)
    p.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{p.stem}.tmp-", dir=p.parent))
    try:
        staged = staging / p.name
        promote = len(set(out.geom_type)) > 1
        pyogrio.write_dataframe(
            frame, staged, driver="ESRI Shapefile", encoding="UTF-8", promote_to_multi=promote
        )
        fields_csv = p.with_name(f"{p.stem}_fields.csv")
        if renamed:  # expected for Shapefiles: said, with the mapping file, not warned
            log.info(
                "%s: %d field names shortened to 10 bytes for the Shapefile; mapping in %s",
                p.name,
                len(renamed),
                fields_csv.name,
            )
            pd.DataFrame(
                {"field": list(mapping), "shapefile_field": list(mapping.values())}
            ).to_csv(staging / fields_csv.name, index=False, encoding="utf-8-sig")
        written = sorted(staging.iterdir())
        new_names = {f.name for f in written}
        for suffix in _SHP_PARTS:  # stale parts of a replaced Shapefile (old spatial index...)
            old = p.with_name(p.stem + suffix)
            if old.exists() and old.name not in new_names:
                old.unlink()
        if fields_csv.exists() and fields_csv.name not in new_names:
            fields_csv.unlink()
        files = publish_staged(written, p, force=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return mapping, tuple(files)

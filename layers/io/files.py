"""What every file format shares: the suffix table, file checks, GDAL's sidecars, warnings.

The format families (:mod:`layers.io.ogr`, :mod:`layers.io.tables`, :mod:`layers.io.parquet`)
and the dispatch in :mod:`layers.io.api` all build on this module; it imports nothing of theirs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Final

import pyogrio

from layers.errors import InputError
from layers.validate import closest

log = logging.getLogger(__name__)

#: Suffix -> format name.  ``.json`` is read as GeoJSON.
FORMATS: Final[dict[str, str]] = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GeoPackage",
    ".shp": "Shapefile",
    ".parquet": "GeoParquet",
    ".geoparquet": "GeoParquet",
    ".csv": "CSV",
    ".xlsx": "XLSX",
}
TEXT_ENCODINGS: Final = ("utf-8", "gb18030")  # GB18030 is a superset of GBK and GB2312
#: The fix shown for an input with several layers when the caller does not say which input.
LAYER_OPTION: Final = (
    "--residents-layer, --areas-layer, --communities-layer, --candidates-layer NAME or "
    "--layer-sheet KIND=NAME (plan: residents_layer, streets_layer, communities_layer, "
    'candidates_layer, or layer = "NAME" in a [layers] entry)'
)


@dataclass(frozen=True)
class WriteResult:
    """What :func:`write_table` wrote.

    Attributes
    ----------
    path
        The main file.
    format
        Format name (``GeoPackage``, ``Shapefile``...).
    layer
        GeoPackage layer or XLSX sheet written, else ``None``.
    crs
        The coordinate system of the written coordinates (``wgs84``, ``gcj02``, ``EPSG:4549``).
    field_map
        Original column -> written field name, for every column (Shapefile names are cut to
        10 bytes; other formats keep names unchanged).
    files
        Every file created or replaced.
    """

    path: Path
    format: str
    layer: str | None
    crs: str
    field_map: dict[str, str] = field(default_factory=dict)
    files: tuple[Path, ...] = ()


def table_format(path: str | PathLike[str]) -> str:
    """The format name for ``path``'s suffix (``InputError`` for unsupported suffixes)."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        msg = f"unsupported file type '{p.suffix or '(none)'}'"
        raise InputError(msg, file=p, fix=f"use one of {', '.join(FORMATS)}")
    return fmt


def check_existing(
    path: str | PathLike[str], *, what: str, name_it: str, empty_fix: str | None = None
) -> Path:
    """``path`` as a Path when it names an existing file; otherwise one line that says so.

    ``what`` names the file in the message ("OSM file", "network file"); ``name_it`` is the fix
    for a folder given instead of the file; with ``empty_fix`` an empty file is refused too.
    A missing file's message names the closest file beside it.
    """
    p = Path(path)
    if not p.exists():
        near = closest(p.name, [q.name for q in p.parent.glob("*")]) if p.parent.is_dir() else None
        hint = f"did you mean '{near}'? " if near else ""
        msg = f"{what} not found"
        raise InputError(msg, file=p, fix=f"{hint}check the path and the file name")
    if p.is_dir():
        msg = f"is a folder, not {'an' if what[0].lower() in 'aeiou' else 'a'} {what}"
        raise InputError(msg, file=p, fix=name_it)
    if empty_fix is not None and p.stat().st_size == 0:
        msg = f"{what} is empty"
        raise InputError(msg, file=p, fix=empty_fix)
    return p


def check_file(path: str | PathLike[str], *, suffixes: Mapping[str, str]) -> Path:
    """Check that ``path`` is an existing, non-empty file in a supported format.

    ``suffixes`` maps a lower-case suffix (``.gpkg``) to the format's name; it is given by the
    reader so that this module does not depend on it.  Shapefiles must come with their
    ``.shx`` and ``.dbf`` siblings.
    """
    p = check_existing(path, what="file", name_it="name the data file itself (e.g. layer.gpkg)")
    suffix = p.suffix.lower()
    if suffix not in suffixes:
        kinds = sorted(set(suffixes.values()))
        msg = f"unsupported file type '{p.suffix or '(none)'}'"
        extra = "save an .xls workbook as .xlsx; " if suffix == ".xls" else ""
        raise InputError(
            msg, file=p, fix=f"{extra}use one of {', '.join(kinds)} ({', '.join(suffixes)})"
        )
    if p.stat().st_size == 0:
        msg = "file is empty (0 bytes)"
        raise InputError(msg, file=p, fix="export the layer again")
    try:
        with p.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        msg = f"cannot be read ({exc.strerror or exc})"
        raise InputError(msg, file=p, fix="check the file's permissions") from None
    if suffix == ".shp":
        for need in (".shx", ".dbf"):
            if sibling(p, need) is None:
                msg = f"Shapefile lacks its {need} file"
                raise InputError(
                    msg,
                    file=p,
                    fix=f"copy {p.stem}{need} next to it (a Shapefile is several files)",
                )
    return p


def sibling(path: Path, suffix: str) -> Path | None:
    """``path`` with another suffix, matched case-insensitively (``.CPG``, ``.Dbf``...)."""
    for cand in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if cand.exists():
            return cand
    if path.parent.is_dir():
        for cand in path.parent.glob(f"{path.stem}.*"):
            if cand.suffix.lower() == suffix:
                return cand
    return None


#: Library warnings that say nothing about the data (openpyxl's styles and extensions it does
#: not read): logged at debug level only.
_NOISE: Final = (
    "contains no default style",
    "extension is not supported",
    "Data Validation",
    "Conditional Formatting",
)


@contextlib.contextmanager
def library_warnings(path: str | PathLike[str]) -> Iterator[None]:
    """Catch the warnings libraries raise while a file is read; log each once, as one line.

    pyogrio, openpyxl and pandas print warnings with their own source lines
    (``UserWarning: Workbook contains no default style, apply openpyxl's default``), which a
    planner cannot act on.  Noise goes to the debug log; anything else becomes one warning
    naming the file.  When the read fails, the :class:`InputError` alone is shown.
    """
    name = Path(path).name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen: set[str] = set()
    for w in caught:
        text = " ".join(str(w.message).split())
        if text in seen:
            continue
        seen.add(text)
        if any(n in text for n in _NOISE):
            log.debug("%s: %s: %s", name, w.category.__name__, text)
        else:
            log.warning("%s: while reading: %s", name, text[:200])


@functools.cache
def no_sidecar_files() -> None:
    """Stop GDAL writing ``.aux.xml`` files beside the files it opens.

    GDAL's persistent auxiliary metadata (PAM) drops ``areas.gpkg.aux.xml`` into the user's own
    folder when it merely reads a GeoPackage with dataset metadata; a reader must never write
    next to its inputs, and outputs must be the same set every time.  Set once per process, at
    the first read or write (never at import).
    """
    pyogrio.set_gdal_config_options({"GDAL_PAM_ENABLED": "NO"})


def unreadable(p: Path, fmt: str, exc: BaseException) -> InputError:
    """The one-line error for a file a library could not read as ``fmt``."""
    text = str(exc).replace(f"'{p}'", "the file").replace(str(p), "the file")
    detail = " ".join(text.split(";")[0].split())[:160].rstrip(".")
    msg = f"cannot be read as {fmt} ({detail})"
    return InputError(msg, file=p, fix=f"check that it really is a {fmt} file, or export it again")


_CJK = re.compile("[\u3400-\u9fff]")


def mixed_utf8(chunks: list[bytes]) -> int | None:
    """Index of the first chunk that is not UTF-8 when the others are, else ``None``.

    GBK text is almost never valid UTF-8 by accident (2 of 3,700 Hangzhou OSM names, as
    Latin or Cyrillic letters, never as Chinese characters), so a chunk that decodes as UTF-8
    into Chinese characters, or a majority of valid UTF-8 chunks, means the file is UTF-8 and
    the chunks that fail are the odd ones out.
    """
    bad: list[int] = []
    good = 0
    chinese = False
    for i, chunk in enumerate(chunks):
        if chunk.isascii():
            continue
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(i)
            continue
        good += 1
        chinese = chinese or bool(_CJK.search(text))
    if bad and (chinese or good > len(bad)):
        return bad[0]
    return None

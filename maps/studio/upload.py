"""A new study from the page: the multipart form, its limits, and the per-study folder.

One ``multipart/form-data`` request carries the whole study (residents, facility layers, 街道,
network and the options of each file), so a study is refused or started as one piece: the
browser's ``FormData`` sends it natively, and no half-uploaded study is ever left on the server
as a staged protocol of raw bodies per file would.

The client's file names are never used as paths.  Each file is stored under a generated name
(``residents.gpkg``, ``layer-1.csv``, ``network.osm.pbf``) that keeps only a whitelisted suffix;
the name sent is kept as display text for messages.  A Shapefile comes as one ``.zip`` whose
``.shp/.shx/.dbf/.prj/.cpg`` members are copied (by suffix, never by member path) under the
generated name.  The files are written into ``uploads/.part-ID`` and renamed to ``uploads/ID``
whole.  Reading and checking them is ``app.py``'s ``prepare`` (the CLI's readers and checks),
called through :data:`Opener`.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Message

from maps.studio.session import StudioError, StudyStart

MB = 1024 * 1024
#: Suffixes of a table or layer file, as stored; ``.zip`` is a zipped Shapefile.
TABLE_SUFFIXES = (".gpkg", ".geojson", ".csv", ".xlsx", ".parquet", ".zip")
#: Suffixes of a street network file (longest first: ``.osm.pbf`` before ``.osm``).
NETWORK_SUFFIXES = (".osm.pbf", ".osm", ".graphml")
#: The parts of a Shapefile taken from a zip (others, e.g. ``.qmd``, are left out).
SHP_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
#: Coordinate systems offered for CSV/XLSX tables (the CLI's ``--coords`` values).
COORDS = ("wgs84", "gcj02", "bd09", "cgcs2000")
TABLE_FIX = "upload .gpkg, .geojson, .csv, .xlsx, .parquet or a Shapefile zipped (.zip)"
NETWORK_FIX = "upload the street network as .osm.pbf, .osm or .graphml"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Limits:
    """What one upload may hold."""

    file_bytes: int = 300 * MB  # a district's .osm.pbf is 5-50 MB, a city's ~100-300 MB
    study_bytes: int = 600 * MB  # the whole request
    layers: int = 12
    zip_members: int = 32
    name_chars: int = 255  # a longer file name is refused (no file system keeps it)
    field_bytes: int = 64 * 1024  # a text field (title, columns)


@dataclass(frozen=True)
class Stored:
    """One stored input: its generated path, the client's name (text only) and its options."""

    path: Path
    display: str
    layer: str | None = None  # GeoPackage layer or XLSX sheet
    coords: str | None = None  # CSV/XLSX coordinate system
    columns: str | None = None  # the CLI's KEY=COLUMN,... text


@dataclass(frozen=True)
class Upload:
    """A stored upload: the per-study folder and its inputs (``inputs/`` under it)."""

    id: str
    folder: Path
    title: str | None
    residents: Stored
    network: Stored
    layers: tuple[tuple[str, Stored], ...]
    areas: Stored | None = None

    def files(self) -> list[Stored]:
        """Every stored input."""
        return [
            self.residents,
            self.network,
            *(s for _, s in self.layers),
            *([self.areas] if self.areas else []),
        ]

    def as_shown(self, message: str) -> str:
        """A message with each stored path replaced by the name the planner uploaded."""
        for s in sorted(self.files(), key=lambda s: -len(str(s.path))):
            message = message.replace(str(s.path), s.display)
        return message.replace(str(self.folder), "uploads")


#: Reads, checks and routes an upload (``app.py``'s ``prepare`` and ``Study.route``).
Opener = Callable[[Upload, Callable[[str], None]], StudyStart]


@dataclass(frozen=True)
class UploadConfig:
    """What the server needs to start studies from uploads."""

    open: Opener
    kinds: tuple[tuple[str, str, str], ...]  # (kind, label zh, label en): the layer table's
    limits: Limits = field(default_factory=Limits)

    def public(self) -> dict[str, Any]:
        """GET /api/upload: the form's choices and limits."""
        lim = self.limits
        return {
            "kinds": [{"kind": k, "label_zh": z, "label_en": e} for k, z, e in self.kinds],
            "coords": list(COORDS),
            "table_suffixes": list(TABLE_SUFFIXES),
            "network_suffixes": list(NETWORK_SUFFIXES),
            "limits": {
                "file_mb": lim.file_bytes / MB,
                "study_mb": lim.study_bytes / MB,
                "layers": lim.layers,
            },
        }


def display_name(raw: str, limit: int = 120) -> str:
    """The client's file name as one line of text (never a path)."""
    text = _CONTROL.sub("", raw).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def stored_suffix(
    field_name: str, raw: Any, allowed: tuple[str, ...], fix: str, lim: Limits
) -> str:
    """The whitelisted suffix of a client's file name, or a 400 saying why it is unusable."""
    if not isinstance(raw, str) or not raw.strip():
        msg = f"{field_name}: the file has no name; {fix}"
        raise StudioError(msg)
    if "\x00" in raw or _CONTROL.search(raw):
        msg = f"{field_name}: the file name holds control characters; rename the file and {fix}"
        raise StudioError(msg)
    if len(raw) > lim.name_chars:
        msg = (
            f"{field_name}: the file name is longer than {lim.name_chars} characters; "
            "rename the file"
        )
        raise StudioError(msg)
    low = raw.lower()
    for sfx in allowed:
        if low.endswith(sfx) and len(low) > len(sfx):
            return sfx
    msg = f"{field_name}: '{display_name(raw, 60)}' is not a supported file; {fix}"
    raise StudioError(msg)


class _Counted:
    """An ASGI ``receive`` that refuses a body past the study limit (a 413, one line)."""

    def __init__(self, request: Request, limit: int) -> None:
        self.receive = request.receive
        self.limit = limit
        self.seen = 0

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                raise StudioError(_too_big("upload", self.limit), status=413)
        return message


def _too_big(what: str, limit: int) -> str:
    return f"{what}: larger than {limit / MB:g} MB; upload a smaller file (clip it to the study)"


@dataclass
class _Part:
    field: str
    upload: UploadFile
    suffix: str
    stem: str
    layer: str | None = None
    coords: str | None = None
    columns: str | None = None


async def read_form(
    request: Request, config: UploadConfig
) -> tuple[str | None, dict[str, _Part], list[tuple[str, _Part]]]:
    """The form's title, its named files (residents, network, areas) and its layers."""
    lim = config.limits
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > lim.study_bytes:
        raise StudioError(_too_big("upload", lim.study_bytes), status=413)
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        msg = "upload: send the files as multipart/form-data (the page's form does)"
        raise StudioError(msg, status=415)
    counted = Request(request.scope, receive=_Counted(request, lim.study_bytes))
    n = lim.layers
    try:
        form = await counted.form(
            max_files=3 + n, max_fields=10 + 6 * n, max_part_size=lim.field_bytes
        )
    except (HTTPException, MultiPartException) as err:  # too many parts, a bad body
        detail = err.detail if isinstance(err, HTTPException) else err.message
        msg = f"upload: {detail.rstrip('.')}; send the page's form (one file per field)"
        raise StudioError(msg) from err
    request.state.upload_form = form  # the caller closes it (its spooled files) when done
    texts: dict[str, str] = {}
    files: dict[str, UploadFile] = {}
    for key, value in form.multi_items():
        if key in texts or key in files:
            msg = f"{key}: sent twice; send each field once"
            raise StudioError(msg)
        if isinstance(value, UploadFile):
            files[key] = value
        else:
            texts[key] = value.strip()
    slots = ["residents", "network", "areas"] + [f"layer{i}" for i in range(1, n + 1)]
    known = {"title"} | set(slots)
    known |= {f"{s}_{o}" for s in slots for o in ("layer", "coords", "columns")}
    known |= {f"layer{i}_kind" for i in range(1, n + 1)}
    for key in [*texts, *files]:
        if key not in known:
            msg = (
                f"{display_name(key, 40)}: not a field of the upload; send residents, network, "
                f"areas, layer1..layer{n} (with layerN_kind) and their _layer, _coords, _columns"
            )
            raise StudioError(msg)
    for key in files:
        if key not in slots:
            msg = f"{key}: send text here, not a file"
            raise StudioError(msg)

    def part(slot: str, stem: str) -> _Part | None:
        up = files.get(slot)
        if up is None:
            return None
        network = slot == "network"
        sfx = stored_suffix(
            slot,
            up.filename,
            NETWORK_SUFFIXES if network else TABLE_SUFFIXES,
            NETWORK_FIX if network else TABLE_FIX,
            lim,
        )
        if up.size is not None and up.size > lim.file_bytes:
            raise StudioError(_too_big(slot, lim.file_bytes), status=413)
        return _Part(
            slot,
            up,
            sfx,
            stem,
            layer=texts.get(f"{slot}_layer") or None,
            coords=texts.get(f"{slot}_coords") or None,
            columns=texts.get(f"{slot}_columns") or None,
        )

    named = {s: p for s in ("residents", "network", "areas") if (p := part(s, s)) is not None}
    for need, fix in (("residents", TABLE_FIX), ("network", NETWORK_FIX)):
        if need not in named:
            msg = f"{need}: missing; {fix}"
            raise StudioError(msg)
    layers: list[tuple[str, _Part]] = []
    for i in range(1, n + 1):
        slot = f"layer{i}"
        kind = texts.get(f"{slot}_kind", "")
        p = part(slot, f"layer-{i}")
        if p is None:
            if kind and any(
                k.startswith(f"{slot}_") and texts[k] for k in texts if k != f"{slot}_kind"
            ):
                msg = f"{slot}: options without a file; choose the layer's file"
                raise StudioError(msg)
            continue
        kinds = [k for k, _, _ in config.kinds]
        if kind not in kinds:
            msg = (
                f"{slot}_kind: '{display_name(kind, 40)}' is not a layer kind; use one of "
                + ", ".join(kinds)
            )
            raise StudioError(msg)
        if any(k == kind for k, _ in layers):
            msg = f"{slot}_kind: '{kind}' is given twice; one file per layer kind"
            raise StudioError(msg)
        layers.append((kind, p))
    if not layers:
        msg = "layer1: no facility layer; upload at least one (layer1 with layer1_kind)"
        raise StudioError(msg)
    title = texts.get("title") or None
    if title is not None and (len(title) > 200 or _CONTROL.search(title)):
        msg = "title: send one line of at most 200 characters"
        raise StudioError(msg)
    return title, named, layers


def store(
    root: Path,
    title: str | None,
    named: dict[str, _Part],
    layers: list[tuple[str, _Part]],
    lim: Limits,
) -> Upload:
    """Write the parts into ``root/uploads/ID/inputs`` (whole, or nothing)."""
    uploads = root / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    uid = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]
    part_dir = uploads / f".part-{uid}"
    final = uploads / uid
    inputs = part_dir / "inputs"
    inputs.mkdir(parents=True)
    try:
        paths = {
            p.field: _write(p, inputs, lim) for p in [*named.values(), *(p for _, p in layers)]
        }
        part_dir.rename(final)
    except BaseException:
        shutil.rmtree(part_dir, ignore_errors=True)
        raise

    def stored(p: _Part) -> Stored:
        return Stored(
            final / "inputs" / paths[p.field].name,
            display_name(p.upload.filename or p.field),
            layer=p.layer,
            coords=p.coords,
            columns=p.columns,
        )

    return Upload(
        id=uid,
        folder=final,
        title=title,
        residents=stored(named["residents"]),
        network=stored(named["network"]),
        layers=tuple((k, stored(p)) for k, p in layers),
        areas=stored(named["areas"]) if "areas" in named else None,
    )


def _write(p: _Part, inputs: Path, lim: Limits) -> Path:
    p.upload.file.seek(0)
    if p.suffix == ".zip":
        return _unzip_shapefile(p, inputs, lim)
    target = inputs / f"{p.stem}{p.suffix}"
    _copy(p.upload.file, target, lim.file_bytes, _too_big(p.field, lim.file_bytes))
    return target


def _copy(src: IO[bytes], target: Path, budget: int, too_big: str) -> int:
    """Copy at most ``budget`` bytes (counted as read: a zip's sizes are not trusted)."""
    n = 0
    with target.open("xb") as out:
        while chunk := src.read(MB):
            n += len(chunk)
            if n > budget:
                raise StudioError(too_big, status=413)
            out.write(chunk)
    return n


def _unzip_shapefile(p: _Part, inputs: Path, lim: Limits) -> Path:
    """The Shapefile of a zip, each part copied under the generated stem (member paths unused)."""
    try:
        zf = zipfile.ZipFile(p.upload.file)
    except (zipfile.BadZipFile, OSError) as err:
        msg = (
            f"{p.field}: not a zip archive; zip the Shapefile's .shp, .shx, .dbf and .prj, "
            "or upload a GeoPackage"
        )
        raise StudioError(msg) from err
    with zf:
        infos = zf.infolist()
        if len(infos) > lim.zip_members:
            msg = (
                f"{p.field}: the zip holds {len(infos)} files (at most {lim.zip_members}); "
                "zip one Shapefile only"
            )
            raise StudioError(msg)
        for info in infos:
            name = info.filename
            parts = re.split(r"[/\\]", name)
            if (
                "\x00" in name
                or name.startswith(("/", "\\"))
                or re.match(r"^[A-Za-z]:", name)
                or ".." in parts
            ):
                msg = (
                    f"{p.field}: zip member '{display_name(name, 60)}' points outside the archive; "
                    "zip the Shapefile's files themselves, or upload a GeoPackage"
                )
                raise StudioError(msg)
        if sum(i.file_size for i in infos) > lim.file_bytes:
            raise StudioError(_too_big(p.field, lim.file_bytes), status=413)
        members: dict[tuple[str, str], zipfile.ZipInfo] = {}
        for info in infos:
            base = re.split(r"[/\\]", info.filename)[-1]
            low = base.lower()
            if info.is_dir() or low.startswith("._"):
                continue
            for sfx in SHP_PARTS:
                if low.endswith(sfx) and len(low) > len(sfx):
                    members.setdefault((low[: -len(sfx)], sfx), info)
        shps = [stem for stem, sfx in members if sfx == ".shp"]
        if len(shps) != 1:
            msg = (
                f"{p.field}: the zip holds {len(shps)} Shapefiles (.shp); zip exactly one, or "
                "upload a GeoPackage"
            )
            raise StudioError(msg)
        total = 0
        try:
            for (stem, sfx), info in members.items():
                if stem == shps[0]:
                    with zf.open(info) as src:
                        total += _copy(
                            src,
                            inputs / f"{p.stem}{sfx}",
                            lim.file_bytes - total,
                            _too_big(p.field, lim.file_bytes),
                        )
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError) as err:
            msg = f"{p.field}: the zip cannot be read ({err}); zip it again without a password"
            raise StudioError(msg) from err
    return inputs / f"{p.stem}.shp"

"""Atomic writes: a failed or interrupted write never leaves a partial output behind.

Files: writers produce ``<name>.tmp-<random><suffix>`` beside the target and rename it into place,
so a reader sees either the old file or the whole new one.  ``force`` guards existing outputs.

Output folders (:func:`atomic_dir`) are built in ``.<name>.tmp-<pid>-<random>`` beside the target
and renamed into place at the end, and they are safe to point at any path:

* a folder that exists is replaced only with ``force``, only if this tool made it (it carries the
  :data:`MARKER` file written into every output folder), and never if it holds, or is, an input of
  the run;
* one run at a time writes a given path (``.<name>.lock`` beside it, ``flock``); a folder that
  appears at the path while a run is under way is never replaced;
* leftovers of earlier runs killed outright (``.<name>.tmp-<pid>-*``, ``.<name>.old-<pid>-*``
  whose process is gone and that carry the marker) are removed by the next run for the same path;
* a bad path (a dangling symbolic link, a file, an unwritable parent) fails before any work.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path

from layers.errors import InputError

try:  # POSIX; elsewhere runs are simply not locked against each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

#: Written into every output folder this tool creates; only such folders are ever replaced.
MARKER = ".servicecircle-output"
TOOL = "servicecircle app.py"
#: What a run writes at the top of its folder: a folder made before markers existed is
#: recognised by these names alone (and a summary.json with a schema version).
_LEGACY_RUN_NAMES = frozenset(
    {"map.html", "report.html", "report.xlsx", "summary.json", "gis", "inputs"}
)
NEW_FOLDER_FIX = "choose a new --out folder"


def check_target(path: str | Path, *, force: bool) -> Path:
    """Refuse to overwrite an existing ``path`` unless ``force``."""
    p = Path(path)
    if p.exists() and not force:
        msg = "output exists and would be overwritten"
        raise InputError(msg, file=p, fix="choose another path or pass --force")
    return p


@contextlib.contextmanager
def atomic_path(path: str | Path, *, force: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    The temporary name keeps the suffix so that format drivers chosen by extension still work.
    On any exception the temporary file (or folder, for Shapefile sets) is removed.
    """
    target = check_target(path, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.tmp-", suffix=target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # drivers such as GPKG refuse to open an existing empty file
    try:
        yield tmp
        tmp.replace(target)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


# ------------------------------------------------------------------------------------------
# output folders


def publish_staged(parts: Iterable[Path], beside: Path, *, force: bool) -> list[Path]:
    """Move files written in a staging folder next to ``beside``, each atomically, in order.

    For formats that are several files (a Shapefile's .shp/.shx/.dbf/...): they are written
    whole in a staging folder first, then each takes its final name in one rename.
    """
    published = []
    for part in parts:
        target = beside.with_name(part.name)
        with atomic_path(target, force=force) as tmp:
            part.replace(tmp)
        published.append(target)
    return published


def is_tool_output(folder: str | Path) -> bool:
    """Whether ``folder`` was made by this tool (it carries :data:`MARKER`, or is an old run's)."""
    p = Path(folder)
    if p.is_symlink() or not p.is_dir():
        return False
    if (p / MARKER).is_file() and not (p / MARKER).is_symlink():
        return True
    return _legacy_run_output(p)


def _legacy_run_output(p: Path) -> bool:
    """A run or demo folder written before the marker existed: only the names a run writes."""
    try:
        names = {e.name for e in p.iterdir()}
        summary = json.loads((p / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return names <= _LEGACY_RUN_NAMES and isinstance(summary, dict) and "schema_version" in summary


def _version() -> str:
    try:
        text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
        return str(tomllib.loads(text)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _resolve_target(path: str | Path) -> Path:
    """The absolute output path with symbolic links resolved; a dangling link is refused."""
    p = Path(os.path.abspath(path))  # noqa: PTH100  (normalises '..', keeps links)
    if p.is_symlink():
        if not p.exists():
            msg = f"is a symbolic link to a missing folder ({p.readlink()})"
            raise InputError(msg, file=p, fix=f"{NEW_FOLDER_FIX}, or create the folder it names")
        p = p.resolve()
    return p.parent.resolve() / p.name


def _resolved_inputs(inputs: Iterable[str | os.PathLike[str] | None]) -> list[Path]:
    out: list[Path] = []
    for f in inputs:
        if f is None or str(f) == "":
            continue
        absolute = Path(os.path.abspath(f))  # noqa: PTH100
        out += [absolute, absolute.resolve()]
    return out


def _held_input(target: Path, inputs: list[Path]) -> Path | None:
    """The first input that lies in (or is) ``target``, or in which ``target`` lies."""
    for f in inputs:
        if f.is_relative_to(target) or target.is_relative_to(f):
            return f
    return None


def _check_replace(target: Path, *, force: bool, inputs: list[Path]) -> None:
    """Raise :class:`InputError` unless an existing ``target`` may be replaced."""
    held = _held_input(target, inputs)
    if held is not None:
        how = "is" if held == target else "holds" if held.is_relative_to(target) else "lies in"
        msg = f"{how} an input of this run ({held}), so even --force will not replace it"
        raise InputError(msg, file=target, fix=NEW_FOLDER_FIX)
    if not target.is_dir() or target.is_symlink():
        msg = "exists and is not a folder"
        raise InputError(msg, file=target, fix=NEW_FOLDER_FIX)
    if not is_tool_output(target):
        msg = "this folder exists and was not written by app.py; even --force will not replace it"
        raise InputError(msg, file=target, fix=NEW_FOLDER_FIX)
    if not force:
        msg = "output folder exists and would be replaced"
        raise InputError(msg, file=target, fix="choose another --out folder or pass --force")


def _parent_ready(target: Path) -> None:
    """Create the parent folder if needed; refuse one that is not a folder."""
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        above = next(p for p in (parent, *parent.parents) if p.exists())
        msg = "is a file, not a folder, so the output folder cannot go inside it"
        raise InputError(msg, file=above, fix=NEW_FOLDER_FIX) from None
    except OSError as err:
        raise _cannot_write(parent, err) from err


def _cannot_write(parent: Path, err: OSError) -> InputError:
    msg = f"cannot write the output folder here ({err.strerror or err})"
    return InputError(msg, file=parent, fix="choose an --out folder in a writable place")


def check_out_dir(
    path: str | Path, *, force: bool = False, inputs: Iterable[str | os.PathLike[str] | None] = ()
) -> Path:
    """Check up front that :func:`atomic_dir` may write ``path``; return the resolved path.

    For commands that do heavy work before they open the folder: a bad ``--out`` fails first.
    """
    target = _resolve_target(path)
    if os.path.lexists(target):
        _check_replace(target, force=force, inputs=_resolved_inputs(inputs))
    _parent_ready(target)
    try:  # a real write, not os.access: root passes access checks on read-only mounts too
        probe = Path(tempfile.mkdtemp(prefix=f".{target.name}.probe-", dir=target.parent))
    except OSError as err:
        raise _cannot_write(target.parent, err) from err
    probe.rmdir()
    return target


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``target`` (non-blocking); the file is removed afterwards."""
    lock = target.with_name(f".{target.name}.lock")
    if fcntl is None:  # pragma: no cover
        yield
        return
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise _cannot_write(target.parent, err) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            msg = f"another run is writing {target}"
            raise InputError(msg, fix="wait for it or choose another --out") from None
        try:  # the holder before us may have removed the file: lock the one on disk
            same = os.path.samestat(os.fstat(fd), lock.stat())
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _clean_leftovers(target: Path) -> None:
    """Remove ``.<name>.tmp-<pid>-*`` and ``.<name>.old-<pid>-*`` folders of dead runs.

    Only folders that carry the marker (or are empty) and whose process is gone; an ``old``
    folder of a run killed between its two renames is put back when the target is missing.
    """
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(tmp|old)-(\d+)-[0-9a-f]+$")
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return
    for entry in sorted(entries, key=lambda e: e.name):
        m = pattern.match(entry.name)
        if not m or entry.is_symlink() or not entry.is_dir() or _alive(int(m.group(2))):
            continue
        if not ((entry / MARKER).is_file() or not any(entry.iterdir())):
            continue
        if m.group(1) == "old" and not os.path.lexists(target) and (entry / MARKER).is_file():
            try:
                entry.rename(target)  # the previous output, moved aside by a killed run
                continue
            except OSError:
                pass
        shutil.rmtree(entry, ignore_errors=True)


def _sibling(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _make_work_dir(target: Path) -> Path:
    """Create the hidden work folder (mode from the umask) holding the marker."""
    while True:
        tmp = _sibling(target, "tmp")
        try:
            tmp.mkdir(0o777)  # the umask applies, as for any folder the user makes
        except FileExistsError:
            continue
        except OSError as err:
            raise _cannot_write(target.parent, err) from err
        break
    marker = {
        "tool": TOOL,
        "version": _version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pid": os.getpid(),
    }
    (tmp / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
    return tmp


def _appeared(target: Path) -> InputError:
    msg = "a folder appeared here while this run was writing; left it untouched, wrote nothing"
    return InputError(msg, file=target, fix="choose another --out folder and run again")


def _place(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to a ``target`` that does not exist, never over someone else's folder."""
    try:
        target.mkdir()  # claims the name atomically; renaming onto our own empty folder is safe
    except FileExistsError:
        raise _appeared(target) from None
    try:
        tmp.rename(target)
    except OSError:  # someone put files into the claimed folder meanwhile: leave them be
        with contextlib.suppress(OSError):
            target.rmdir()
        raise _appeared(target) from None


@contextlib.contextmanager
def atomic_dir(
    path: str | Path, *, force: bool = False, inputs: Iterable[str | os.PathLike[str] | None] = ()
) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it becomes ``path``.

    Used for whole output folders: a failed run leaves no output folder at all.  Every check
    (see the module docstring) happens before the ``with`` body runs, and again at the end.

    Parameters
    ----------
    path
        The output folder.
    force
        Replace an existing folder, if this tool made it and it holds no input.
    inputs
        Every input file or folder of the run (symbolic links are resolved).
    """
    target = check_out_dir(path, force=force, inputs=inputs)
    resolved_inputs = _resolved_inputs(inputs)
    with _locked(target):
        _clean_leftovers(target)
        existed = os.path.lexists(target)
        if existed:  # again, under the lock
            _check_replace(target, force=force, inputs=resolved_inputs)
        tmp = _make_work_dir(target)
        try:
            yield tmp
            if not os.path.lexists(target):
                _place(tmp, target)
            elif not existed:
                raise _appeared(target)
            else:
                _check_replace(target, force=force, inputs=resolved_inputs)
                old = _sibling(target, "old")
                target.rename(old)
                try:
                    _place(tmp, target)
                except BaseException:
                    with contextlib.suppress(OSError):
                        old.rename(target)
                    raise
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

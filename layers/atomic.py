"""Atomic file writes: a failed or interrupted write never leaves a partial output behind.

Writers produce ``<name>.tmp-<random><suffix>`` beside the target and rename it into place, so a
reader sees either the old file or the whole new one.  ``force`` guards existing outputs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from layers.errors import InputError


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


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it becomes ``path``.

    Used for whole output folders: a failed run leaves no output folder at all.
    """
    target = check_target(path, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.replace(old)
            tmp.replace(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.replace(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

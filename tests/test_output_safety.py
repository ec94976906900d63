"""The output folder is safe: --force never deletes what the tool did not write, no races, no leftovers.

Issue 11, points 1, 5 and the --out part of 6.  Most checks drive :func:`layers.atomic.atomic_dir`
on small folders; a few run ``app.py`` as a planner would, stopping before the heavy work.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from layers.atomic import MARKER, atomic_dir, check_out_dir, is_tool_output
from layers.errors import InputError

from .conftest import ROOT


def cli(*args: str | Path, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *map(str, args)],
        cwd=kw.pop("cwd", ROOT),
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "true"},
        timeout=300,
        check=False,
        **kw,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def hidden_leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def tool_output(path: Path, files: dict[str, str] | None = None, *, force: bool = False) -> Path:
    """A folder written by atomic_dir, as a run leaves it."""
    with atomic_dir(path, force=force) as work:
        for name, text in (files or {"summary.json": "{}"}).items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)
    return path


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def error_lines(r: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in r.stderr, r.stderr
    return [ln for ln in r.stderr.splitlines() if ln.startswith("error")]


# ------------------------------------------------------------------------------------------
# 1. --force replaces only the tool's own folders, never one holding an input


def test_force_never_replaces_a_folder_the_tool_did_not_write(tmp_path):
    mine = tmp_path / "thesis"
    (mine / "chapters").mkdir(parents=True)
    (mine / "chapters" / "one.md").write_text("years of work")
    (mine / "notes.txt").write_text("keep")
    before = snapshot(mine)
    with (
        pytest.raises(InputError, match=r"not written by app\.py") as err,
        atomic_dir(mine, force=True),
    ):
        pytest.fail("the body must not run")
    assert str(mine) in str(err.value) and "choose a new --out folder" in str(err.value)
    assert snapshot(mine) == before
    assert hidden_leftovers(tmp_path, "thesis") == []


def test_force_replaces_the_tools_own_folder_and_leaves_nothing_beside_it(tmp_path):
    out = tool_output(tmp_path / "out", {"summary.json": "{}", "old.txt": "old"})
    marker = json.loads((out / MARKER).read_text())
    assert marker["tool"] == "servicecircle app.py" and marker["version"] and marker["created"]
    with pytest.raises(InputError, match="pass --force"), atomic_dir(out):
        pytest.fail("the body must not run")
    with atomic_dir(out, force=True) as work:
        (work / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "new.txt"])
    assert hidden_leftovers(tmp_path, "out") == []


def test_force_never_replaces_a_folder_holding_an_input_even_its_own(tmp_path):
    out = tool_output(tmp_path / "out", {"inputs/residents.gpkg": "people"})
    before = snapshot(out)
    with (
        pytest.raises(InputError, match="holds an input of this run"),
        atomic_dir(out, force=True, inputs=[out / "inputs" / "residents.gpkg", None]),
    ):
        pytest.fail("the body must not run")
    # the same input reached through a symbolic link from elsewhere
    link = tmp_path / "elsewhere" / "residents.gpkg"
    link.parent.mkdir()
    link.symlink_to(out / "inputs" / "residents.gpkg")
    with (
        pytest.raises(InputError, match="holds an input"),
        atomic_dir(out, force=True, inputs=[link]),
    ):
        pytest.fail("the body must not run")
    # and the output being the input folder itself, or inside it
    with pytest.raises(InputError, match="is an input"), atomic_dir(out, force=True, inputs=[out]):
        pytest.fail("the body must not run")
    assert snapshot(out) == before


def test_a_file_or_legacy_lookalike_is_not_replaced(tmp_path):
    f = tmp_path / "results.csv"
    f.write_text("a,b\n")
    with pytest.raises(InputError, match="not a folder"), atomic_dir(f, force=True):
        pytest.fail("the body must not run")
    assert f.read_text() == "a,b\n"
    # a run's folder from before markers existed is still recognised (make demo keeps working) ...
    legacy = tmp_path / "demo"
    (legacy / "gis").mkdir(parents=True)
    (legacy / "summary.json").write_text('{"schema_version": 1}')
    (legacy / "map.html").write_text("<html>")
    assert is_tool_output(legacy)
    # ... but not once it holds anything a run does not write
    (legacy / "my notes.docx").write_text("mine")
    assert not is_tool_output(legacy)
    with pytest.raises(InputError, match=r"not written by app\.py"), atomic_dir(legacy, force=True):
        pytest.fail("the body must not run")
    (legacy / "my notes.docx").unlink()
    with atomic_dir(legacy, force=True) as work:
        (work / "summary.json").write_text("{}")
    assert (legacy / MARKER).is_file() and not (legacy / "gis").exists()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o755), (0o027, 0o750), (0o002, 0o775)])
def test_output_folders_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        with atomic_dir(tmp_path / "out") as work:
            (work / "inputs").mkdir()
            with atomic_dir(work / "nested") as inner:
                (inner / "a.txt").write_text("x")
    finally:
        os.umask(old)
    out = tmp_path / "out"
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert stat.S_IMODE((out / "nested").stat().st_mode) == mode
    assert stat.S_IMODE((out / MARKER).stat().st_mode) == mode & 0o666


def test_cli_refuses_the_folder_holding_the_inputs_and_unrelated_folders(tmp_path):
    from data.demo import generate_demo, write_demo

    study = tmp_path / "study"  # written by the tool, so only the input rule protects it
    write_demo(generate_demo(seed=2026), study)
    before = snapshot(study)
    r = cli(
        "run",
        "--network",
        study / "streets.osm",
        "--residents",
        study / "residents.gpkg",
        "--layer",
        f"canteen={study / 'canteens_gcj02.csv'}",
        "--out",
        study,
        "--force",
    )
    assert r.returncode == 2, r.stderr
    lines = error_lines(r)
    assert len(lines) == 1 and "holds an input of this run" in lines[0] and str(study) in lines[0]
    assert snapshot(study) == before

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "budget.xlsx").write_text("numbers")
    for argv in (
        ("demo", "--out", mine, "--force"),
        (
            "prepare-osm",
            study / "streets.osm",
            "--areas",
            study / "areas.gpkg",
            "--out",
            mine,
            "--force",
        ),
    ):
        r = cli(*argv)
        assert r.returncode == 2, r.stderr
        lines = error_lines(r)
        assert len(lines) == 1 and "not written by app.py" in lines[0], r.stderr
        assert "choose a new --out folder" in lines[0]
        assert snapshot(mine) == {"budget.xlsx": b"numbers"}
    assert hidden_leftovers(tmp_path, "mine") == []


# ------------------------------------------------------------------------------------------
# 5. no races, no leftovers


def test_a_second_writer_of_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as work:
        (work / "first.txt").write_text("1")
        for force in (False, True):
            with (
                pytest.raises(InputError, match="another run is writing") as err,
                atomic_dir(out, force=force),
            ):
                pytest.fail("the body must not run")
            assert "wait for it or choose another --out" in str(err.value)
    assert (out / "first.txt").read_text() == "1"
    assert hidden_leftovers(tmp_path, "out") == []  # the lock file is gone too
    with atomic_dir(out, force=True) as work:  # and the path is free again
        (work / "second.txt").write_text("2")
    assert (out / "second.txt").exists()


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("theirs", [{}, {"theirs.txt": "keep"}])
def test_a_folder_appearing_during_a_run_is_never_replaced(tmp_path, force, theirs):
    out = tmp_path / "out"
    with pytest.raises(InputError, match="appeared") as err, atomic_dir(out, force=force) as work:
        (work / "summary.json").write_text("{}")
        out.mkdir()  # someone else, while the run is under way
        for name, text in theirs.items():
            (out / name).write_text(text)
    assert "left it untouched" in str(err.value)
    assert snapshot(out) == {k: v.encode() for k, v in theirs.items()}
    assert hidden_leftovers(tmp_path, "out") == []


def test_leftovers_of_dead_runs_are_removed_and_live_ones_kept(tmp_path):
    dead = dead_pid()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:

        def leftover(kind: str, pid: int, *, marked: bool = True) -> Path:
            p = tmp_path / f".out.{kind}-{pid}-{os.urandom(4).hex()}"
            p.mkdir()
            (p / "big.bin").write_bytes(b"x" * 1000)
            if marked:
                (p / MARKER).write_text("{}")
            return p

        tool_output(tmp_path / "out")
        dead_tmp, dead_old = leftover("tmp", dead), leftover("old", dead)
        live_tmp = leftover("tmp", sleeper.pid)
        not_ours = leftover("tmp", dead, marked=False)
        other_name = tmp_path / f".other.tmp-{dead}-abcd1234"
        shutil.copytree(dead_tmp, other_name)
        tool_output(tmp_path / "out", force=True)
        assert not dead_tmp.exists() and not dead_old.exists()
        assert live_tmp.exists() and not_ours.exists() and other_name.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_replacement_killed_between_its_renames_gets_the_old_output_back(tmp_path):
    moved = tmp_path / f".out.old-{dead_pid()}-0123abcd"
    moved.mkdir()
    (moved / MARKER).write_text("{}")
    (moved / "summary.json").write_text("previous")
    with (
        pytest.raises(InputError, match="pass --force"),
        atomic_dir(tmp_path / "out"),
    ):  # it is back, so it needs --force
        pytest.fail("the body must not run")
    assert (tmp_path / "out" / "summary.json").read_text() == "previous"
    assert hidden_leftovers(tmp_path, "out") == []


def test_sigkill_leftover_is_removed_by_the_next_run(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from layers.atomic import atomic_dir
        with atomic_dir({str(tmp_path / "out")!r}) as work:
            (work / "big.bin").write_bytes(b"x" * 100_000)
            print("ready", flush=True)
            time.sleep(60)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    p.kill()
    p.wait()
    left = hidden_leftovers(tmp_path, "out")
    assert any(".tmp-" in n for n in left), left  # what SIGKILL leaves behind
    with atomic_dir(tmp_path / "out") as work:
        (work / "summary.json").write_text("{}")
    assert hidden_leftovers(tmp_path, "out") == []


def test_sigterm_cleans_up_and_says_so(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "CI": "true"}
    p = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "demo", "--out", str(out), "--formats", "csv"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(".tmp-" in n for n in hidden_leftovers(tmp_path, "demo")):
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.05)
    time.sleep(1.0)  # well inside the run
    p.send_signal(signal.SIGTERM)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 143, stderr
    assert "interrupted; no output written" in stderr and "Traceback" not in stderr
    assert not out.exists()
    assert hidden_leftovers(tmp_path, "demo") == []


# ------------------------------------------------------------------------------------------
# 6. a bad --out fails first, in one line


def test_dangling_symlink_as_out_fails_before_any_work(tmp_path):
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "gone")
    with (
        pytest.raises(InputError, match="symbolic link to a missing folder"),
        atomic_dir(link, force=True),
    ):
        pytest.fail("the body must not run")
    t0 = time.monotonic()
    r = cli("demo", "--out", link)
    assert r.returncode == 2, r.stderr
    lines = error_lines(r)
    assert len(lines) == 1 and "symbolic link to a missing folder" in lines[0]
    assert time.monotonic() - t0 < 5  # the demo itself takes longer than this
    assert link.is_symlink() and not (tmp_path / "gone").exists()


def test_out_inside_a_file_fails_in_one_line(tmp_path):
    f = tmp_path / "plan.toml"
    f.write_text("")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_out_dir(f / "out")


def _without_root_powers() -> dict:
    """Run a child without CAP_DAC_OVERRIDE when we are root (root writes into read-only folders)."""
    if os.geteuid() != 0:
        return {}
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def drop() -> None:
        for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, from the bounding set
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl")

    return {"preexec_fn": drop}


def test_read_only_parent_fails_before_any_work(tmp_path):
    ro = tmp_path / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        kw = _without_root_powers()
        try:
            probe = subprocess.run(
                [sys.executable, "-c", f"import os; os.mkdir({str(ro / 'probe')!r})"],
                capture_output=True,
                check=False,
                **kw,
            )
        except subprocess.SubprocessError:
            pytest.skip("cannot drop root's power to write into read-only folders here")
        if probe.returncode == 0:
            pytest.skip("read-only folders are writable here")
        t0 = time.monotonic()
        r = cli("demo", "--out", ro / "out", **kw)
        assert r.returncode == 2, r.stderr
        lines = error_lines(r)
        assert len(lines) == 1 and "cannot write the output folder here" in lines[0], r.stderr
        assert str(ro) in lines[0] and "writable place" in lines[0]
        assert time.monotonic() - t0 < 5
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)

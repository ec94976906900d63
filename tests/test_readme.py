"""Every `python app.py ...` command in the READMEs runs as written (issue 12, point 4).

The commands are taken from the ```bash blocks of README.md and examples/*/README.md, in that
order (`make demo` stands for its Makefile recipe; `make test` is what CI runs anyway).  They run
from the root of a temporary copy of the checkout (packages and data linked, ``examples/`` copied
so that plan files resolve their relative paths inside the copy), so relative ``--out`` folders
land in the copy and nothing in the checkout is touched.  The venv's python is replaced by the one
running the tests; everything else is kept verbatim.

Commands that read ``../shared/data/osm`` (directly, through a shell variable, a plan file, or
files another such command wrote) run in a second test that is skipped when the data is absent.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED_OSM, shared_file

READMES = [ROOT / "README.md", *sorted((ROOT / "examples").glob("*/README.md"))]
SHARED_MARK = "shared/data/osm"
_FENCE = re.compile(r"^```(\w*)\s*$")
_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")
_ASSIGN = re.compile(r"^(\w+)=(\S+)$")
# the linked top-level entries of the copy; out/ starts empty, examples/ is copied
_NOT_LINKED = {".git", "out", "examples", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


@dataclass(frozen=True)
class Command:
    """One `app.py` command as the README prints it, and where it was found."""

    source: str  # README path and line
    text: str  # after shell variables were expanded
    argv: tuple[str, ...]  # app.py and its arguments

    @property
    def out(self) -> str | None:
        """The ``--out`` folder, as written."""
        args = list(self.argv)
        return args[args.index("--out") + 1] if "--out" in args else None


def _bash_blocks(path: Path) -> list[tuple[int, list[str]]]:
    """The ```bash blocks of a Markdown file: (line number of the fence, lines)."""
    blocks: list[tuple[int, list[str]]] = []
    language: str | None = None  # inside a fence: its language ("" for none)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = _FENCE.match(line.strip())
        if language is None:
            if fence:
                language = fence.group(1)
                if language in ("bash", "sh", "shell"):
                    blocks.append((number, []))
        elif line.strip() == "```":
            language = None
        elif language in ("bash", "sh", "shell"):
            blocks[-1][1].append(line)
    return blocks


def _logical_lines(lines: list[str]) -> list[str]:
    """Join lines continued with a trailing backslash."""
    out: list[str] = []
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return out


def _makefile_recipe(target: str) -> list[str]:
    """The `app.py` lines of a Makefile target, with $(BIN)/$(VENV) spelt out."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    recipe: list[str] = []
    inside = False
    for line in lines:
        if re.match(rf"^{re.escape(target)}\s*:", line):
            inside = True
        elif inside and line.startswith("\t"):
            recipe.append(line.strip().replace("$(BIN)", ".venv/bin").replace("$(VENV)", ".venv"))
        elif inside:
            break
    return [r for r in recipe if " app.py " in f" {r} "]


def _expand(text: str, variables: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` of the block's own assignments, spelt out."""
    return _VAR.sub(lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), text)


def _is_python(token: str) -> bool:
    return token in ("python", "python3") or token.endswith(("/python", "/python3"))


def readme_commands() -> list[Command]:
    """Every `app.py` command of the READMEs' bash blocks, in reading order."""
    commands: list[Command] = []
    for readme in READMES:
        for start, block in _bash_blocks(readme):
            variables: dict[str, str] = {}
            for raw in _logical_lines(block):
                text = _expand(raw, variables)
                tokens = shlex.split(text, comments=True)
                if not tokens:
                    continue
                if len(tokens) == 1 and (assign := _ASSIGN.match(tokens[0])):
                    variables[assign.group(1)] = assign.group(2)
                    continue
                where = f"{readme.relative_to(ROOT)} (block at line {start})"
                if tokens[0] == "make" and len(tokens) == 2:
                    for line in _makefile_recipe(tokens[1]):
                        argv = shlex.split(line)
                        commands.append(
                            Command(f"{where}: make {tokens[1]}", line, tuple(argv[1:]))
                        )
                    continue
                if len(tokens) > 1 and _is_python(tokens[0]) and tokens[1] == "app.py":
                    commands.append(Command(where, " ".join(tokens), tuple(tokens[1:])))
    return commands


def _needs_shared(commands: list[Command]) -> list[bool]:
    """Which commands read ../shared/data/osm, directly or through what an earlier one wrote."""
    shared_outs: list[str] = []
    needs = []
    for c in commands:
        args = [a for a in c.argv if a != "--out"]
        uses = SHARED_MARK in c.text or any(
            a == o or a.startswith(o.rstrip("/") + "/") for a in args for o in shared_outs
        )
        for a in args:
            p = ROOT / a
            if a.endswith(".toml") and p.is_file() and SHARED_MARK in p.read_text("utf-8"):
                uses = True
        if uses and c.out:
            shared_outs.append(c.out)
        needs.append(uses)
    return needs


def _copy_of_checkout(base: Path, *, with_shared: bool) -> Path:
    """A repository root to run the README from: links to the checkout, its own out/."""
    repo = base / "repo"
    repo.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in _NOT_LINKED or entry.name.startswith(".servicecircle"):
            continue
        (repo / entry.name).symlink_to(entry)
    shutil.copytree(ROOT / "examples", repo / "examples")
    if with_shared:
        (base / "shared").symlink_to(SHARED_OSM.parent.parent)  # ../shared from the repo
    return repo


def _run_all(commands: list[Command], repo: Path, cache: Path) -> None:
    env = {**os.environ, "SERVICECIRCLE_CACHE": str(cache), "PYTHONWARNINGS": "default"}
    env.pop("CI", None)  # progress lines on, as a user sees them
    done: set[tuple[str, ...]] = set()
    for c in commands:
        if c.argv in done:  # the same command in two READMEs runs once
            continue
        done.add(c.argv)
        assert c.out is None or not Path(c.out).is_absolute(), f"{c.source}: --out outside the repo"
        proc = subprocess.run(
            [sys.executable, *c.argv],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        report = f"{c.source}\n$ {c.text}\nexit {proc.returncode}\n{proc.stderr[-3000:]}"
        assert proc.returncode == 0, report
        assert "Traceback" not in proc.stderr, report
        assert not re.search(r"^\S*Warning: ", proc.stderr, re.MULTILINE), report
        if c.out is not None:
            out = repo / c.out
            wrote = "plan.toml" if "prepare-osm" in c.argv else "summary.json"
            assert (out / wrote).is_file(), f"{c.source}: {c.text} wrote no {wrote}"


def test_readmes_hold_the_commands_a_new_user_needs():
    commands = readme_commands()
    texts = [" ".join(c.argv) for c in commands]
    assert texts[0].startswith("app.py demo"), "make demo comes first"
    assert any(t.startswith("app.py run --network out/demo/inputs/") for t in texts)
    assert any(t.startswith("app.py prepare-osm") for t in texts)
    plans = [a for c in commands for a in c.argv if a.endswith("plan.toml")]
    assert "examples/demo/plan.toml" in plans and "examples/hangzhou/plan.toml" in plans
    for c in commands:  # every command writes into the repository's out/
        assert c.out is not None and c.out.startswith("out/"), c.text


def test_readme_commands_on_demo_data_run_as_written(tmp_path):
    commands = readme_commands()
    local = [c for c, shared in zip(commands, _needs_shared(commands), strict=True) if not shared]
    assert len(local) >= 3
    repo = _copy_of_checkout(tmp_path, with_shared=False)
    _run_all(local, repo, tmp_path / "cache")


@pytest.mark.realdata
def test_readme_commands_on_real_osm_run_as_written(tmp_path):
    shared_file("westlake_10km.osm.pbf")
    shared_file("hangzhou_admin_osm.geojson")
    commands = readme_commands()
    real = [c for c, shared in zip(commands, _needs_shared(commands), strict=True) if shared]
    assert sum("prepare-osm" in c.argv for c in real) >= 1
    repo = _copy_of_checkout(tmp_path, with_shared=True)
    _run_all(real, repo, tmp_path / "cache")

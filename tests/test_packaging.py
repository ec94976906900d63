"""pyproject.toml: an install writes no package over another's, and every dependency line parses.

`pip install -e .` failed while building metadata: setuptools read requirements-dev.txt's
`-r requirements.txt` line as a dependency.  The project runs from its checkout; an install is
metadata plus dependencies only, because `coverage/` is also coverage.py's import name.
"""

from __future__ import annotations

import tomllib
import warnings

import pytest
from packaging.requirements import InvalidRequirement, Requirement

from tests.conftest import ROOT

PYPROJECT = ROOT / "pyproject.toml"


def _config() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def _requirement_lines(name: str) -> list[str]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return [s for line in lines if (s := line.split("#", 1)[0].strip())]


def test_every_file_setuptools_reads_holds_pep508_requirements():
    dynamic = _config()["tool"]["setuptools"]["dynamic"]
    files = list(dynamic["dependencies"]["file"])
    for extra in dynamic.get("optional-dependencies", {}).values():
        files.extend(extra["file"])
    assert "requirements.txt" in files
    for name in files:
        for line in _requirement_lines(name):
            try:
                Requirement(line)
            except InvalidRequirement as exc:
                pytest.fail(f"{name}: {line!r} is no PEP 508 requirement ({exc})")


def test_install_maps_no_package_of_the_checkout():
    config = _config()
    assert config["build-system"]["build-backend"] == "setuptools.build_meta"
    tool = config["tool"]["setuptools"]
    # explicit and empty: no automatic discovery of coverage/, data/, maps/, ... into site-packages
    assert tool["packages"] == [] and tool["py-modules"] == []
    assert "package-dir" not in tool
    assert "scripts" not in config["project"] and "entry-points" not in config["project"]
    assert (ROOT / "coverage" / "__init__.py").exists()  # the name the rule is about


def test_setuptools_reads_the_configuration_as_pip_would(monkeypatch):
    """The same step that failed under `pip install -e .`: apply pyproject.toml to a Distribution."""
    pyprojecttoml = pytest.importorskip("setuptools.config.pyprojecttoml")
    dist_module = pytest.importorskip("setuptools.dist")
    monkeypatch.chdir(ROOT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "[tool.setuptools] is beta" on older setuptools
        dist = pyprojecttoml.apply_configuration(dist_module.Distribution(), PYPROJECT)
    assert dist.packages == [] and dist.py_modules == []
    wanted = {Requirement(line).name for line in _requirement_lines("requirements.txt")}
    assert {Requirement(str(r)).name for r in dist.install_requires} == wanted
    assert "coverage" not in wanted  # coverage.py is not a dependency either

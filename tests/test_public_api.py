"""Each package documents a public API that imports lazily and works end to end."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.parametrize("package", ["coverage", "geo"])
def test_public_names_resolve_and_are_documented(package):
    mod = importlib.import_module(package)
    assert mod.__doc__ and "Public API" in mod.__doc__
    for name in mod.__all__:
        obj = getattr(mod, name)
        assert obj.__doc__, f"{package}.{name} has no docstring"
    with pytest.raises(AttributeError):
        _ = mod.no_such_name


def test_importing_a_package_loads_nothing_heavy():
    """``import coverage`` / ``import geo`` import no geopandas: no side effects at import."""
    code = "import sys, coverage, geo; print('geopandas' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]


def test_library_example_on_the_demo_district(tmp_path):
    """The package docstring's example, end to end on the generated demo district."""
    from coverage import AnalysisOptions, Study, StudyInputs, analyse, summary_dict
    from data.demo import generate_demo, write_demo
    from geo.load import load_network
    from layers.model import read_facilities, read_residents
    from layers.spec import load_layer_table

    files = write_demo(generate_demo(seed=3), tmp_path / "demo")
    specs = load_layer_table()
    residents = read_residents(files.residents_gpkg)
    canteens = read_facilities(files.facilities["canteen"], "canteen", default_coords="gcj02")
    net = load_network(files.streets_osm, cache_dir=tmp_path / "cache")
    inputs = StudyInputs(residents, {"canteen": canteens}, {"canteen": specs["canteen"]})
    result = analyse(net, inputs, title="示例", options=AnalysisOptions())
    rate = summary_dict(result)["layers"]["canteen"]["coverage_rate"]
    assert 0 < rate < 1
    study = Study.route(net, inputs)
    lon, lat = residents.geometry.iloc[0].representative_point().coords[0]
    edited, site = study.add_facility("canteen", lon=lon, lat=lat, name="新助餐点")
    after = edited.metrics("canteen")
    head = after[(after["level"] == "district") & (after["minutes"] == 15)]
    assert float(head["coverage_rate"].iloc[0]) >= rate
    assert site in set(edited.facilities("canteen")["facility_id"])


def test_readme_library_examples_run(tmp_path, monkeypatch):
    """The README's "Library use" code blocks run as written (on freshly generated demo inputs)."""
    import re

    from data.demo import generate_demo, write_demo

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Library use") : text.index("## Definitions")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    write_demo(generate_demo(seed=2026), tmp_path / "out" / "demo" / "inputs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SERVICECIRCLE_CACHE", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(ROOT))
    for i, code in enumerate(blocks):
        exec(compile(code, f"README block {i}", "exec"), {"__name__": "readme"})

"""The plan and the small TOML files users write: strict keys, counts, speeds, minutes, encodings."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from layers.crs import check_metric_crs
from layers.errors import InputError
from layers.plan import Plan, parse_minutes, parse_pair, plan_from_mapping, read_plan
from layers.spec import load_layer_table
from layers.tomlfile import read_toml

HANGZHOU = (120.1, 30.2, 120.25, 30.35)
PLAN_KEYS = ("--", "[", "plan", "coords", "minutes", "suggest", "speed")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Empty stand-ins for the files a plan names (``Plan.check`` only needs them to exist)."""
    names = {"network": "n.osm", "residents": "r.gpkg", "canteen": "c.csv", "hostel": "h.geojson"}
    for name in names.values():
        (tmp_path / name).write_text("")
    return {k: str(tmp_path / v) for k, v in names.items()}


def plan_of(files: dict[str, str], **extra: object) -> dict[str, object]:
    return {
        "network": files["network"],
        "residents": files["residents"],
        "layers": {"canteen": files["canteen"], "youth_hostel": files["hostel"]},
        **extra,
    }


def refused(data: dict[str, object], *words: str, check: bool = False) -> InputError:
    with pytest.raises(InputError) as err:
        plan = plan_from_mapping(data, file="plan.toml")
        if check:
            plan.check()
    text = str(err.value)
    assert "\n" not in text
    for w in words:
        assert w in text, text
    return err.value


# --- 1. the analysis CRS keeps distances --------------------------------------------------------


def test_web_mercator_is_refused_over_hangzhou():
    with pytest.raises(InputError) as err:
        check_metric_crs("3857", HANGZHOU)
    text = str(err.value)
    assert "EPSG:3857 distorts distances by 15." in text
    assert "--crs" in err.value.fix and "EPSG:4549" in err.value.fix and "32651" in err.value.fix


@pytest.mark.parametrize("crs", ["EPSG:32651", "32651", 4549, "EPSG:4549"])
def test_utm_and_gauss_kruger_pass_over_hangzhou(crs):
    chosen = check_metric_crs(crs, HANGZHOU)
    assert chosen.to_epsg() in (32651, 4549)


def test_scale_limit_is_the_callers():
    # UTM 51N is 0.05% long over Hangzhou: fine at 0.5%, refused at 0.01%
    check_metric_crs(32651, HANGZHOU)
    with pytest.raises(InputError, match=r"distorts distances by 0\.06%"):
        check_metric_crs(32651, HANGZHOU, max_scale_error=0.0001)


@pytest.mark.parametrize(
    ("crs", "words"),
    [
        ("4326", "longitude-latitude"),
        ("2227", "not metres"),  # California, US survey feet
        ("EPSG:99999", "unreadable CRS"),
    ],
)
def test_plan_check_refuses_non_metric_crs_at_once(files, crs, words):
    err = refused(plan_of(files, crs=crs), words, "--crs", check=True)
    assert "crs" in err.fix


def test_plan_accepts_bare_epsg_number(files):
    plan = plan_from_mapping(plan_of(files, crs=4549)).check()
    assert plan.crs == "4549"


# --- 2. unknown keys at every level, with the closest valid key ---------------------------------


def test_typo_in_layer_entry_is_refused(files):
    data = plan_of(files)
    data["layers"] = {"canteen": {"file": files["canteen"], "coord": "gcj02"}}
    err = refused(data, "[layers] canteen: unknown key 'coord'", "plan.toml")
    assert "did you mean 'coords'?" in err.fix


def test_typo_at_top_level_is_refused(files):
    err = refused(plan_of(files, minute=[5, 15]), "unknown key 'minute'")
    assert "did you mean 'minutes'?" in err.fix


def test_typo_in_residents_columns_is_refused(files):
    data = plan_of(files, residents_columns={"population": "常住人口", "elderyl": "60岁以上"})
    err = refused(data, "[residents_columns]: unknown key 'elderyl'", check=True)
    assert "did you mean 'elderly'?" in err.fix and "youth" in err.fix


def test_residents_columns_accept_groups_of_the_layer_table(files, tmp_path):
    table = tmp_path / "layers.toml"
    table.write_text(
        '[canteen]\nlabel_zh = "食堂"\nlabel_en = "Canteen"\ntarget_group = "over80"\n'
        "speed_kmh = 3\nthresholds_min = [5, 10, 15]\n"
        '[youth_hostel]\nlabel_zh = "驿站"\nlabel_en = "Hostel"\ntarget_group = "youth"\n'
        "speed_kmh = 4.5\nthresholds_min = [15]\n",
        encoding="utf-8",
    )
    cols = {"population": "p", "elderly": "e", "over80": "o"}
    plan = plan_from_mapping(plan_of(files, layer_table=str(table), residents_columns=cols))
    assert plan.check().residents_columns == cols


@pytest.mark.parametrize("table", ["suggest", "speed"])
def test_unknown_kind_in_suggest_or_speed_names_the_closest_layer(files, table):
    err = refused(plan_of(files, **{table: {"canten": 3}}), "'canten'", check=True)
    assert "did you mean 'canteen'?" in err.fix and "--layer canten" in err.fix


def test_unknown_layer_kind_names_the_closest_kind(files):
    data = plan_of(files)
    data["layers"] = {"canten": files["canteen"]}
    err = refused(data, "unknown layer kind 'canten'", check=True)
    assert "did you mean 'canteen'?" in err.fix and "--layer-table" in err.fix


@pytest.mark.parametrize("key", ["suggest", "speed", "layers", "residents_columns"])
def test_a_table_written_as_a_value_is_refused(files, key):
    data = plan_of(files)
    data[key] = 5
    err = refused(data, f"'{key}' must be a [{key}] table")
    assert f"[{key}]" in err.fix


def test_typo_in_layer_table_is_refused(tmp_path):
    table = tmp_path / "layers.toml"
    table.write_text(
        '[canteen]\nlabel_zh = "食堂"\nlabel_en = "Canteen"\ntarget_group = "elderly"\n'
        "speed_kph = 3.6\nspeed_kmh = 3.6\nthresholds_min = [5, 10, 15]\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as err:
        load_layer_table(table)
    assert "[canteen]: unknown key 'speed_kph'" in str(err.value)
    assert "did you mean 'speed_kmh'?" in str(err.value) and str(table) in str(err.value)


def test_shipped_layer_table_still_loads():
    assert {"canteen", "youth_hostel"} <= set(load_layer_table())


# --- 3. counts are whole, speeds are walking speeds, distances positive -------------------------


def test_suggest_fraction_is_refused_in_plan_and_on_the_command_line(files):
    err = refused(plan_of(files, suggest={"canteen": 2.7}), "[suggest] canteen", "2.7")
    assert "whole number" in str(err) and "[suggest]" in err.fix
    with pytest.raises(InputError, match=r"2\.7 is not a whole number") as cli:
        parse_pair("canteen=2.7", flag="--suggest", number=int)
    assert "--suggest canteen=" in cli.value.fix


@pytest.mark.parametrize("n", [3, 3.0, "3", "3.0"])
def test_suggest_whole_numbers_are_accepted(files, n):
    assert parse_pair(f"canteen={n}", flag="--suggest", number=int) == ("canteen", 3)
    if not isinstance(n, str):
        assert plan_from_mapping(plan_of(files, suggest={"canteen": n})).suggest == {"canteen": 3}


@pytest.mark.parametrize("bad", [True, "many", float("nan"), float("inf")])
def test_suggest_non_numbers_are_refused(files, bad):
    # ``true`` asks LSCP for its own number of sites; any other model needs a number
    refused(plan_of(files, suggest={"canteen": bad}), "canteen", check=True)


@pytest.mark.parametrize(
    ("kmh", "words"),
    [
        (0, "not between"),
        (-3, "not between"),
        (45, "m/min would be 2.7 km/h"),
        (True, "not a number"),
    ],
)
def test_implausible_speed_is_refused(files, kmh, words):
    err = refused(plan_of(files, speed={"canteen": kmh}), words, check=True)
    assert "--speed canteen=" in err.fix or "[speed]" in err.fix


def test_plausible_speed_is_kept(files):
    assert plan_from_mapping(plan_of(files, speed={"canteen": 3})).check().speed == {"canteen": 3}


def test_layer_table_speed_in_metres_per_minute_is_refused(tmp_path):
    table = tmp_path / "layers.toml"
    table.write_text(
        '[canteen]\nlabel_zh = "食堂"\nlabel_en = "Canteen"\ntarget_group = "elderly"\n'
        "speed_kmh = 60\nthresholds_min = [5, 10, 15]\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"60 m/min would be 3\.6 km/h") as err:
        load_layer_table(table)
    assert "speed_kmh = " in err.value.fix


@pytest.mark.parametrize("key", ["max_snap_m", "buffer_m", "time_limit_s"])
@pytest.mark.parametrize("bad", [0, -5, float("nan"), True, "far"])
def test_distances_and_time_limit_must_be_positive(files, key, bad):
    err = refused(plan_of(files, **{key: bad}), f"'{key}' must be a positive number")
    assert key in err.fix


def test_max_snap_from_the_command_line_is_checked(files):
    plan = plan_from_mapping(plan_of(files))
    from dataclasses import replace

    with pytest.raises(InputError, match="max_snap_m") as err:
        replace(plan, max_snap_m=-1.0).check()
    assert "--max-snap-m" in err.value.fix


# --- 4. minutes: a number or a list of numbers --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(15, (15.0,)), (7.5, (7.5,)), ([15, 5, 10], (5.0, 10.0, 15.0))]
)
def test_minutes_number_or_list(files, value, expected):
    assert plan_from_mapping(plan_of(files, minutes=value)).minutes == expected


@pytest.mark.parametrize("bad", ["15", True, [5, True], ["5", "10"], [], [0, 5], {"a": 1}])
def test_minutes_text_or_booleans_are_refused(files, bad):
    err = refused(plan_of(files, minutes=bad), "minutes", "plan.toml")
    assert "minutes = [5, 10, 15]" in err.fix


def test_minutes_flag_text_still_parses():
    assert parse_minutes("15, 5,10") == (5.0, 10.0, 15.0)
    with pytest.raises(InputError, match="--minutes"):
        parse_minutes("5,inf")


# --- 5. encodings of the files users write ------------------------------------------------------


def _plan_text(files: dict[str, str]) -> str:
    return (
        '# 上城区计划\ntitle = "上城区15分钟公共服务圈"\n'
        f'network = "{Path(files["network"]).as_posix()}"\n'
        f'residents = "{Path(files["residents"]).as_posix()}"\n'
        f'[layers]\ncanteen = "{Path(files["canteen"]).as_posix()}"\n'
        '[residents_columns]\npopulation = "常住人口"\n'
    )


def test_gbk_plan_is_read_with_a_warning(files, tmp_path, caplog):
    p = tmp_path / "plan.toml"
    p.write_bytes(_plan_text(files).encode("gbk"))
    with caplog.at_level(logging.WARNING, logger="layers.tomlfile"):
        plan = read_plan(p)
    assert plan.title == "上城区15分钟公共服务圈"
    assert plan.residents_columns == {"population": "常住人口"}
    assert any("GBK" in r.getMessage() and "UTF-8" in r.getMessage() for r in caplog.records)


def test_bom_plan_is_read(files, tmp_path):
    p = tmp_path / "plan.toml"
    p.write_bytes(_plan_text(files).encode("utf-8-sig"))
    assert read_plan(p).title == "上城区15分钟公共服务圈"


def test_utf16_plan_is_read(files, tmp_path):
    p = tmp_path / "plan.toml"
    p.write_text(_plan_text(files), encoding="utf-16")
    assert read_plan(p).residents_columns == {"population": "常住人口"}


def test_plan_mixing_utf8_and_gbk_is_refused_naming_the_line(tmp_path):
    p = tmp_path / "plan.toml"
    p.write_bytes('title = "上城区"\n'.encode() + 'place = "杭州市"\n'.encode("gbk"))
    with pytest.raises(InputError, match="line 2 is not UTF-8") as err:
        read_toml(p, what="plan file")
    assert str(p) in str(err.value)


def test_gbk_targets_and_layer_table_are_read(tmp_path):
    targets = tmp_path / "targets.toml"
    targets.write_bytes(
        '[[targets]]\nlabel = "助餐全覆盖"\nlayer = "canteen"\nscope = "street"\n'
        'measure = "coverage_rate"\nthreshold = 1.0\n'.encode("gbk")
    )
    assert read_toml(targets, what="targets file")["targets"][0]["label"] == "助餐全覆盖"
    table = tmp_path / "layers.toml"
    table.write_bytes(
        '[canteen]\nlabel_zh = "社区食堂"\nlabel_en = "Canteen"\ntarget_group = "elderly"\n'
        "speed_kmh = 3.6\nthresholds_min = [5, 10, 15]\n".encode("gbk")
    )
    assert load_layer_table(table)["canteen"].label_zh == "社区食堂"


def test_plan_check_passes_on_a_good_plan(files):
    plan = plan_from_mapping(
        plan_of(files, suggest={"canteen": 3}, speed={"youth_hostel": 4.5}, minutes=15)
    )
    assert isinstance(plan.check(), Plan)


def test_typo_in_targets_file_table_name_is_refused(tmp_path):
    from layers.plan import read_targets_file

    p = tmp_path / "targets.toml"
    p.write_text('[[target]]\nlayer = "canteen"\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_targets_file(p)
    assert "unknown key 'target'" in str(err.value) and "did you mean 'targets'?" in err.value.fix
    p.write_text("targets = [1, 2]\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"no \[\[targets\]\] tables"):
        read_targets_file(p)

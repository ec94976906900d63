"""Facility layer specifications: who a layer serves, how fast they walk, which minutes count.

The defaults live in ``data/layers.toml`` so planners change speeds, thresholds or add kinds by
editing a table, not code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from layers.errors import InputError
from layers.tomlfile import check_keys, finite_number, read_toml

log = logging.getLogger(__name__)

DEFAULT_TABLE = Path(__file__).resolve().parents[1] / "data" / "layers.toml"

#: Names of the built-in target groups and their labels.
TARGET_GROUP_LABELS: dict[str, tuple[str, str]] = {
    "population": ("全体居民", "all residents"),
    "elderly": ("60岁及以上老人", "residents 60+"),
    "youth": ("18-35岁青年", "residents 18-35"),
}

_REQUIRED = ("label_zh", "label_en", "target_group", "speed_kmh", "thresholds_min")
_OPTIONAL = ("headline_min", "colour", "icon")
#: Walking speeds accepted (km/h): the slowest elderly walk to a brisk walk.  Outside it the value
#: is almost surely in another unit (45 metres per minute is 2.7 km/h), so it is refused.
WALK_SPEED_KMH_RANGE: tuple[float, float] = (1.0, 10.0)
_PALETTE = ("#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4", "#b15928")


@dataclass(frozen=True)
class LayerSpec:
    """How one facility kind is analysed.

    Attributes
    ----------
    kind
        Machine name (``canteen``); used in file and column names.
    label_zh, label_en
        Names shown to people.
    target_group
        Residents column holding the population this layer serves.
    speed_kmh
        Walking speed of that group; minutes = metres / (speed_kmh * 1000 / 60).
    thresholds_min
        Minutes reported (rings on the map, columns in the report), ascending.
    headline_min
        The goal the summary reports as ``coverage_rate`` (15 by default).
    colour, icon
        Map styling (hex colour, Font Awesome / Glyphicon name).
    """

    kind: str
    label_zh: str
    label_en: str
    target_group: str
    speed_kmh: float
    thresholds_min: tuple[float, ...]
    headline_min: float
    colour: str = "#333333"
    icon: str = "info-sign"

    @property
    def metres_per_minute(self) -> float:
        """Walking speed in metres per minute."""
        return self.speed_kmh * 1000.0 / 60.0

    @property
    def cutoff_m(self) -> float:
        """Network distance of the largest threshold: routing never needs to look further."""
        return max(max(self.thresholds_min), self.headline_min) * self.metres_per_minute

    def label(self, lang: str = "zh") -> str:
        """The layer's name in ``lang`` (``zh`` or ``en``)."""
        return self.label_zh if lang == "zh" else self.label_en

    def with_speed(self, speed_kmh: float) -> LayerSpec:
        """A copy with another walking speed (``--speed KIND=KMH``)."""
        kmh = check_speed_kmh(
            speed_kmh,
            where=f"speed of '{self.kind}'",
            file=None,
            example=f"--speed {self.kind}=3.6 (or {self.kind} = 3.6 under [speed] in the plan)",
        )
        return replace(self, speed_kmh=kmh)

    def with_thresholds(self, minutes: tuple[float, ...]) -> LayerSpec:
        """A copy with other thresholds (``--minutes 5,10,20``); the layer's goal always stays.

        The headline minutes are the policy goal the layer is judged by (15 in Hangzhou), so
        other thresholds never move it: it is added to the list when left out, with a log line.
        """
        asked = {float(m) for m in minutes}
        for m in asked:
            _check_positive(m, "thresholds_min", self.kind, "--minutes")
        if self.headline_min not in asked:
            log.info(
                "%s: its goal of %g minutes is kept among the thresholds %s",
                self.kind,
                self.headline_min,
                sorted(asked),
            )
        ms = tuple(sorted(asked | {self.headline_min}))
        return replace(self, thresholds_min=ms)


def check_speed_kmh(value: Any, *, where: str, file: str | None, example: str) -> float:
    """A walking speed in km/h, refused when it is no number or outside the walking range.

    Parameters
    ----------
    value
        What the user wrote.
    where
        The key or flag as the user wrote it (``"[speed] canteen"``, ``"--speed canteen"``).
    file
        The file it came from, if any.
    example
        How to write it right, naming the real key or flag (``"--speed canteen=3.6"``).
    """
    lo, hi = WALK_SPEED_KMH_RANGE
    number = finite_number(value)
    if number is None:
        msg = f"{where}: walking speed {value!r} is not a number"
        raise InputError(msg, file=file, fix=f"write km/h between {lo:g} and {hi:g}: {example}")
    if not lo <= number <= hi:
        hint = (
            f" ({number:g} m/min would be {number * 0.06:.1f} km/h)"
            if number > hi and lo <= number * 0.06 <= hi
            else ""
        )
        msg = f"{where}: walking speed {number:g} km/h is not between {lo:g} and {hi:g}{hint}"
        raise InputError(msg, file=file, fix=f"write the speed in km/h: {example}")
    return number


def _check_positive(value: Any, key: str, kind: str, file: str) -> None:
    number = finite_number(value)
    ok = number is not None and number > 0
    if not ok:
        msg = f"layer '{kind}': {key} must be a positive number, got {value!r}"
        raise InputError(
            msg,
            file=file,
            fix=f"set {key} to a number above 0",
        )


def spec_from_mapping(
    kind: str, entry: Mapping[str, Any], *, file: str = "layer table"
) -> LayerSpec:
    """Build and check one :class:`LayerSpec` from a table entry."""
    check_keys(entry, _REQUIRED + _OPTIONAL, where=f"[{kind}]", file=file)
    missing = [k for k in _REQUIRED if k not in entry]
    if missing:
        msg = f"layer '{kind}' lacks {', '.join(missing)}"
        raise InputError(
            msg,
            file=file,
            fix=f"add {', '.join(missing)} under [{kind}] (see data/layers.toml)",
        )
    check_speed_kmh(
        entry["speed_kmh"],
        where=f"[{kind}] speed_kmh",
        file=file,
        example=f"speed_kmh = 3.6 under [{kind}]",
    )
    raw = entry["thresholds_min"]
    if not isinstance(raw, list | tuple) or not raw:
        msg = f"layer '{kind}': thresholds_min must be a list of minutes"
        raise InputError(
            msg,
            file=file,
            fix="write e.g. thresholds_min = [5, 10, 15]",
        )
    for m in raw:
        _check_positive(m, "thresholds_min", kind, file)
    thresholds = tuple(sorted({float(m) for m in raw}))
    _check_positive(entry.get("headline_min", thresholds[-1]), "headline_min", kind, file)
    headline = float(entry.get("headline_min", thresholds[-1]))
    return LayerSpec(
        kind=kind,
        label_zh=str(entry["label_zh"]),
        label_en=str(entry["label_en"]),
        target_group=str(entry["target_group"]),
        speed_kmh=float(entry["speed_kmh"]),
        thresholds_min=thresholds,
        headline_min=headline,
        colour=str(entry.get("colour", _PALETTE[sum(map(ord, kind)) % len(_PALETTE)])),
        icon=str(entry.get("icon", "info-sign")),
    )


def load_layer_table(path: str | Path | None = None) -> dict[str, LayerSpec]:
    """Read a layer table (TOML); ``None`` reads the defaults shipped in ``data/layers.toml``."""
    p = Path(path) if path is not None else DEFAULT_TABLE
    table = read_toml(p, what="layer table")
    if not table:
        msg = "layer table is empty"
        raise InputError(msg, file=p, fix="define at least one [kind] section")
    specs = {}
    for kind, entry in table.items():
        if not isinstance(entry, dict):
            msg = f"'{kind}' is not a [section]"
            raise InputError(msg, file=p, fix=f"write it as [{kind}] with keys below")
        specs[kind] = spec_from_mapping(kind, entry, file=str(p))
    return specs

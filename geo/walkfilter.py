"""The one walk filter every network source goes through (DESIGN.md, "Semantics").

Kept as a function of a way's tags so that OSM PBF/XML readers, GraphML graphs and online OSMnx
graphs all decide the same way.  Walking ignores ``oneway``.
"""

from __future__ import annotations

from collections.abc import Mapping

#: highway values nobody walks on (unless foot=yes/designated/permissive says otherwise).
EXCLUDED_HIGHWAYS = frozenset(
    {
        "motorway",
        "motorway_link",
        "construction",
        "proposed",
        "planned",
        "raceway",
        "bus_guideway",
        "busway",
        "abandoned",
        "disused",
        "razed",
        "platform",
        "cycleway",
        "elevator",
        "rest_area",
        "services",
        "escape",
        "no",
    }
)
#: foot values that explicitly allow walking and override an excluded highway or access tag.
FOOT_ALLOWED = frozenset({"yes", "designated", "permissive", "official"})
#: foot/access values that forbid walking.
FORBIDDEN = frozenset({"no", "private"})
#: highway values made for people on foot.  A network with almost none of them is probably a
#: driving network (OSMnx ``network_type="drive"`` drops every one of these), which misses the
#: paths people walk on.  ``living_street`` is left out on purpose: the drive filter keeps it, so
#: it cannot tell the two apart.
FOOT_HIGHWAYS = frozenset(
    {"footway", "path", "pedestrian", "steps", "corridor", "bridleway", "track"}
)


#: Tags that name a street, best first: the Chinese name, the name, then the route number (a
#: road known only as G320 is still better told by its number than by an edge id).
NAME_TAGS = ("name:zh", "name", "ref")


def _first(value: object) -> str:
    """Normalise a tag value: OSMnx GraphML keeps merged ways' values as lists."""
    if isinstance(value, list | tuple | set):
        return ";".join(str(v) for v in value)
    return "" if value is None else str(value)


def _highway_values(tags: Mapping[str, object]) -> list[str]:
    highway = _first(tags.get("highway")).strip()
    return [
        v.strip().strip("[]'\" ").lower()
        for v in highway.replace(",", ";").split(";")
        if v.strip().strip("[]'\" ")
    ]


def is_footpath(tags: Mapping[str, object]) -> bool:
    """Whether a walkable way is made for people on foot rather than for cars.

    Counts footways, paths, pedestrian streets, steps (see :data:`FOOT_HIGHWAYS`) and cycleways
    shared with pedestrians (``foot=designated/yes``).  Used only to tell a walking network from a
    driving one; it does not change what is routable.
    """
    values = _highway_values(tags)
    if any(v in FOOT_HIGHWAYS for v in values):
        return True
    foot = _first(tags.get("foot")).strip().lower()
    return "cycleway" in values and foot in FOOT_ALLOWED


def is_walkable(tags: Mapping[str, object]) -> bool:
    """Whether a way with these OSM tags belongs to the walking network.

    Parameters
    ----------
    tags
        OSM tags of the way (``highway``, ``foot``, ``access``, ``service``, ``area``...).  Values
        may be lists (OSMnx merges ways when simplifying); a list is walkable when any of its
        highway values is.

    Returns
    -------
    bool
        ``True`` for footways, paths, steps, pedestrian streets, service roads, ordinary streets
        and crossings; ``False`` for motorways, ``foot=no``, ``access=private/no`` and the like.
    """
    highway = _first(tags.get("highway")).strip()
    if not highway:
        return False
    foot = _first(tags.get("foot")).strip().lower()
    if foot in FORBIDDEN:
        return False
    foot_ok = foot in FOOT_ALLOWED
    access = _first(tags.get("access")).strip().lower()
    if access in FORBIDDEN and not foot_ok:
        return False
    if _first(tags.get("service")).strip().lower() == "private" and not foot_ok:
        return False
    if _first(tags.get("area")).strip().lower() == "yes" and highway != "pedestrian":
        return False
    values = _highway_values(tags)
    return foot_ok or any(v not in EXCLUDED_HIGHWAYS for v in values)


def _name_values(value: object) -> list[str]:
    """Non-empty names of one tag value, in order, without repeats.

    OSMnx keeps the values of merged ways as lists (or their ``str`` when read without OSMnx);
    pandas gives ``NaN`` for a missing value.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            items: list[object] = [v.strip().strip("'\" ") for v in text[1:-1].split(",")]
        else:
            items = [text]
    elif isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    else:
        return []
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            continue
        name = item.strip()
        if name and name not in out:
            out.append(name)
    return out


def street_names(tags: Mapping[str, object]) -> list[str]:
    """The names a way goes by, from the first tag of :data:`NAME_TAGS` that has one.

    The first one written in Chinese characters wins over an earlier one in Latin letters.

    Kept so that a suggested site can be told as "near 延安路" rather than by an id.  Usually one
    name; several when OSMnx merged differently named ways into one edge (it keeps them in no
    particular order, so the caller chooses, see :func:`geo.network.network_from_graph`).
    ``[]`` for an unnamed way.
    """
    found = [names for names in (_name_values(tags.get(key)) for key in NAME_TAGS) if names]
    # a name:zh in Latin letters ("Jiuxi Road" beside name=九溪路) reads worse in a Chinese report
    # than the Chinese name it stands in for
    for names in found:
        if any(_has_cjk(n) for n in names):
            return names
    return found[0] if found else []


def _has_cjk(text: str) -> bool:
    """Whether ``text`` has a CJK ideograph (basic block or extension A)."""
    return any("\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf" for c in text)

"""Old home of :mod:`layers.osm.prepare`, kept so ``from layers.prepare import ...`` still works."""

from layers.osm.prepare import PreparedStudy, prepare_from_osm

__all__ = ["PreparedStudy", "prepare_from_osm"]

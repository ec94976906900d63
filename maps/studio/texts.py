"""The studio page's words, taken from the one zh/en catalogue (:data:`maps.i18n.MESSAGES`).

The page switches language in the browser, so it receives every ``studio_*`` text in both
languages at once, keyed without the prefix; layer names come from the layer table.
"""

from __future__ import annotations

from maps.i18n import MESSAGES

_PREFIX = "studio_"

#: key -> (zh, en), the catalogue's studio_* entries without their prefix.
PAIRS: dict[str, tuple[str, str]] = {
    k.removeprefix(_PREFIX): v for k, v in MESSAGES.items() if k.startswith(_PREFIX)
}

#: The page reads ``TEXTS[lang][key]``.
TEXTS: dict[str, dict[str, str]] = {
    "zh": {k: v[0] for k, v in PAIRS.items()},
    "en": {k: v[1] for k, v in PAIRS.items()},
}

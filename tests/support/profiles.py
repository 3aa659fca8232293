"""Test profiles: CI runs a bounded number of examples; ``PAGELAB_LONG=1`` runs the long profile.

``make test-long`` sets it (the issue's bars: 100 interrupt seeds, >= 10,000 argument tuples,
>= 100,000 state-machine steps).
"""

from __future__ import annotations

import os

LONG = os.environ.get("PAGELAB_LONG", "") not in ("", "0")


def scale(ci: int, long: int) -> int:
    """``ci`` examples in the ordinary run, ``long`` in the long profile."""
    return long if LONG else ci

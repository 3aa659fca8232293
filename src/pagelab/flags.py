"""Bit-flag namespaces with Linux's names, as plain ints.

``enum.IntFlag`` costs microseconds per ``&``/``|`` (every result is a new enum object), which is
most of a fault's time in a Python kernel. These classes keep the names (``VmFlag.WRITE``) and a
decoder for display, while the values stay ints, as they are in C.
"""

from __future__ import annotations


class Flags:
    """Subclass and assign int bit values as class attributes."""

    @classmethod
    def members(cls) -> dict[str, int]:
        """Name -> value for every single-bit constant, in value order."""
        out = {k: v for k, v in vars(cls).items() if k.isupper() and isinstance(v, int) and v > 0
               and v & (v - 1) == 0}
        return dict(sorted(out.items(), key=lambda kv: kv[1]))

    @classmethod
    def names(cls, value: int) -> list[str]:
        """The names of the bits set in ``value``."""
        return [k for k, v in cls.members().items() if value & v]

    @classmethod
    def describe(cls, value: int) -> str:
        return "|".join(cls.names(value)) or "0"

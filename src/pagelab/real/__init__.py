"""The real backend: the Process API on this machine's Linux kernel (see machine.py)."""

from typing import TYPE_CHECKING, Any

from ..errors import ChildStopped

if TYPE_CHECKING:
    from .machine import ChildDied, Machine, RealProcess

# Loaded on first use (PEP 562): the child process imports pagelab.real.child, which needs none of them.
_LAZY = ("Machine", "RealProcess", "ChildDied")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import machine

        value = getattr(machine, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Machine", "RealProcess", "ChildDied", "ChildStopped"]

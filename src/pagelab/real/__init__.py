"""The real backend: the Process API on this machine's Linux kernel (see machine.py)."""

from ..errors import ChildStopped
from .machine import ChildDied, Machine, RealProcess

__all__ = ["Machine", "RealProcess", "ChildDied", "ChildStopped"]

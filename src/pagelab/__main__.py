"""``python -m pagelab``: the same as the ``pagelab`` command."""

from .cli import entry

entry()

"""Circular doubly linked lists over the frame table's link columns.

Mirrors include/linux/list.h: a list is a head row (a sentinel, see FrameTable.alloc_list_head()) and the
frames linked through ``links[0]`` (next) and ``links[1]`` (prev), the columns page->buddy_list,
page->pcp_list and folio->lru share. An empty list's head points to itself. Compiled with numba so the
allocator's loops can call them; with NUMBA_DISABLE_JIT=1 they run as plain Python.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NEXT = 0
PREV = 1


@njit(cache=True)
def list_add(links: np.ndarray, new: int, head: int) -> None:
    """list_add(): insert ``new`` right after ``head`` (at the front: stacks, LIFO)."""
    nxt = links[NEXT, head]
    links[PREV, nxt] = new
    links[NEXT, new] = nxt
    links[PREV, new] = head
    links[NEXT, head] = new


@njit(cache=True)
def list_add_tail(links: np.ndarray, new: int, head: int) -> None:
    """list_add_tail(): insert ``new`` right before ``head`` (at the back: queues, FIFO)."""
    prv = links[PREV, head]
    links[PREV, head] = new
    links[NEXT, new] = head
    links[PREV, new] = prv
    links[NEXT, prv] = new


@njit(cache=True)
def list_del(links: np.ndarray, entry: int) -> None:
    """list_del(): unlink ``entry``. Where Linux poisons the entry's links (LIST_POISON1/2), it is left
    pointing at itself, as list_del_init() leaves it: every unlinked entry looks the same, however it
    got there, so two routes to the same lists leave the same columns."""
    nxt = links[NEXT, entry]
    prv = links[PREV, entry]
    links[PREV, nxt] = prv
    links[NEXT, prv] = nxt
    links[NEXT, entry] = entry
    links[PREV, entry] = entry


@njit(cache=True)
def list_empty(links: np.ndarray, head: int) -> bool:
    """list_empty()."""
    return bool(links[NEXT, head] == head)


@njit(cache=True)
def list_entries(links: np.ndarray, head: int, limit: int) -> np.ndarray:
    """The entries of the list at ``head``, first to last; at most ``limit`` + 1 of them, so a caller
    checking a list finds a cycle that misses the head (length > limit) instead of looping forever."""
    out = np.empty(limit + 1, dtype=np.int64)
    n = 0
    row = links[NEXT, head]
    while row != head and n <= limit:
        out[n] = row
        n += 1
        row = links[NEXT, row]
    return out[:n]

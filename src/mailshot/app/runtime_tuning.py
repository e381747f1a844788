"""Allocator and garbage-collector settings for long-running processes (``mailshot serve``
and ``mailshot worker``): :func:`tune_allocator` (before any thread starts) and
:func:`freeze_gc` (once everything is loaded). Why and what they save: docs/PERFORMANCE.md."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)

#: Allocations between young-generation collections (CPython's default is 700).
YOUNG_THRESHOLD = 50_000
#: Blocks at least this big are mapped on their own and unmapped when freed.
MMAP_THRESHOLD = 256 * 1024
#: glibc's malloc arenas at most (its default is eight per core).
ARENA_MAX = 2
# mallopt parameters (glibc's malloc.h)
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_allocator() -> bool:
    """Set glibc's mmap threshold and arena cap; False where the C library is not glibc
    (nothing changes there)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_ARENA_MAX, ARENA_MAX)
    )
    if not done:
        log.debug("mallopt refused the allocator settings")
    return done


def freeze_gc() -> None:
    """Freeze what the process has loaded and collect less often (idempotent)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)

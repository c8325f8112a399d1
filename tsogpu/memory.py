"""The host process's memory: what it holds now, and glibc malloc's handling of freed blocks.

NumPy and the standard library only; Linux and glibc where it matters, harmless elsewhere.
"""

import contextlib
import ctypes.util
import logging
import os
from pathlib import Path


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def malloc_trim():
    """Hand the memory malloc holds free back to the system (after an out-of-memory error)."""
    with contextlib.suppress(OSError, AttributeError):
        _libc().malloc_trim(0)


def keep_freed_memory():
    """Make glibc's malloc reuse freed memory instead of returning it to the system.

    The steps make many array temporaries of tens to hundreds of MB; by default glibc maps
    each from the kernel and unmaps it when freed, so every one is page-faulted and zeroed
    anew (a third of the run time went to the kernel). With mmap off and trimming off,
    freed blocks are reused: on NRS 200 x 20 the run took half the time, at a lower peak.
    One arena: glibc's per-thread arenas cannot grow past 64 MiB and map larger blocks
    anyway, and the chunks and tiles run on threads (one arena took NRS 200 x 20 on the
    native backend from 31 s to 25-27 s, with half the system time). A process-wide setting, so
    the command line calls it, before any thread, not the library. Returns whether it took
    effect (glibc only).
    """
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8
    try:
        libc = _libc()
        ok = libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_arena_max, 1) == 1
        return ok and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return False


def freeze_imported():
    """Keep the objects alive now (the modules imported so far) out of the garbage
    collector's full passes (``gc.freeze``). A run imports astropy and stdatamodels (about
    100k objects) and then parses schemas and runs tiles, whose allocations trigger full
    collections that walked all of them again: 0.8 s of a NIRISS SOSS 100x9 run, 0.3 s with
    them frozen. A process-wide setting, for the command line once its imports are done."""
    import gc

    gc.freeze()


def current_rss():
    """Resident memory of this process now, in bytes (Linux; 0 where unknown)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def machine_memory():
    """The machine's memory in bytes, or its cgroup's limit where that is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def capped_to_machine(size, where="--max-memory"):
    """``size`` in bytes, or the machine's memory where it asks for more (with a warning)."""
    total = machine_memory()
    if size > total:
        logging.getLogger(__name__).warning(
            "%s %.1f GiB is more than this machine's %.1f GiB; using %.1f GiB",
            where,
            size / 2**30,
            total / 2**30,
            total / 2**30,
        )
        return total
    return size


def usable_cores():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1

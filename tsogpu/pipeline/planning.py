"""Memory planning: how a segment is cut so that the run stays within its memory budget.

:func:`plan_chunks` chooses between the whole segment in memory and the chunked run (pass 1
by integrations, pass 2 by tiles of pixels with a halo), from the budget, what the process
already holds and per-sample costs measured on the NumPy backend. The products never depend
on the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import ConfigError
from ..memory import current_rss, machine_memory, usable_cores

# Peak bytes per ramp sample (one group of one pixel of one integration) while a chunk is in
# work, on the NumPy backend, with margin: from the VmHWM of runs like
# tests/test_chunks.py::test_peak_memory_within_budget and bench/big_segment.py. The products'
# own arrays are counted separately.
BYTES_PER_SAMPLE_PASS1 = 40
BYTES_PER_SAMPLE_PASS2 = 64
BYTES_PER_SAMPLE_IN_MEMORY = 72
# Pass 1 streams its chunks where they go one at a time (tsogpu.flow), in at least this many,
# so that reading, copies, kernels and writing overlap for most of it (a GPU machine's budget
# would often take a segment in two or three)
STREAMED_CHUNKS = 8
# Pass 2 on one thread reads the next tile's ramp (float32 data, uint8 GROUPDQ) while a tile
# runs: its bytes per sample on top of BYTES_PER_SAMPLE_PASS2
READ_AHEAD_BYTES = 5
# The native kernels' chunks and tiles hold at most this many samples whatever the budget:
# their working set then stays small, so that the temporaries of one chunk or tile are
# reused by the next instead of being page-faulted anew (fresh pages cost about 3 s per GiB
# on the development VM), and the peak stays far below the budget
HOST_KERNEL_SAMPLES = 2**24


def most_samples(backend):
    """The most samples a chunk or tile of ``backend`` (its name) holds: ``most`` of
    :func:`plan_chunks`."""
    return HOST_KERNEL_SAMPLES if backend == "native" else None


@dataclass(frozen=True)
class Plan:
    """How a segment is cut: integrations per pass-1 chunk, a rows x cols tile for pass 2."""

    budget: int
    ints: int
    rows: int
    cols: int
    halo: int
    in_memory: bool
    threads: int = 1  # chunks and tiles at once (each within budget / threads)


def default_memory_budget():
    """An eighth of the machine's memory (of a cgroup limit, if lower), at least 1 GiB."""
    return max(machine_memory() // 8, 2**30)


def plan_chunks(shape, config, zeroframe=False, source="segment", threads=None, most=None):
    """Chunk sizes that keep the peak resident memory within ``config.max_memory``.

    ``threads``: chunks and tiles at once (default ``config.threads`` or the CPU cores);
    ``most``: the most samples a chunk or a tile holds (``HOST_KERNEL_SAMPLES`` for the
    native kernels; default no limit but the budget's).
    """
    nints, ngroups, ny, nx = shape
    budget = config.max_memory or default_memory_budget()
    params = config.params("jump")
    # neighbour flagging reaches one pixel; snowballs reach further: keep whole frames then
    halo = int(params.flag_4_neighbors)
    fits_products = "ramp_fit" not in config.skip
    # products held until written (5 cubes, 6 with ramp_fit.goodness_of_fit's CHI2) plus what
    # writing them costs (about 2 cubes)
    cubes = 7 + int(config.params("ramp_fit").goodness_of_fit) if fits_products else 0
    fixed = nints * ny * nx * 4 * (cubes + (1 if zeroframe else 0))
    free = budget - current_rss() - fixed
    samples = nints * ngroups * ny * nx
    if free >= BYTES_PER_SAMPLE_IN_MEMORY * samples:
        return Plan(budget, nints, ny, nx, halo, True)
    # chunks and tiles run ``threads`` at a time, so each gets its share of the budget
    threads = threads or config.threads or usable_cores()
    threads = 1 if params.expand_large_events else threads
    ints = free // (BYTES_PER_SAMPLE_PASS1 * ngroups * ny * nx)  # all chunks at once

    def tile_for(threads):  # (pixels of all tiles, halo included; a tile's rows and columns)
        per_sample = BYTES_PER_SAMPLE_PASS2 + (READ_AHEAD_BYTES if threads == 1 else 0)
        pixels = free // (per_sample * nints * ngroups)
        most_pixels = pixels if most is None else max(1, most // (nints * ngroups))
        return pixels, _tile(ny, nx, min(pixels // threads, most_pixels), halo)

    pixels, (rows, cols) = tile_for(threads)
    if threads > 1 and (rows * cols < 1024 or ints < threads):  # too small to share
        threads = 1
        pixels, (rows, cols) = tile_for(threads)
    # enough integrations per chunk to keep every thread busy, no more than its share
    ints = min(nints, ints // threads, -(-nints // threads))
    if most is not None:
        ints = min(ints, max(1, most // (ngroups * ny * nx)))
    if params.expand_large_events:
        rows, cols = (ny, nx) if pixels >= ny * nx else (0, 0)
    if ints < 1 or rows < 1:
        need = (
            current_rss()
            + fixed
            + max(
                BYTES_PER_SAMPLE_PASS1 * ngroups * ny * nx,
                BYTES_PER_SAMPLE_PASS2
                * nints
                * ngroups
                * (ny * nx if params.expand_large_events else (1 + 2 * halo) ** 2),
            )
        )
        raise ConfigError(
            f"{source}: a memory budget of {gib(budget)} is too small for a "
            f"{nints}x{ngroups}x{ny}x{nx} segment; it needs at least {gib(need)} "
            "(--max-memory)"
        )
    return Plan(budget, int(ints), rows, cols, halo, False, threads)


def tiles(plan, ny, nx):
    """Pass 2's tiles of an ``ny`` x ``nx`` frame, in order: {(r0, c0): (r1, c1, ylo, yhi,
    xlo, xhi)}, each tile's first and end row and column, and the rows and columns it is read
    with (its halo too: its window)."""
    out = {}
    for r0 in range(0, ny, plan.rows):
        for c0 in range(0, nx, plan.cols):
            r1, c1 = min(r0 + plan.rows, ny), min(c0 + plan.cols, nx)
            ylo, yhi = max(0, r0 - plan.halo), min(ny, r1 + plan.halo)
            xlo, xhi = max(0, c0 - plan.halo), min(nx, c1 + plan.halo)
            out[r0, c0] = (r1, c1, ylo, yhi, xlo, xhi)
    return out


def _tile(ny, nx, pixels, halo):
    """The tile whose pixels with the halo number <= ``pixels`` and whose halo is the least
    share of them (jump runs on the halo too: a band of 3 whole rows of a 32-row frame costs
    5 rows, a full-height tile of 320 columns 322): whole rows, whole columns or a squarish
    tile, whichever wastes least; whole rows where they tie (one read per plane)."""
    if pixels < 1:
        return 0, 0
    candidates = []
    rows = min(ny, pixels // nx - 2 * halo)  # whole rows need no halo columns
    if rows >= 1:
        candidates.append((rows, nx))
    cols = min(nx, pixels // ny - 2 * halo)  # whole columns need no halo rows
    if cols >= 1:
        candidates.append((ny, cols))
    side = int(pixels**0.5) - 2 * halo  # squarish tiles keep the halo's share small
    if side >= 1:
        rows = min(ny, side)
        cols = min(nx, pixels // (rows + 2 * halo) - 2 * halo)
        if cols >= 1:
            candidates.append((rows, cols))
    if not candidates:
        return 0, 0

    def work(tile):  # pixels jump runs on, halo included, per pixel of the tile's core
        r, c = tile
        r_halo = 0 if r == ny else 2 * halo
        c_halo = 0 if c == nx else 2 * halo
        return (r + r_halo) * (c + c_halo) / (r * c)

    rows, cols = min(candidates, key=work)  # min keeps the first (whole rows) on a tie
    return int(rows), int(cols)


def gib(n):
    """Bytes ``n`` in words, for messages: "1.50 GiB"."""
    return f"{n / 2**30:.2f} GiB"


def smaller_plan(plan, shape, config, zeroframe, threads, most=None):
    """A chunked plan with smaller chunks or tiles than ``plan`` (its budget halved until it
    has), or None where there is none."""
    budget = plan.budget
    while True:
        budget //= 2
        try:
            new = plan_chunks(
                shape, replace(config, max_memory=budget), zeroframe, threads=threads, most=most
            )
        except ConfigError:
            return None
        if not new.in_memory and (
            plan.in_memory or new.ints < plan.ints or new.rows * new.cols < plan.rows * plan.cols
        ):
            return new

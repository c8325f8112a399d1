"""Launcher of kernels/refpix_miri.cu: MIRI's reference-pixel correction on ``k``.

``correct_refpix(k, ...)`` takes the kernels object ``k`` and then the parameters of
``tsogpu.algorithms.refpix_miri.correct_refpix``, and returns what it returns, bit for bit
(NaN payloads aside on the device). The host builds the reference sets once per call from
the eight reference columns' PIXELDQ; ``tso_rpm_clipped_means`` (per plane and set) and
``tso_rpm_apply`` (per pixel) do the rest. ``tsogpu.launchers.refpix.correct_refpix`` hands
MIRI exposures here.
"""

import numpy as np

from ..algorithms import refpix_miri as np_miri
from .marshal import contiguous, to_host

# Scratch of tso_rpm_clipped_means (one float per reference value per plane); the planes are
# launched in batches that fit in it.
SCRATCH_BYTES = 64 * 2**20


def correct_refpix(k, data, pixeldq, exposure, params, zeroframe=None):
    """``tsogpu.algorithms.refpix_miri.correct_refpix`` on the device; same arguments after
    ``k``, same returns (new ``data`` and ``zeroframe`` arrays, status) and errors."""
    xp = k.xp
    new_zeroframe = None if zeroframe is None else xp.array(zeroframe, dtype=np.float32)
    if not np_miri.is_full_frame(data.shape[-2:]):
        return xp.array(data, dtype=np.float32), new_zeroframe, np_miri.SKIPPED
    nints, ngroups, ny, nx = data.shape
    nplanes = nints * ngroups
    src = contiguous(k, data, np.float32)
    out = xp.empty(data.shape, dtype=np.float32)

    # reference_sets reads only the reference columns: bring those to the host
    columns = list(range(np_miri.NAMPS)) + [np_miri.RIGHT_COLUMN + a for a in range(np_miri.NAMPS)]
    host_dq = np.zeros((ny, nx), dtype=np.uint32)
    host_dq[:, columns] = to_host(pixeldq[:, columns])
    sets = np_miri.reference_sets(host_dq, params.odd_even_rows)
    correct = all(rows.size for rows, _ in sets)
    npar = 2 if params.odd_even_rows else 1
    nsets = len(sets)
    value = xp.zeros(max(1, nplanes * nsets), dtype=np.float64)
    kind = xp.zeros(max(1, nplanes * nsets), dtype=np.int32)
    if correct:
        sizes = np.array([rows.size for rows, _ in sets], dtype=np.int64)
        set_start = xp.asarray(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))
        idx = xp.asarray(np.concatenate([rows * nx + column for rows, column in sets]))
        total = int(sizes.sum())
        batch = max(1, min(nplanes, SCRATCH_BYTES // (4 * total)))
        scratch = xp.empty(batch * total, dtype=np.float32)
        for p0 in range(0, nplanes, batch):
            nb = min(batch, nplanes - p0)
            k.launch(
                "tso_rpm_clipped_means", nb * nsets, src, np.int64(ny * nx), np.int64(ngroups),
                np.int64(p0), np.int64(nb), idx, set_start, np.int64(nsets),
                np.int64(np.getbufsize()), np.float64(params.siglimit), scratch, value, kind,
            )  # fmt: skip
    k.launch(
        "tso_rpm_apply", nplanes * ny * nx, src, out, np.int64(nplanes), np.int64(ngroups),
        np.int64(ny), np.int64(nx), value, kind, np.int64(nsets), np.int64(npar),
        np.int32(correct), np.int32(0),
    )  # fmt: skip
    if zeroframe is not None and exposure.zero_frame:
        # refpix_miri: (z - z) + z as a one-group ramp, then its 0.0 values set to 0.0
        zf = contiguous(k, zeroframe, np.float32)
        new_zeroframe = xp.empty(zf.shape, dtype=np.float32)
        k.launch(
            "tso_rpm_apply", nints * ny * nx, zf, new_zeroframe, np.int64(nints), np.int64(1),
            np.int64(ny), np.int64(nx), value, kind, np.int64(nsets), np.int64(npar),
            np.int32(0), np.int32(1),
        )  # fmt: skip
    return out, new_zeroframe, np_miri.COMPLETE

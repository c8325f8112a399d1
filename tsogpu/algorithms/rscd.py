"""rscd: DO_NOT_USE on the first groups of every integration, against the MIRI RSCD effect.

Mirrors ``jwst/rscd/rscd_sub.py`` (jwst 3.0): :func:`skip_groups` is the host side
(``get_rscd_parameters`` and the group-count rules of ``do_correction`` and
``correction_skip_groups``), :func:`flag_rscd` the arrays (``flag_rscd`` and
``apply_rscd_flags``), which ``kernels/rscd.cu`` mirrors with one thread per pixel.

Per integration and pixel: ``skip`` groups from the start get DO_NOT_USE, ``skip`` being
``skip_int1`` in the exposure's first integration and ``skip_int2p`` in the others (the
integration's index in the exposure is ``int_start + i``, so a chunk or a segment gives the
whole exposure's answer). Saturation backs it off so that two groups before saturation stay
usable: for each level, group index ``skip + 1`` down to 1, a group that is SATURATED (where
group 0 is not) lowers ``skip`` by one, to no less than 0. A pixel whose ``skip`` was lowered
in any integration gets FLUX_ESTIMATED in PIXELDQ.

One difference from jwst, by design: jwst stops lowering at the first level where no pixel of
the integrations it flags together is SATURATED, a test over all those pixels; here each pixel
runs every level. The two agree whenever SATURATED never precedes an unsaturated group in a
ramp, as the saturation step leaves GROUPDQ (it flags every group after a saturated one);
jwst's test would otherwise make a pixel's flags depend on how the integrations were split.
"""

import numpy as np

from .. import dq

_DNU8 = np.uint8(dq.DO_NOT_USE)
_SAT8 = np.uint8(dq.SATURATED)
_FLUX_ESTIMATED = np.uint32(dq.PIXEL["FLUX_ESTIMATED"])


def _columns(table):
    """Column names of a NumPy structured array, an astropy/FITS table or a dict of columns."""
    names = getattr(getattr(table, "dtype", None), "names", None)
    return tuple(names) if names is not None else tuple(table.keys())


def _text(value):
    if isinstance(value, bytes | np.bytes_):
        value = value.decode("ascii")
    return str(value).rstrip()


def table_row(table, readpatt, subarray):
    """``get_rscd_parameters``: (group_skip1, group_skip) of the RSCD_GROUP_SKIP row of this
    READPATT and SUBARRAY (SUBPRISM read as SLITLESSPRISM), or None when there is none.

    A table without ``group_skip1`` (files older than stdatamodels PR 638) gives -1 there, as
    RSCDModel fills it in. Text columns may be str or bytes; trailing blanks are ignored, as
    astropy reads FITS text.
    """
    if subarray.upper() == "SUBPRISM":
        subarray = "SLITLESSPRISM"
    names = _columns(table)
    subarrays, readpatts = table["subarray"], table["readpatt"]
    skips = table["group_skip"]
    skips1 = table["group_skip1"] if "group_skip1" in names else np.full(len(skips), -1)
    for row in range(len(skips)):
        if _text(subarrays[row]) == subarray and _text(readpatts[row]) == readpatt:
            return int(skips1[row]), int(skips[row])
    return None


def skip_groups(table, exposure, skip_int1=None, skip_int2p=None):
    """Groups to flag in the first integration and in the others, or None (SKIPPED).

    ``skip_int1`` / ``skip_int2p`` (options ``rscd.skip_int1`` / ``rscd.skip_int2p``, None:
    the table's) replace the table's numbers before jwst's rules apply.

    jwst's rules: no row for (READPATT, SUBARRAY), or NGROUPS < 3 -> None (the step is
    SKIPPED); a negative ``group_skip1`` (an old file) -> 1; NGROUPS <= 5 -> 1 and 1; then
    each is lowered to ``max(0, NGROUPS - 3)`` where NGROUPS < skip + 3 (jwst lowers
    ``skip_int2p`` only when NINTS > 1, where it is used at all). Otherwise the step is
    COMPLETE, also where both are 0.

    Parameters
    ----------
    table : the RSCD_GROUP_SKIP table (``RSCDModel.rscd_group_skip_table``): a NumPy
        structured array (or a dict of columns) with ``subarray``, ``readpatt``,
        ``group_skip1`` (optional) and ``group_skip``
    exposure : an object with ``readpatt``, ``subarray``, ``ngroups``, ``nints``
        (``tsogpu.segment.Exposure``)

    Returns
    -------
    (skip_int1, skip_int2p) : tuple of int, or None
    """
    row = table_row(table, exposure.readpatt, exposure.subarray)
    if row is None:
        return None
    skip1, skip2p = row
    skip1 = skip1 if skip_int1 is None else skip_int1
    skip2p = skip2p if skip_int2p is None else skip_int2p
    if skip1 < 0:
        skip1 = 1
    ngroups = int(exposure.ngroups)
    if ngroups < 3:
        return None
    if ngroups <= 5:
        skip1 = skip2p = 1
    if ngroups < skip1 + 3:
        skip1 = max(0, ngroups - 3)
    if ngroups < skip2p + 3:
        skip2p = max(0, ngroups - 3)
    return skip1, skip2p


def check_skips(ngroups, nints, skip_int1, skip_int2p, int_start):
    """Raise ValueError unless each skip that :func:`flag_rscd` uses on these integrations
    is >= 0 and leaves group ``skip + 1`` to test (``skip + 2 <= ngroups`` where skip > 0)."""
    for i in range(min(int(nints), 2)):  # the first integration's skip, then the rest's
        skip = int(skip_int1 if int(int_start) + i == 0 else skip_int2p)
        if skip < 0 or (skip > 0 and skip + 2 > ngroups):
            raise ValueError(
                f"rscd: {skip} groups to skip needs {skip + 2} groups or more, got {ngroups}"
            )


def flag_rscd(groupdq, pixeldq, skip_int1, skip_int2p, int_start):
    """Flag the RSCD groups (see the module docstring).

    Parameters
    ----------
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, (ny, nx)
    skip_int1, skip_int2p : int
        From :func:`skip_groups`.
    int_start : int
        0-based index in the whole exposure of ``groupdq[0]``.

    Returns
    -------
    groupdq : ndarray of uint8, same shape, a new array
    pixeldq : ndarray of uint32, (ny, nx), a new array

    Raises
    ------
    ValueError
        A skip used here is negative or leaves no group ``skip + 1`` to test.
    """
    nints, ngroups = groupdq.shape[:2]
    check_skips(ngroups, nints, skip_int1, skip_int2p, int_start)
    out = groupdq.copy()
    backed_off = np.zeros(pixeldq.shape, dtype=bool)
    for i in range(nints):  # one thread per pixel walks its integrations
        skip0 = int(skip_int1 if int(int_start) + i == 0 else skip_int2p)
        skip = np.full(pixeldq.shape, skip0, dtype=np.int64)
        if skip0 > 0:
            sat0 = (groupdq[i, 0] & _SAT8) != 0
            for g in range(skip0 + 1, 0, -1):  # jwst's min_group - 1, down to group 1
                problem = ((groupdq[i, g] & _SAT8) != 0) & ~sat0
                skip = np.where(problem, np.maximum(skip - 1, 0), skip)
            backed_off |= skip < skip0
        for g in range(ngroups):
            out[i, g] = groupdq[i, g] | np.where(g < skip, _DNU8, np.uint8(0))
    new_pixeldq = pixeldq.copy()
    new_pixeldq[backed_off] |= _FLUX_ESTIMATED
    return out, new_pixeldq

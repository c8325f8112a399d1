"""The exposure clock: when the simulated exposure starts and its INT_TIMES table."""

import datetime as _dt

import numpy as np

MJD_UNIX0 = 40587.0  # MJD of 1970-01-01
TDB_MINUS_UTC = 69.184 / 86400.0  # days (TT-UTC after 2017); TDB-TT neglected
BARY_OFFSET = 0.00312  # days: a constant, made-up light-travel correction for BJD
EXP_START_MJD = 60140.0 + 10.0 / 24.0  # 2023-07-15 10:00:00 UTC, start of every exposure

INT_TIMES_DTYPE = [
    ("integration_number", ">i4"),
    ("int_start_MJD_UTC", ">f8"),
    ("int_mid_MJD_UTC", ">f8"),
    ("int_end_MJD_UTC", ">f8"),
    ("int_start_BJD_TDB", ">f8"),
    ("int_mid_BJD_TDB", ">f8"),
    ("int_end_BJD_TDB", ">f8"),
]


def mjd_to_datetime(mjd):
    """A UTC MJD as a naive ``datetime.datetime``."""
    return _dt.datetime(1970, 1, 1) + _dt.timedelta(days=float(mjd) - MJD_UNIX0)


def int_times_table(intstart, nints, cycle, duration):
    """INT_TIMES rows of this segment; MJD (UTC) and a made-up BJD (TDB), float64."""
    start = EXP_START_MJD + (intstart - 1 + np.arange(nints)) * cycle / 86400.0
    end = start + duration / 86400.0
    mid = 0.5 * (start + end)
    table = np.zeros(nints, dtype=INT_TIMES_DTYPE)
    table["integration_number"] = intstart + np.arange(nints)
    table["int_start_MJD_UTC"], table["int_mid_MJD_UTC"], table["int_end_MJD_UTC"] = start, mid, end
    bjd = 2400000.5 + TDB_MINUS_UTC + BARY_OFFSET
    table["int_start_BJD_TDB"] = start + bjd
    table["int_mid_BJD_TDB"] = mid + bjd
    table["int_end_BJD_TDB"] = end + bjd
    return table

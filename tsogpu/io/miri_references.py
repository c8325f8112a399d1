"""MIRI reference files that are not plain image layouts: RSCD (a table), EMICORR (ASDF), and
the keyword checks of RESET.

:mod:`tsogpu.io.reffiles` opens the FITS files and calls these; what each returns is what the
jwst 3.0 step reads from the stdatamodels model, as plain NumPy arrays and dicts:

- ``rscd`` (``RSCDModel``, extension RSCD_GROUP_SKIP): the whole table, and the row
  ``jwst.rscd.rscd_sub.get_rscd_parameters`` picks for the science READPATT and SUBARRAY;
- ``emicorr`` (``EmiModel``, an ASDF file): the subarray case
  ``jwst.emicorr.emicorr.get_subarcase`` picks (row and frame clocks, the frequencies to
  correct) and each of those frequencies with its phase amplitudes (``get_frequency_info``);
- ``reset`` (``ResetModel``): NINTS and NGROUPS, which ``reset_sub.do_correction`` reads.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ReferenceFileError

# Reference types read here rather than through an image layout.
TYPES = frozenset({"rscd", "emicorr"})

RSCD_EXTENSION = "RSCD_GROUP_SKIP"
RSCD_COLUMNS = ("subarray", "readpatt", "group_skip1", "group_skip")
RSCD_DTYPE = [("subarray", "U17"), ("readpatt", "U12"), ("group_skip1", "i4"), ("group_skip", "i4")]
RESET_KEYWORDS = ("NINTS", "NGROUPS")


# ---------------------------------------------------------------------------------------------
# RSCD


def read_rscd(hdul, where, exposure):
    """The RSCD_GROUP_SKIP table, checked; the row of an exposure is picked by the step
    (``tsogpu.algorithms.rscd.table_row``, jwst's ``get_rscd_parameters``).

    Returns
    -------
    arrays : dict
        Empty: the table stays on the host (``param``), whatever the backend.
    param : dict
        ``table``: structured ndarray with fields ``subarray``, ``readpatt`` (str),
        ``group_skip1`` (int32, integration 1) and ``group_skip`` (int32, integrations 2+),
        one row per readout pattern and subarray, in the file's order.
    """
    if RSCD_EXTENSION not in hdul or hdul[RSCD_EXTENSION].data is None:
        raise ReferenceFileError(
            f"{where}: missing the {RSCD_EXTENSION} table "
            f"(extensions present: {', '.join(h.name for h in hdul)})"
        )
    data = hdul[RSCD_EXTENSION].data
    names = {n.lower(): n for n in getattr(data, "names", None) or ()}
    missing = [c for c in RSCD_COLUMNS if c not in names]
    if missing:
        raise ReferenceFileError(
            f"{where}: table {RSCD_EXTENSION} lacks column(s) {', '.join(missing)} "
            f"(columns: {', '.join(names.values())})"
        )
    table = np.zeros(len(data), dtype=RSCD_DTYPE)
    for column in RSCD_COLUMNS:
        values = np.asarray(data[names[column]])
        if column.startswith("group_skip"):
            if values.dtype.kind not in "iu":
                raise ReferenceFileError(
                    f"{where}: column {column} of {RSCD_EXTENSION} holds {values.dtype}, "
                    "expected integers (groups to skip)"
                )
            table[column] = values
        else:
            table[column] = [_text(v).rstrip() for v in values]
    return {}, {"table": table}


def _text(value):
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------------------------------------
# RESET


def check_reset(header, arrays, where):
    """NINTS and NGROUPS must be present and within SCI; the arrays come back cut to them.

    jwst's ``reset_sub`` corrects the first ``min(NGROUPS, science ngroups)`` groups of each
    integration with integration ``min(i, NINTS - 1)`` of the reference, and replaces NaN by
    zero first; ``data`` here is ``SCI[:NINTS, :NGROUPS]`` with NaN already zero, so its shape
    is what the step needs (``err`` is cut the same way).
    """
    missing = [k for k in RESET_KEYWORDS if k not in header]
    if missing:
        raise ReferenceFileError(
            f"{where}: missing primary-header keyword(s) {', '.join(missing)} "
            "(jwst reset needs the integrations and groups the correction covers)"
        )
    shape = arrays["data"].shape
    counts = []
    for key, size, what in zip(RESET_KEYWORDS, shape[:2], ("integrations", "groups"), strict=True):
        value = header[key]
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ReferenceFileError(f"{where}: {key} must be an integer >= 1, got {value!r}")
        if value > size:
            raise ReferenceFileError(
                f"{where}: {key}={value} but SCI {shape} holds only {size} {what}"
            )
        counts.append(int(value))
    nints, ngroups = counts
    out = dict(arrays)
    data = np.array(arrays["data"][:nints, :ngroups], dtype=np.float32)
    data[np.isnan(data)] = np.float32(0.0)
    out["data"] = data
    if "err" in arrays:
        out["err"] = np.array(arrays["err"][:nints, :ngroups], dtype=np.float32)
    return out


# ---------------------------------------------------------------------------------------------
# EMICORR


def read_emicorr(path, where, exposure):
    """Read an EMICORR ASDF file: ``(header, arrays, param)``.

    Returns
    -------
    header : dict
        REFTYPE, INSTRUME, DETECTOR, PEDIGREE, USEAFTER from the file's ``meta``, where given.
    arrays : dict of str to ndarray
        For each frequency to correct (``param["frequency_names"]``): its phase amplitudes,
        1-D, as stored (one period of the reference waveform).
    param : dict
        ``subname`` (SUBARRAY, plus ``_FAST``/``_SLOW`` for a FULL subarray), ``rowclocks``
        and ``frameclocks`` (int, 10 us clocks), ``frequency_names`` (tuple of str) and
        ``frequencies`` (tuple of float, Hz), as ``get_subarcase`` and ``get_frequency_info``
        give them. Without a subarray case for the exposure (or a READPATT with neither FAST
        nor SLOW) the clocks are None and the tuples empty: jwst then skips the step.
    """
    try:
        import asdf
    except ImportError as exc:
        raise ReferenceFileError(f"{where}: reading ASDF needs the asdf package ({exc})") from None
    try:
        with asdf.open(path, lazy_load=False, memmap=False) as af:
            tree = _plain(af.tree)
    except Exception as exc:  # asdf raises ValueError, OSError, yaml errors, ...
        text = str(exc).strip().splitlines()
        reason = text[0] if text else type(exc).__name__
        raise ReferenceFileError(f"{where}: not a readable ASDF file ({reason})") from None
    meta = tree.get("meta") if isinstance(tree.get("meta"), dict) else {}
    instrument = meta.get("instrument") if isinstance(meta.get("instrument"), dict) else {}
    header = {
        key: value
        for key, value in (
            ("REFTYPE", meta.get("reftype")),
            ("INSTRUME", instrument.get("name")),
            ("DETECTOR", instrument.get("detector")),
            ("PEDIGREE", meta.get("pedigree")),
            ("USEAFTER", meta.get("useafter")),
        )
        if isinstance(value, str) and value.strip()
    }
    for key in ("frequencies", "subarray_cases"):
        if not isinstance(tree.get(key), dict):
            raise ReferenceFileError(
                f"{where}: no {key!r} mapping in the ASDF tree (an EmiModel file has "
                f"'frequencies' and 'subarray_cases'; keys present: {', '.join(map(str, tree))})"
            )
    param = emicorr_case(tree["subarray_cases"], exposure, where)
    arrays, freqs = {}, []
    for name in param["frequency_names"]:
        frequency, amplitudes = _frequency(tree["frequencies"], name, where)
        freqs.append(frequency)
        arrays[name] = amplitudes
    param["frequencies"] = tuple(freqs)
    return header, arrays, param


def emicorr_case(cases, exposure, where="emicorr"):
    """``get_subarcase``: subarray name, clocks and frequency names for ``exposure``."""
    param = {"subname": None, "rowclocks": None, "frameclocks": None, "frequency_names": ()}
    readpatt = exposure.readpatt.upper()
    speed = "SLOW" if "SLOW" in readpatt else "FAST" if "FAST" in readpatt else None
    if speed is None:
        return param
    subname = f"{exposure.subarray}_{speed}" if "FULL" in exposure.subarray else exposure.subarray
    param["subname"] = subname
    case = cases.get(subname)
    if not isinstance(case, dict):
        return param
    freqs = case.get("freqs")
    names = freqs.get(speed) if isinstance(freqs, dict) else None
    if speed == "SLOW":
        names = names.get(exposure.detector) if isinstance(names, dict) else None
    if names is None or "rowclocks" not in case or "frameclocks" not in case:
        return param  # jwst: an AttributeError, taken as no match
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ReferenceFileError(
            f"{where}: subarray case {subname} lists frequencies {names!r}, expected a list "
            "of frequency names"
        )
    for key in ("rowclocks", "frameclocks"):
        if not isinstance(case[key], numbers.Integral) or case[key] < 0:
            raise ReferenceFileError(
                f"{where}: subarray case {subname} has {key}={case[key]!r}, expected an "
                "integer number of clocks"
            )
        param[key] = int(case[key])
    param["frequency_names"] = tuple(names)
    return param


def _frequency(frequencies, name, where):
    entry = frequencies.get(name)
    if not isinstance(entry, dict) or "frequency" not in entry or "phase_amplitudes" not in entry:
        raise ReferenceFileError(
            f"{where}: frequency {name!r} is named by the subarray case but 'frequencies' "
            "has no such entry with 'frequency' and 'phase_amplitudes'"
        )
    frequency = entry["frequency"]
    if not isinstance(frequency, numbers.Real) or not frequency > 0:
        raise ReferenceFileError(
            f"{where}: frequency {name!r} is {frequency!r}, expected a positive number (Hz)"
        )
    amplitudes = np.asarray(entry["phase_amplitudes"])
    if amplitudes.ndim != 1 or amplitudes.size < 2 or amplitudes.dtype.kind not in "fiu":
        raise ReferenceFileError(
            f"{where}: phase_amplitudes of {name!r} are {amplitudes.dtype} {amplitudes.shape}, "
            "expected a 1-D numeric array (one period of the waveform)"
        )
    return float(frequency), amplitudes.copy()


def _plain(node):
    """The ASDF tree as dicts, lists, scalars and NumPy arrays (copies, the file closed)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    if hasattr(node, "__array__") and not isinstance(node, (str, bytes, numbers.Number)):
        return np.array(node)
    return node

"""The kernel sources as compiled: includes inlined, a ``#define``-only preamble, fixed options.

Pure Python (no CuPy), so the test suite and provenance can use it without a GPU.
"""

import hashlib
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .. import dq

# NVRTC options: no fused multiply-add, IEEE division and square root, so every float operation
# rounds as NumPy's does.
OPTIONS = ("--fmad=false", "--prec-div=true", "--prec-sqrt=true", "-std=c++17")

# The order of the DQ values in a kernel's ``dqv`` argument (enum TsoDq in kernels/common.cuh).
DQ_ORDER = (
    "DO_NOT_USE",
    "SATURATED",
    "JUMP_DET",
    "DROPOUT",
    "PERSISTENCE",
    "AD_FLOOR",
    "CHARGELOSS",
    "NO_GAIN_VALUE",
    "NO_LIN_CORR",
    "NO_SAT_CHECK",
    "UNRELIABLE_BIAS",
    "UNRELIABLE_DARK",
    "REFERENCE_PIXEL",
    "FLUX_ESTIMATED",
)

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)


def kernel_dir():
    """The folder of the ``.cu``/``.cuh`` files: inside the installed package, else the repo's."""
    try:
        packaged = resources.files("tsogpu") / "kernels"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[2] / "kernels"


def kernel_files(folder=None):
    """Every kernel file (``*.cu``), sorted by name."""
    return sorted((folder or kernel_dir()).glob("*.cu"))


def dq_values():
    """The ``dqv`` kernel argument: uint32 DQ values in ``DQ_ORDER``, from ``tsogpu.dq``."""
    return np.array([dq.PIXEL[name] for name in DQ_ORDER], dtype=np.uint32)


def inline_includes(path, seen=None):
    """``path``'s text with each local ``#include "x"`` replaced by x's text, once per file
    (as ``#pragma once`` would), so that a hash of the result covers every byte compiled."""
    path = Path(path)
    seen = set() if seen is None else seen
    out = []
    pos = 0
    text = path.read_text()
    for m in _INCLUDE.finditer(text):
        out.append(text[pos : m.start()])
        target = (path.parent / m.group(1)).resolve()
        if not target.exists():
            raise FileNotFoundError(f'{path}: #include "{m.group(1)}" not found')
        if target not in seen:
            seen.add(target)
            out.append(f"// ---- {m.group(1)}\n" + inline_includes(target, seen) + "\n")
        pos = m.end()
    out.append(text[pos:])
    return "".join(out).replace("#pragma once\n", "")


def preamble(defines=None):
    """``#define`` lines only (``defines``: name -> int or float)."""
    lines = []
    for name, value in sorted((defines or {}).items()):
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise ValueError(f"bad preamble name {name!r}")
        lines.append(f"#define {name} {value!r}")
    return "\n".join(lines) + "\n" if lines else ""


@lru_cache(maxsize=8)
def module_source(defines=()):
    """The single translation unit of every kernel file, with the preamble first.

    ``defines`` is a tuple of (name, value) pairs (hashable for the cache).
    """
    seen = set()
    parts = [preamble(dict(defines))]
    for path in kernel_files():
        parts.append(f"// ==== {path.name}\n" + inline_includes(path, seen))
    return "\n".join(parts)


def source_hash(defines=()):
    """SHA-256 (first 16 hex digits) of what is compiled: source and options."""
    h = hashlib.sha256(module_source(tuple(defines)).encode())
    h.update("\0".join(OPTIONS).encode())
    return h.hexdigest()[:16]

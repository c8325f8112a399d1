"""The kernel build: sources as compiled, DQ values as arguments, host and device builds."""

import re

import numpy as np
import pytest

from tsogpu import dq
from tsogpu.launchers import sources


def test_dq_order_matches_the_kernel_enum():
    text = (sources.kernel_dir() / "common.cuh").read_text()
    body = re.search(r"enum TsoDq \{(.*?)\};", text, re.S).group(1)
    names = [m.group(1) for m in re.finditer(r"DQ_([A-Z_]+)", body)]
    assert names[-1] == "COUNT"
    assert tuple(names[:-1]) == sources.DQ_ORDER
    values = sources.dq_values()
    assert values.dtype == np.uint32
    assert [int(v) for v in values] == [dq.PIXEL[n] for n in sources.DQ_ORDER]


def test_includes_are_inlined_once_and_the_hash_covers_them(tmp_path):
    (tmp_path / "a.cuh").write_text('#pragma once\n#include "b.cuh"\nint a;\n')
    (tmp_path / "b.cuh").write_text("#pragma once\nint b;\n")
    (tmp_path / "k.cu").write_text('#include "a.cuh"\n#include "b.cuh"\nint k;\n')
    text = sources.inline_includes(tmp_path / "k.cu")
    assert text.count("int b;") == 1 and "#include" not in text and "#pragma once" not in text
    assert text.index("int b;") < text.index("int a;") < text.index("int k;")
    (tmp_path / "m.cu").write_text('#include "missing.cuh"\n')
    with pytest.raises(FileNotFoundError, match="missing.cuh"):
        sources.inline_includes(tmp_path / "m.cu")


def test_module_source_and_hash():
    src = sources.module_source()
    assert '#include "' not in src  # local includes inlined (host-only <math.h> stays)
    for path in sources.kernel_files():
        assert f"// ==== {path.name}" in src
    assert src.count("enum TsoDq") == 1
    h = sources.source_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    assert sources.source_hash((("TSO_TEST", 1),)) != h
    assert sources.preamble({"TSO_A": 2, "TSO_B": 0.5}) == "#define TSO_A 2\n#define TSO_B 0.5\n"
    with pytest.raises(ValueError):
        sources.preamble({"bad name": 1})


def test_u16_to_f32(kernels):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 65536, 100_003, dtype=np.uint16)
    raw[:3] = (0, 65535, 32768)
    out = kernels.put(np.full(raw.size, np.nan, np.float32))
    kernels.launch("tso_u16_to_f32", raw.size, kernels.put(raw), out, np.int64(raw.size))
    np.testing.assert_array_equal(kernels.get(out), raw.astype(np.float32))


def test_be16_to_f32_equals_the_numpy_conversion(kernels):
    """The file's big-endian int16 (BZERO=32768) to float32: all 65536 values, bit for bit as
    the NumPy backend's ramps_to_float32, and the counts astropy reads."""
    from tsogpu.segment import FILE_COUNTS, ramps_to_float32

    counts = np.random.default_rng(1).permutation(65536).astype(np.int32)
    stored = (counts - 32768).astype(FILE_COUNTS)
    raw = stored.view(np.uint16)  # the bytes as read, unswapped
    out = kernels.put(np.full(raw.size, np.nan, np.float32))
    kernels.launch("tso_be16_to_f32", raw.size, kernels.put(raw), out, np.int64(raw.size))
    got = kernels.get(out)
    assert got.tobytes() == ramps_to_float32(stored).tobytes()
    assert got.tobytes() == counts.astype(np.float32).tobytes()


def test_the_module_compiles_with_nvcc_as_one_unit(tmp_path):
    """What NVRTC compiles: every kernel file in one translation unit (names must not clash)."""
    import os
    import shutil
    import subprocess

    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("no nvcc")
    src = tmp_path / "module.cu"
    src.write_text(sources.module_source())
    flags = [*sources.OPTIONS, "-arch=sm_90", "-Werror", "all-warnings"]
    res = subprocess.run(
        [nvcc, *flags, "-c", str(src), "-o", os.devnull], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]

"""The products do not change by a bit: every case of product_digests.py, on every backend
present, writes the extensions recorded in product_digests.json (made before the refactor of
issue 13 and kept since). A change that means to change the products records them anew
(``python tests/product_digests.py --write``) and says why in its commit."""

import json

import pytest
from product_digests import CASES, DIGESTS, run_case


def _backends():
    from tsogpu.launchers import cuda_build

    gpu = pytest.mark.skipif(not cuda_build.available()[0], reason="no usable GPU")
    return ["numpy", "native", pytest.param("cupy", marks=[pytest.mark.gpu, gpu])]


@pytest.mark.slow
@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("case", sorted(CASES))
def test_products_unchanged(case, backend, tmp_path):
    expected = json.loads(DIGESTS.read_text())[case]
    assert run_case(case, backend, tmp_path) == expected

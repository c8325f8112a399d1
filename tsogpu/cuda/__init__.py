"""The CUDA backend: kernels in ``kernels/*.cu`` compiled with CuPy, launched on whole segments.

Nothing here imports CuPy at import time; ``sources`` is pure Python (also used by the host
build of the kernels in the test suite).
"""

"""The kernels on any device: argument marshalling and launches, no math.

One launcher module per step (named as in ``tsogpu.algorithms``), each function with the
signature of the NumPy function it mirrors plus a leading ``k``, the kernels of one build:
CuPy on a GPU (``cuda_build.DeviceKernels``) or the host build of the same sources on a CPU
(``host_build.NativeKernels``). ``sources`` makes the translation unit both compile.

Nothing here imports CuPy at import time.
"""

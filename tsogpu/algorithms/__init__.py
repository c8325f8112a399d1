"""Array implementations of the Stage-1 steps: NumPy only, one module per step.

Each module is the specification that the matching CUDA kernel mirrors line for line.
"""

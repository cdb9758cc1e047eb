"""Makes every Python process started with this folder on PYTHONPATH see the emulated GPUs
of ``cuda_emulation`` (EMULATED_CUDA_DEVICES of them): subprocesses, pytester runs and
xdist workers included, as on a machine with GPUs. See ``tests/test_emulated_gpu.py``."""

import os
import sys

if os.environ.get("EMULATED_CUDA_DEVICES"):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import cuda_emulation

    cuda_emulation.install_for_process()

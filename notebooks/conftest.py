"""Under `make test` the notebooks run in quick mode: long cells (training, sweeps) do a few
steps instead of minutes. Cells whose output nbval checks do not depend on this switch."""

import os

os.environ["RETINA_EDU_QUICK"] = "1"

# One thread per kernel: the checked numbers then do not depend on the core count, and
# several processes sharing a small machine do not stall each other's OpenMP threads.
os.environ["OMP_NUM_THREADS"] = "1"

# The stored outputs are the CPU's (retina_edu.device.DEVICE_ENV): on a machine with a GPU the
# notebooks would pick it (default_device()), and their numbers would differ in the last digits.
os.environ["RETINA_EDU_DEVICE"] = "cpu"

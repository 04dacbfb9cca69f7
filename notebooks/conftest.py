"""Under `make test` the notebooks run in quick mode: long cells (training, sweeps) do a few
steps instead of minutes. Cells whose output nbval checks do not depend on this switch."""

import os

os.environ["RETINA_EDU_QUICK"] = "1"

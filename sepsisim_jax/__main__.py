"""``python -m sepsisim_jax``: the command line."""

import sys

from sepsisim_jax.cli import main

sys.exit(main())

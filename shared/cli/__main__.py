"""Run certrenew as `python -m shared.cli`."""

import sys

from shared.cli import main

sys.exit(main())

"""`python -m relaunch.cli`: the console script."""

import sys

from relaunch.cli import main

sys.exit(main())

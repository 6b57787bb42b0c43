"""`python -m relaunch` is the `relaunch` command."""

import sys

from relaunch.cli import main

sys.exit(main())

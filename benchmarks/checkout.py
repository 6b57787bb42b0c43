"""Which relaunch a benchmark measures: `--src PATH` (or RELAUNCH_SRC), else this repository's `src`.

Imported first by each benchmark script (they run as scripts, so this folder is on sys.path), before anything of
relaunch: the chosen `src` goes first on sys.path, and on PYTHONPATH for the processes the benchmark starts (functions,
agent, CLI), so an older checkout is measured whole with today's script (A/B, interleaved, in one sitting).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chosen_src(argv: list[str]) -> Path:
    """The `src` directory to import relaunch from: --src, then RELAUNCH_SRC, then this repository's."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--src", default=os.environ.get("RELAUNCH_SRC") or str(ROOT / "src"))
    return Path(early.parse_known_args(argv)[0].src).resolve()


SRC = chosen_src(sys.argv[1:])
sys.path.insert(0, str(SRC))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
# The spec and example project come with the checkout measured, when it has them.
CHECKOUT = SRC.parent if (SRC.parent / "pipelines" / "digits.yaml").is_file() else ROOT

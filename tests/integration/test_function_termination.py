"""A stack's functions are stopped together: every process group gets SIGTERM before any is waited for.

Seen: `EmbeddedStack.stop` took 3.4 s, the sum of eight gunicorn shutdowns one after another (each test's teardown,
each `relaunch up` Ctrl-C). Each process here exits 0 on SIGTERM only once every one of them has received SIGTERM
(each marks it in a shared folder, then waits for the others' marks): stopped one by one, the first never sees the
others' marks and ends by SIGKILL; stopped together, all exit 0.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from relaunch.adapters.local.stack import terminate

WAITS_FOR_ALL = """
import os, signal, sys, time
from pathlib import Path
folder, me, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def on_term(*_):
    (folder / me).touch()
    deadline = time.monotonic() + 30
    while len(list(folder.iterdir())) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    sys.exit(0 if len(list(folder.iterdir())) == count else 3)
signal.signal(signal.SIGTERM, on_term)
(folder.parent / f"ready-{me}").touch()
while True:
    time.sleep(0.1)
"""


def test_every_function_gets_sigterm_before_any_is_waited_for(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    procs = [
        subprocess.Popen([sys.executable, "-c", WAITS_FOR_ALL, str(marks), str(n), "3"], start_new_session=True)
        for n in range(3)
    ]
    while len(list(tmp_path.glob("ready-*"))) < 3:
        assert all(p.poll() is None for p in procs)
    terminate(*procs)
    assert [p.returncode for p in procs] == [0, 0, 0]  # one by one: the first is SIGKILLed (-9)

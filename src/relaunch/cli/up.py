"""`relaunch up`: the embedded stack in the foreground, telling its story as it happens.

After the banner, one line per delivery and per state change of a run (domain/story.py decides what is new), read
from the stack's store about twice a second through its primary keys. The stack's own log lines (bus dispatcher,
completion relay) go to logs/stack.log, so the terminal shows the story and nothing else.
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from relaunch import bootstrap, logs  # module attributes: tests stand in for the stack and the log setup here
from relaunch.cli.running import secret_file
from relaunch.cli.secret_env import without_secrets_in_environment
from relaunch.settings import PORT_ORDER, Settings, secret_fields, secret_values

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from relaunch.domain.story import Cursor, StorySource

POLL_S = 0.5


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `up`; its help lists every setting it reads, with its default."""
    up = sub.add_parser(
        "up",
        help="run the embedded stack in the foreground",
        description="Run every function, the bus, the training agent and the endpoint on loopback, and print\n"
        "each delivery and each run's state change as it happens (logs: RELAUNCH_HOME/logs). Ctrl-C stops.",
        epilog=settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument(
        "--port-base",
        type=port_base,
        metavar="N",
        help="fixed ports: the functions listen on N, N+1, ... then the endpoint and the dashboard (RELAUNCH_PORT_BASE;"
        " the order is that of the RELAUNCH_PORT_* settings below); without it the OS picks free ports at each start",
    )
    up.set_defaults(func=cmd_up)


def port_base(value: str) -> int:
    """A first port that leaves room for every server of the stack above it."""
    highest = 65535 - len(PORT_ORDER) + 1
    if not value.isdigit() or not 1 <= int(value) <= highest:
        raise argparse.ArgumentTypeError(f"{value[:20]!r} is not a port from 1 to {highest}")
    return int(value)


def settings_epilog() -> str:
    """`RELAUNCH_NAME (default): description` for every field of Settings, in its declared order."""
    lines = ["settings (environment variables, read at start):"]
    for name, info in Settings.model_fields.items():
        lines.append(f"  RELAUNCH_{name.upper()} ({_default(name, info)})")
        lines.append(f"      {info.description or ''}")
    return "\n".join(lines)


def _default(name: str, info: FieldInfo) -> str:
    if name in secret_fields():
        return "secret, unset"
    if info.default is None:
        return "unset"
    return f"default {info.default}"


def cmd_up(args: argparse.Namespace) -> int:
    """Start the embedded stack, print its story until Ctrl-C (or SIGTERM), then stop everything it started."""
    from relaunch.domain.model import FunctionName

    signal.signal(signal.SIGTERM, _interrupt)  # before anything starts, so a SIGTERM always stops what started
    without_secrets_in_environment(args)
    settings = bootstrap.with_local_secrets(Settings())
    if args.port_base is not None:
        settings = settings.model_copy(update={"port_base": args.port_base})
    settings.logs_dir.mkdir(parents=True, exist_ok=True)  # 0700, like the whole home: the umask is set above
    logs.configure(structured=False, secrets=secret_values(settings).values(), path=settings.logs_dir / "stack.log")
    stack = bootstrap.embedded_stack(settings, functions=(*(name.value for name in FunctionName), "dashboard"))
    feed = bootstrap.App(settings).story_feed()  # the story starts before the stack: a push sent the moment it is up
    start = feed.head() if feed is not None else None  # (stack.json written) is news, not history
    try:
        stack.start()
        _banner(stack.settings, stack.urls)
        follow(feed, print, start=start)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


def _banner(settings: Settings, urls: dict[str, str]) -> None:
    from relaunch.config_files import load_specs  # noqa: PLC0415
    from relaunch.doctor import startup_warnings  # noqa: PLC0415

    print(f"relaunch embedded stack, state in {settings.home}")
    for name, url in urls.items():
        print(f"  {name:16} {url}")
    print(f"  webhook secret   in {secret_file(settings)}")
    if "dashboard" in urls:
        print(
            f"  dashboard token  in {settings.secrets_dir / 'dashboard_token'} (actions need it; reads are open here)"
        )
    print(f"  logs             in {settings.logs_dir} (grep run=RUN_ID)")
    for line in startup_warnings(settings, load_specs(settings.pipelines_dir)):
        print(line)
    print("Ctrl-C stops.", flush=True)


def follow(
    feed: StorySource | None,
    say: Callable[..., None],
    stopped: Callable[[], bool] = lambda: False,
    start: Cursor | None = None,
) -> None:
    """Print the story of `feed` after `start` (by default from now on) until `stopped()`: each delivery and each state
    change, one line each.

    Without a feed (only the embedded SQLite store has one) the terminal stays quiet, saying so once.
    """
    from relaunch.domain.story import news

    if feed is None:
        say("(this store is not followed here: `relaunch runs` and `relaunch inbox` show what happened)", flush=True)
        while not stopped():
            time.sleep(POLL_S)
        return
    cursor = start if start is not None else feed.head()
    while not stopped():
        lines, cursor = news(cursor, *feed.after(cursor))
        for line in lines:
            say(line, flush=True)
        time.sleep(POLL_S)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt

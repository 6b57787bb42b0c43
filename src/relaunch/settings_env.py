"""Where Settings' values come from: what a caller gave, then RELAUNCH_* variables, then secrets handed over in memory.

This is what pydantic-settings did for relaunch, without importing it: its sources (dotenv, the CLI parser, the cloud
secret managers) cost about 30 ms of every function's cold start and every CLI call, for none of which relaunch uses.
Its semantics are kept: a variable's name matches its field case-insensitively (RELAUNCH_HOME, relaunch_home), its
value reaches pydantic as the string it is (empty included: RELAUNCH_PORT_BASE= is refused, not ignored), and
pydantic's lax mode parses it. That is exact because every field is a scalar (tests/unit/test_settings_env.py holds
it so); a list or a model field would need its variable JSON-decoded first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PREFIX = "relaunch_"


def environment_values(fields: Iterable[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The fields set by `environ`'s RELAUNCH_<FIELD> variables (any case), by field name."""
    wanted = {f"{PREFIX}{name}": name for name in fields}
    return {wanted[key.lower()]: value for key, value in environ.items() if key.lower() in wanted}


def merged(given: Mapping[str, Any], environment: Mapping[str, str], handed: Mapping[str, str]) -> dict[str, Any]:
    """One input for the model: what the caller gave wins over the environment, which wins over handed secrets."""
    return {**handed, **environment, **given}

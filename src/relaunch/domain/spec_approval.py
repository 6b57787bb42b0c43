"""The gate's approval rule (`gate.approval`, `gate.approval_timeout`): whether a passed run waits for a person.

A base of GatePolicy, kept apart so the rule can be reused where promotion needs one (per environment).
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_DURATION = re.compile(r"\A(\d{1,7}(?:\.\d{1,3})?)([smhd])\Z")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_TIMEOUT_S = 365 * 86400.0  # a wait longer than a year is a typo, not a policy


class ApprovalRule(BaseModel):
    """Whether a run that passed the gate waits in awaiting_approval, and how long an approval may take."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    approval: Literal["none", "required"] = Field(
        default="none",
        description="required: a run that passed the gate waits for `relaunch approve`, or the label "
        "relaunch:approve on its pull request by someone with write permission, before it rolls out",
    )
    approval_timeout: float | None = Field(
        default=None,
        description="How long a run waits for approval before it is rejected ('72h', '90m', '2d', '30s' or "
        "seconds); none: it waits until approved, rejected or superseded",
    )

    @field_validator("approval_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float | None:
        return None if value is None else parse_duration(value)


def parse_duration(value: object) -> float:
    """Seconds from a positive number of seconds or a string like '72h'; ValueError says what is accepted."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value.strip())):
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    if seconds is None or not math.isfinite(seconds) or not 0 < seconds <= MAX_TIMEOUT_S:
        raise ValueError("must be a positive duration up to a year: seconds, or a number followed by s, m, h or d")
    return seconds

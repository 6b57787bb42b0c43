"""Value checks for the triggers file: cron schedules, time zones, IAP members, and values that look like inline
secrets."""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache

# Cloud Scheduler takes unix-cron: minute hour day-of-month month day-of-week.
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAMES = {3: {m: i + 1 for i, m in enumerate(_MONTHS)}, 4: {d: i for i, d in enumerate(_DAYS)}}

# Shapes of real credentials; a triggers file names secrets, it never holds one.
_SECRET_SHAPES = (
    (re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"), "a GitHub token"),
    (re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"hooks\.slack\.com/"), "a Slack webhook URL"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"AKIA[0-9A-Z]{16}"), "an AWS access key"),
    (re.compile(r"AIza[0-9A-Za-z_-]{35}"), "a Google API key"),
    (re.compile(r"sk-[A-Za-z0-9_-]{20,}"), "an API key"),
    (re.compile(r"(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])"), "a 40-hex-digit key (a W&B API key has this shape)"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
)
# IAM principals IAP accepts for a user-facing page (gcloud iap web add-iam-policy-binding --member): one person, a
# Google group, a service account, or everyone of a Cloud Identity domain.
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_IAP_MEMBER = re.compile(rf"(?:user|group|serviceAccount):{_EMAIL}|domain:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_IAP_FORMS = "user:EMAIL, group:EMAIL, serviceAccount:EMAIL or domain:DOMAIN"
_SECRET_KEY_WORDS = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|PRIVATE_KEY|CREDENTIAL|WEBHOOK_URL)")


def check_cron(expression: str) -> str:
    """`expression` if it is a valid 5-field unix-cron schedule, else ValueError naming the bad field."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a schedule has 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}")
    for index, (text, (name, low, high)) in enumerate(zip(fields, _CRON_FIELDS, strict=True)):
        for item in text.split(","):
            _check_cron_item(item, index, name, low, high)
    return " ".join(fields)


def _check_cron_item(item: str, index: int, name: str, low: int, high: int) -> None:
    span, _, step = item.partition("/")
    if step and not (step.isdigit() and 0 < int(step) <= high):
        raise ValueError(f"{name}: bad step {step!r} in {item!r}")
    if span == "*":
        return
    bounds = span.split("-")
    if len(bounds) > 2 or not all(bounds):
        raise ValueError(f"{name}: {item!r} is not a value, a range or '*'")
    values = [_cron_value(b, index, name, low, high) for b in bounds]
    if len(values) == 2 and values[0] > values[1]:
        raise ValueError(f"{name}: range {span!r} runs backwards")


def _cron_value(text: str, index: int, name: str, low: int, high: int) -> int:
    named = _NAMES.get(index, {}).get(text.lower())
    if named is not None:
        return named
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{name}: {text!r} is not between {low} and {high}")
    return int(text)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_time_zone(name: str) -> str:
    """`name` if it is a tz database zone (what Cloud Scheduler accepts), else ValueError."""
    if name not in _zones():
        raise ValueError(f"{name!r} is not a tz database time zone (e.g. Etc/UTC, Europe/Paris)")
    return name


def check_iap_member(member: str) -> str:
    """`member` if it names who may pass IAP in one of the documented forms, else ValueError saying which."""
    if member in ("allUsers", "allAuthenticatedUsers"):
        raise ValueError(f"{member} would let anyone past IAP: name users, groups, service accounts or a domain")
    if not _IAP_MEMBER.fullmatch(member):
        raise ValueError(f"{member[:80]!r} is not an IAP member: {_IAP_FORMS}")
    return member


def secret_shape(value: str) -> str | None:
    """What kind of credential `value` looks like, or None when it looks like none."""
    return next((label for pattern, label in _SECRET_SHAPES if pattern.search(value)), None)


def secret_like_key(key: str) -> bool:
    """Whether an environment variable's name says it carries a secret."""
    return bool(_SECRET_KEY_WORDS.search(key.upper()))

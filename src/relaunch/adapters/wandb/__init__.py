"""W&B adapters: a Launch queue training backend and artifact lookups, through the `wandb` SDK's public API.

The API host is a setting (`base_url`). In wandb >= 0.2x every public-API call goes through the SDK's `wandb-core`
service process, which the SDK starts on first use and stops with the interpreter (or `wandb.teardown()`).
The SDK is imported on first use only: importing it costs hundreds of milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from relaunch.domain.ports import TransientError

_REF = re.compile(r"^(?P<entity>[\w.-]+)/(?P<project>[\w.-]+)/(?P<name>[\w.-]+):(?P<alias>[\w.-]+)$")
_RETRYABLE_STATUS = frozenset({408, 429})


def check_settings(owner: str, **values: str | None) -> None:
    """Raise a ValueError naming the first empty setting, or a base_url that is not an http(s) URL."""
    for name, value in values.items():
        if not value or not str(value).strip():
            raise ValueError(f"{owner}: {name} must not be empty")
    base_url = values.get("base_url")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise ValueError(f"{owner}: base_url must be an http(s) URL, got {base_url!r}")


def parse_ref(ref: str) -> tuple[str, str, str, str]:
    """entity, project, collection, version-or-alias of an artifact ref `entity/project/name:vN`."""
    match = _REF.match(ref or "")
    if match is None:
        raise ValueError(f"artifact ref must look like entity/project/name:version, got {ref!r}")
    return match["entity"], match["project"], match["name"], match["alias"]


def make_api(api_key: str, base_url: str, *, launch: bool = False) -> Any:
    """A `wandb.Api` (or its Launch extension) for this host and key; verifies the key with the server."""
    with translate_errors("W&B login"):
        if launch:
            from wandb.sdk.launch.api import LaunchApi

            return LaunchApi(api_key=api_key, overrides={"base_url": base_url})
        import wandb

        return wandb.Api(api_key=api_key, overrides={"base_url": base_url})


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Map the SDK's failures onto the ports' convention: TransientError if a retry may help, else ValueError."""
    try:
        yield
    except TransientError:
        raise
    except Exception as exc:
        if _is_transient(exc):
            raise TransientError(f"{what}: {exc}") from exc
        if isinstance(exc, ValueError):
            raise
        raise ValueError(f"{what}: {exc}") from exc


def _is_transient(exc: BaseException) -> bool:
    """True for timeouts, lost connections, 408/429 and 5xx anywhere in the exception's chain."""
    import requests
    from wandb.sdk.lib.service.service_connection import WandbApiFailedError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, WandbApiFailedError):
            if current.response is None:  # wandb-core gave no answer in time, or is gone
                return True
            status = current.response.http_status
            return status in _RETRYABLE_STATUS or status >= 500
        if isinstance(current, requests.HTTPError) and current.response is not None:
            status = current.response.status_code
            return status in _RETRYABLE_STATUS or status >= 500
        if isinstance(current, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)):
            return True
        current = current.__cause__ or current.__context__
    return False

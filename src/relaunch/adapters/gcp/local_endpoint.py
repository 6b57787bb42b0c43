"""Credentials for a Google API served on loopback: a local stand-in (`relaunch demo --profile gcp-emulated`, tests).

Google's own clients go anonymous when *_EMULATOR_HOST points them at an emulator (Pub/Sub, Firestore, and Cloud
Storage's STORAGE_EMULATOR_HOST); the Vertex AI and Cloud Build clients have no such variable, only an api_endpoint
override. So an override that is plain http:// on a loopback address gets anonymous credentials, as an emulator
would; any other endpoint keeps Application Default Credentials. Nothing off this machine is ever sent anonymous
requests, and no credential is ever sent to a local stand-in.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit


def is_loopback(api_endpoint: str | None) -> bool:
    """Whether the endpoint is http:// on localhost or a loopback address (127.0.0.0/8, ::1)."""
    if not api_endpoint:
        return False
    parts = urlsplit(api_endpoint if "://" in api_endpoint else f"//{api_endpoint}")
    if parts.scheme not in ("http", ""):
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credentials_for(api_endpoint: str | None, credentials: Any | None) -> Any | None:
    """The credentials a client should use: the given ones, else anonymous for a loopback endpoint, else None (ADC)."""
    if credentials is not None or not is_loopback(api_endpoint):
        return credentials
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()

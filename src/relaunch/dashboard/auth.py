"""Who may read and who may act on the dashboard.

Actions always need the admin token (RELAUNCH_DASHBOARD_TOKEN): as `Authorization: Bearer TOKEN` (scripts), or as a
signed-in browser: its cookie holds a value derived from the token (HttpOnly, SameSite=Strict), and each form carries
a second derived value (double submit). SameSite=Strict keeps the cookie off cross-site requests and the form value
is on no other site's page, so a forged form fails twice. A request whose Origin is another host is refused outright.
Reads are open on the embedded stack (SQLite store, a loopback client naming a loopback Host: not a DNS-rebound
page) and to the person IAP's verified signed header names (iap.py, only where deploy put IAP in front); they need
the token everywhere else. Every
comparison is hmac.compare_digest; with no token configured nobody can act (fail closed).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

COOKIE = "relaunch_session"


def derived(token: str, purpose: str) -> str:
    """A value derived from the token for one purpose (the cookie, the forms): never the token itself."""
    return hmac.new(token.encode(), f"relaunch dashboard {purpose}".encode(), hashlib.sha256).hexdigest()


def same(a: str | None, b: str) -> bool:
    """Constant-time equality of an offered value with the expected one."""
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class Access:
    """What this request may do."""

    read: bool
    signed_in: bool
    bearer: bool

    @property
    def act(self) -> bool:
        return self.signed_in or self.bearer


def access(token: str | None, headers: Mapping[str, str], cookies: Mapping[str, str], *, open_reads: bool) -> Access:
    """What a request with these headers and cookies may do, under `token` (None: nobody may act)."""
    if token is None:
        return Access(read=open_reads, signed_in=False, bearer=False)
    auth = headers.get("Authorization", "")
    bearer = auth.startswith("Bearer ") and same(auth[len("Bearer ") :].strip(), token)
    signed_in = same(cookies.get(COOKIE), derived(token, "session"))
    return Access(read=open_reads or bearer or signed_in, signed_in=signed_in, bearer=bearer)


def form_proves(token: str | None, offered: str | None) -> bool:
    """Whether a form's `csrf` field is this dashboard's."""
    return token is not None and same(offered, derived(token, "form"))


def foreign_origin(headers: Mapping[str, str]) -> bool:
    """Whether the request says it comes from a page of another host (a cross-site form or script)."""
    origin = headers.get("Origin")
    if not origin or origin == "null":
        return bool(origin)
    return urlsplit(origin).netloc.lower() != headers.get("Host", "").lower()


def loopback_host(host: str | None) -> bool:
    """Whether the Host a request names is this machine's: a page that rebinds its own name to 127.0.0.1 (DNS
    rebinding) reaches the loopback port from the victim's browser, but still says its own name here."""
    name = (host or "").rsplit(":", 1)[0] if not (host or "").startswith("[") else (host or "")[1:].split("]", 1)[0]
    return name.lower() == "localhost" or loopback(name)


def loopback(address: str | None) -> bool:
    """Whether a client address is this machine's."""
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False

"""Who may talk to the local endpoint server: pure checks of Host, bearer token and model paths.

The server listens on loopback, but a web page in the user's browser can still reach it: by a cross-site POST
(the browser adds an Origin header) or by DNS rebinding (a name the page controls now resolves to 127.0.0.1, and the
request carries that name as its Host). So the server answers only loopback Host names, refuses POSTs that carry an
Origin, and wants a token on the routes that change what serves. A model file is a pickle, so loading one runs code:
only files that really lie in the registry's folder are loaded.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re

_PORT = re.compile(r"(:[0-9]{1,5})?")


def loopback_host(value: str | None) -> bool:
    """Whether a Host header names this machine's loopback: localhost, 127.0.0.0/8 or [::1], with any port."""
    if not value:
        return False
    bracketed = value.startswith("[")
    if bracketed:
        name, closed, port = value[1:].partition("]")
        if not closed:
            return False
    else:
        name, colon, port = value.partition(":")
        port = colon + port
    if not _PORT.fullmatch(port):
        return False
    if not bracketed and name.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    # IPv6 comes in brackets and IPv4 does not: anything else is not a Host header a browser would send.
    return address.is_loopback and (address.version == 6) == bracketed


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an Authorization header is `Bearer <token>`, compared in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header may hold any latin-1 character.
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass"))


def inside(root: str, artifact_uri: str, filename: str) -> str | None:
    """The real path of `filename` in `artifact_uri` if folder and file both resolve (symlinks followed) strictly
    inside `root`; None otherwise."""
    try:
        folder = os.path.realpath(artifact_uri.removeprefix("file://"))
        target = os.path.realpath(os.path.join(folder, filename))
    except ValueError:  # a NUL byte or a lone surrogate: no such file can exist
        return None
    real_root = os.path.realpath(root)
    for path in (folder, target):
        if path == real_root or os.path.commonpath([real_root, path]) != real_root:
            return None
    return target

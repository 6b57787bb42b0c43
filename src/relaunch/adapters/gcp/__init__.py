"""Google Cloud adapters: Pub/Sub, Firestore, Vertex AI, Cloud Build.

Each adapter module imports its SDK inside its constructor or functions (never at module top), so importing this
package costs nothing; bootstrap imports the adapter modules lazily.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from relaunch.domain.ports import TransientError

# gRPC status names a retry may fix (google.api_core.exceptions class names).
TRANSIENT_GOOGLE_ERRORS = (
    "Aborted",
    "DeadlineExceeded",
    "InternalServerError",
    "ResourceExhausted",
    "ServiceUnavailable",
    "TooManyRequests",
    "BadGateway",
    "GatewayTimeout",
    "Unknown",
    "RetryError",
)


@contextmanager
def google_errors(what: str) -> Iterator[None]:
    """Re-raise a Google SDK error a retry may fix as TransientError (naming `what`); anything else as it is."""
    from google.api_core import exceptions

    transient = tuple(getattr(exceptions, name) for name in TRANSIENT_GOOGLE_ERRORS if hasattr(exceptions, name))
    try:
        yield
    except transient as exc:
        raise TransientError(f"{what}: {exc}") from exc
    except ValueError as exc:
        # A Firestore transaction that kept losing lock races: the SDK wraps its last Aborted in a ValueError.
        if isinstance(exc.__cause__, exceptions.Aborted):
            raise TransientError(f"{what}: {exc}") from exc
        raise

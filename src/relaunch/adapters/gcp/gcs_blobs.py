"""Blob store for gs:// URIs on Cloud Storage (google-cloud-storage, imported on first read)."""

from __future__ import annotations

from typing import Any

from relaunch.ports import TransientError

_CALL_TIMEOUT_S = 30.0


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, object path) of gs://bucket/path; ValueError for anything else."""
    if not uri.startswith("gs://"):
        raise ValueError(f"uri: expected a gs:// URI, got {uri!r}")
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    if not bucket or not path:
        raise ValueError(f"uri: expected gs://bucket/object, got {uri!r}")
    return bucket, path


class GcsBlobStore:
    """A `BlobStore` reading gs://bucket/object as UTF-8 text."""

    def __init__(
        self, *, project: str | None = None, api_endpoint: str | None = None, credentials: Any | None = None
    ) -> None:
        self.project = project
        self._api_endpoint = api_endpoint
        self._credentials = credentials
        self._client: Any | None = None

    def __repr__(self) -> str:
        return f"GcsBlobStore(project={self.project!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            from google.cloud.storage import Client

            options = {"api_endpoint": self._api_endpoint} if self._api_endpoint else None
            # Reads need no project; "<none>" (what storage's anonymous client uses) avoids a project lookup.
            project = self.project or "<none>"
            self._client = Client(project=project, credentials=self._credentials, client_options=options)
        return self._client

    def read_text(self, uri: str) -> str:
        """The object's text; FileNotFoundError if it does not exist, TransientError if GCS is unavailable."""
        from google.api_core import exceptions as gexc

        bucket, path = split_uri(uri)
        blob = self.client.bucket(bucket).blob(path)
        try:
            # No client-side retry: a TransientError makes the platform redeliver the command instead.
            text: str = blob.download_as_text(encoding="utf-8", retry=None, timeout=_CALL_TIMEOUT_S)
        except gexc.NotFound as exc:
            raise FileNotFoundError(f"{uri} does not exist") from exc
        except (gexc.TooManyRequests, gexc.ServerError) as exc:
            raise TransientError(f"GCS read of {uri}: {exc.code} {exc.message}") from exc
        except gexc.GoogleAPICallError as exc:
            raise ValueError(f"GCS read of {uri} refused: {exc.code} {exc.message}") from exc
        except OSError as exc:  # connection refused or reset: FileNotFoundError must mean "no such object"
            raise TransientError(f"GCS read of {uri}: {exc}") from exc
        return text

    def join(self, base: str, *parts: str) -> str:
        """gs://bucket/a + (b, c) -> gs://bucket/a/b/c."""
        if not base.startswith("gs://") or not base.removeprefix("gs://").strip("/"):
            raise ValueError(f"base: expected a gs:// URI, got {base!r}")
        pieces = [base.rstrip("/"), *(p.strip("/") for p in parts if p.strip("/"))]
        return "/".join(pieces)

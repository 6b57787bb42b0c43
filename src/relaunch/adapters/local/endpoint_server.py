"""Local endpoint server: Vertex-like predict and admin routes over HTTP on loopback.

Routes (all under /v1/endpoints/<name>): GET (describe), GET :health?version=V&since=EPOCH_S, POST :predict
(`{"instances": [...], "version": optional, to reach one deployed version even at 0%}`), :deploy, :setTraffic,
:undeploy.

Who may call (see endpoint_guard): every request needs a loopback Host; every POST is refused if it carries an
Origin (only browsers send one, and no browser page has business here: even :predict, whose calls count into the
health figures that roll a canary back or forward); :deploy, :setTraffic and :undeploy need
`Authorization: Bearer <token>`, the token being the file at `token_path` (created 0600 on start if absent).

:deploy may name the version's `python_environment` (the hash of the environment it was trained in, under
`envs_dir`): the version is then served by a worker of that environment (see endpoint_state), stopped with the server.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from relaunch.adapters.local.endpoint import TOKEN_FILE
from relaunch.adapters.local.endpoint_guard import bearer_matches, loopback_host
from relaunch.adapters.local.endpoint_state import ApiError, ServingState
from relaunch.adapters.local.secret_files import ensure_secret

log = logging.getLogger(__name__)

ROUTE_KEY_HEADER = "x-relaunch-route-key"
MAX_BODY_BYTES = 16 * 1024 * 1024
_PATH = re.compile(r"^/v1/endpoints/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?::(?P<verb>[A-Za-z]+))?$")
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "FAILED_PRECONDITION",
    413: "INVALID_ARGUMENT",
}
ADMIN_VERBS = frozenset({"deploy", "setTraffic", "undeploy"})


class EndpointServer:
    """Serves every local endpoint from one ThreadingHTTPServer; state survives a restart via `state_path`.

    `registry_dir` (models load only from there) and `token_path` default to the layout of a stack's home, where
    the state file lives too: `registry/` and `secrets/endpoint_token` beside it."""

    def __init__(
        self,
        state_path: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int | None = None,
        registry_dir: Path | None = None,
        token_path: Path | None = None,
        envs_dir: Path | None = None,
        warm_ahead: bool = False,
    ) -> None:
        """`warm_ahead`: also start, at start, a worker of the environment used last (the embedded stack's endpoint:
        the next push most likely trains in it)."""
        home = Path(state_path).absolute().parent  # absolute: a later chdir must not move the registry
        self.registry_dir = Path(registry_dir).absolute() if registry_dir is not None else home / "registry"
        self.token_path = Path(token_path).absolute() if token_path is not None else home / "secrets" / TOKEN_FILE
        envs = Path(envs_dir).absolute() if envs_dir is not None else None
        self.state = ServingState(state_path, seed=seed, registry_dir=self.registry_dir, envs_dir=envs)
        self.host = host
        self.port = port
        self._warm_ahead = warm_ahead
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL with the real port (after start)."""
        if self._server is None:
            raise RuntimeError("the endpoint server is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> None:
        """Bind and serve in a daemon thread."""
        if self._server is not None:
            return
        token = ensure_secret(self.token_path)
        handler = type("_BoundHandler", (_Handler,), {"state": self.state, "token": token})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="relaunch-endpoint", daemon=True
        )
        self._thread.start()
        # Starting a predictor worker or importing joblib/scikit-learn takes ~1-2 s: now, not during the first deploy.
        threading.Thread(target=self._warm, name="relaunch-endpoint-warmup", daemon=True).start()

    def _warm(self) -> None:
        warmed = self.state.warm(ahead=self._warm_ahead)
        if warmed:
            log.info("warm-up: predictor workers of environments %s started", ", ".join(warmed))
        _warm_up()  # for versions that name no environment: served in this process

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=3)
        self._server, self._thread = None, None
        self.state.close()


class _Handler(BaseHTTPRequestHandler):
    state: ServingState
    token: str
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would hold the body ~40 ms

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(self._post)

    def _get(self) -> dict[str, Any]:
        if self.path.split("?")[0] in ("/healthz", "/v1/endpoints"):
            return {"ok": True, "endpoints": self.state.names()}
        name, verb = self._route()
        if verb == "health":
            query = parse_qs(urlsplit(self.path).query)
            return self.state.health(name, _query_text(query, "version"), _query_float(query, "since", 0.0))
        if verb is not None:
            raise ApiError(404, f"no route GET {self.path}")
        return self.state.describe(name)

    def _post(self) -> dict[str, Any]:
        body = self._json_body()
        name, verb = self._route()
        if verb == "predict":
            version = body.get("version")
            if version is not None and (not isinstance(version, str) or not version):
                raise ApiError(400, "'version' must be a non-empty string when given")
            return self.state.predict(name, body.get("instances"), self.headers.get(ROUTE_KEY_HEADER), version)
        if verb == "deploy":
            given = (_text(body, "version"), _text(body, "artifact_uri"), body.get("python_environment"))
            return self.state.deploy(name, *given)
        if verb == "setTraffic":
            return self.state.set_traffic(name, body.get("split"))
        if verb == "undeploy":
            return self.state.undeploy(name, _text(body, "version"))
        raise ApiError(404, f"no route POST {self.path}")

    def _guard(self) -> None:
        """Refuse what a browser page or a rebound DNS name could send, and admin calls without the token."""
        if not loopback_host(self.headers.get("Host")):
            raise ApiError(403, "the Host header must name loopback (localhost, 127.0.0.1 or [::1]): DNS rebinding")
        if self.command != "POST":
            return
        if self.headers.get("Origin") is not None:
            raise ApiError(403, "requests with an Origin header are refused: browsers send one, this API is not theirs")
        match = _PATH.match(self.path.split("?")[0])
        if match is not None and match["verb"] in ADMIN_VERBS:
            if not bearer_matches(self.headers.get("Authorization"), self.token):
                raise ApiError(401, f"missing or wrong bearer token (Authorization: Bearer <the {TOKEN_FILE} file>)")

    def _route(self) -> tuple[str, str | None]:
        match = _PATH.match(self.path.split("?")[0])
        if match is None:
            raise ApiError(404, f"no route {self.command} {self.path}")
        return match["name"], match["verb"]

    def _json_body(self) -> dict[str, Any]:
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would be taken for the next request
            raise ApiError(413 if length.isdigit() else 400, f"bad Content-Length (at most {MAX_BODY_BYTES} bytes)")
        try:
            body = json.loads(self.rfile.read(int(length)) or b"{}")
        except ValueError as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        return body

    def _answer(self, route: Any) -> None:
        try:
            self._guard()
        except ApiError as exc:
            self.close_connection = True  # the body is left unread; it must not be taken for the next request
            self._send(exc.code, _error(exc.code, exc.message))
            return
        try:
            code, payload = 200, route()
        except ApiError as exc:
            code, payload = exc.code, _error(exc.code, exc.message)
        except Exception:
            log.exception("endpoint server failed on %s %s", self.command, self.path)
            code, payload = 500, _error(500, "internal error")
        self._send(code, payload)

    def _send(self, code: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if code == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="relaunch-endpoint"')
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("endpoint server: " + format, *args)


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"'{key}' must be a non-empty string")
    return value


def _query_text(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key)
    if not values or not values[0]:
        raise ApiError(400, f"query parameter '{key}' is required")
    return values[0]


def _query_float(query: dict[str, list[str]], key: str, default: float) -> float:
    values = query.get(key)
    if not values:
        return default
    try:
        return float(values[0])
    except ValueError:
        raise ApiError(400, f"query parameter '{key}' must be a number (epoch seconds), not {values[0]!r}") from None


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": _STATUS_NAMES.get(code, "INTERNAL")}}


def _warm_up() -> None:
    try:
        import joblib  # noqa: F401
        import sklearn.base  # noqa: F401
    except ImportError:  # serving will report the missing library on the first load
        pass

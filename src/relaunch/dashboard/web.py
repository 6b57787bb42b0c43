"""The dashboard's HTTP surface: routes, who may see and do what, and every refusal as a 4xx naming its field.

Thin: it parses the request, asks collect/actions, renders with html/html_ops, and answers. GET pages, `/live/...`
server-sent event streams of the same sections, POST `/actions/<name>` (the admin token: see auth.py; after a
browser's form it redirects back with what happened), `/login` and `/logout`, and the served stylesheet and script.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

import flask
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from relaunch.dashboard import actions, auth, collect, html, html_ops, iap, live
from relaunch.dashboard.assets import CSS, JS
from relaunch.dashboard.readmodel import BadField, run_filter
from relaunch.domain.model import PipelineRun, TimelineEntry
from relaunch.settings import reveal
from relaunch.textsafe import safe_line

if TYPE_CHECKING:
    from relaunch.bootstrap import App

log = logging.getLogger(__name__)

ROUTES = Map(
    [
        Rule("/", endpoint="runs", methods=["GET"]),
        Rule("/runs", endpoint="runs", methods=["GET"]),
        Rule("/runs/<path:run_id>", endpoint="run", methods=["GET"]),
        Rule("/pipelines", endpoint="pipelines", methods=["GET"]),
        Rule("/inbox", endpoint="inbox", methods=["GET"]),
        Rule("/live/runs", endpoint="live_runs", methods=["GET"]),
        Rule("/live/runs/<path:run_id>", endpoint="live_run", methods=["GET"]),
        Rule("/live/pipelines", endpoint="live_pipelines", methods=["GET"]),
        Rule("/actions/<name>", endpoint="act", methods=["POST"]),
        Rule("/login", endpoint="login", methods=["GET", "POST"]),
        Rule("/logout", endpoint="logout", methods=["GET"]),
        Rule("/assets/dashboard.css", endpoint="css", methods=["GET"]),
        Rule("/assets/dashboard.js", endpoint="js", methods=["GET"]),
    ]
)
HTML = "text/html; charset=utf-8"
CLOUD_POLL_S = 3.0
SECURITY = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class Dashboard:
    """Answers one request from the ports of `app`; `live_s`/`poll_s` bound each event stream."""

    def __init__(self, app: App, *, live_s: float = live.DURATION_S, poll_s: float | None = None) -> None:
        embedded = app.settings.adapter("store") == "sqlite"
        # A look at the embedded store is a local read; one at Firestore is billed, so streams look less often.
        self.app, self.live_s = app, live_s
        self.poll_s = poll_s or (live.POLL_S if embedded else CLOUD_POLL_S)

    @property
    def token(self) -> str | None:
        return reveal(self.app.settings.dashboard_token)

    def respond(self, request: flask.Request) -> flask.Response:
        """The response to `request`: never a traceback (a refusal names its field)."""
        try:
            endpoint, values = ROUTES.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            return self._plain(exc.code or 404, f"{exc.name}: {request.method} {safe_line(request.path)[:200]}")
        open_reads = (
            self.app.settings.adapter("store") == "sqlite"
            and auth.loopback(request.remote_addr)
            and auth.loopback_host(request.host)
        ) or iap.identity(dict(request.headers), self.app.settings.iap_audience) is not None  # iap.py: verified only
        access = auth.access(self.token, dict(request.headers), request.cookies, open_reads=open_reads)
        try:
            if endpoint in ("css", "js"):
                return self._asset(endpoint)
            if endpoint == "login":
                return self._login(request, access)
            if endpoint == "logout":
                return self._redirect("/", cookie="")
            if endpoint == "act":
                return self._act(request, access, values["name"])
            if not access.read:
                return self._refuse(request, 401, "sign in: reading this dashboard needs the admin token")
            return getattr(self, f"_{endpoint}")(request, self._viewer(access, request), **values)
        except BadField as exc:
            return self._refuse(request, exc.status, exc.message, field=exc.field)

    # -- pages --------------------------------------------------------------------------------------------------

    def _runs(self, request: flask.Request, viewer: html.Viewer) -> flask.Response:
        chosen = run_filter(request.args, self.app.specs())
        return self._page(html.runs_page(collect.runs(self.app, chosen), chosen, sorted(self.app.specs()), viewer))

    def _run(self, request: flask.Request, viewer: html.Viewer, run_id: str) -> flask.Response:
        run, timeline = self._run_and_timeline(run_id)
        view = collect.run_view(self.app, run, timeline)
        return self._page(html.run_page(run, timeline, view, viewer))

    def _pipelines(self, request: flask.Request, viewer: html.Viewer) -> flask.Response:
        return self._page(html_ops.pipelines_page(*collect.places(self.app), viewer))

    def _inbox(self, request: flask.Request, viewer: html.Viewer) -> flask.Response:
        store = self.app.store
        return self._page(html_ops.inbox_page(store.list_deliveries(100), store.list_dead_letters(100), viewer))

    # -- live streams -------------------------------------------------------------------------------------------

    def _live_runs(self, request: flask.Request, viewer: html.Viewer) -> flask.Response:
        chosen = run_filter(request.args, self.app.specs())
        return self._stream(lambda: str(html.run_rows(collect.runs(self.app, chosen))))

    def _live_run(self, request: flask.Request, viewer: html.Viewer, run_id: str) -> flask.Response:
        self._run_and_timeline(run_id)  # an unknown run is a 404 now, not a stream of errors

        def render() -> str:
            run, timeline = self._run_and_timeline(run_id)
            view = collect.run_view(self.app, run, timeline)
            return str(html.run_body(run, timeline, view, viewer))

        return self._stream(render)

    def _live_pipelines(self, request: flask.Request, viewer: html.Viewer) -> flask.Response:
        return self._stream(lambda: str(html_ops.places_body(*collect.places(self.app), viewer)), self.poll_s * 2)

    def _stream(self, render: Callable[[], str], poll_s: float | None = None) -> flask.Response:
        events = live.stream(render, poll_s=poll_s or self.poll_s, duration_s=self.live_s)
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return flask.Response(events, mimetype="text/event-stream", headers=headers)

    # -- actions and signing in ---------------------------------------------------------------------------------

    def _act(self, request: flask.Request, access: auth.Access, name: str) -> flask.Response:
        if auth.foreign_origin(dict(request.headers)):
            return self._refuse(request, 403, "this action came from a page of another site", field="Origin")
        if self.token is None:
            return self._refuse(request, 503, "no RELAUNCH_DASHBOARD_TOKEN is set: actions are off (fail closed)")
        if not access.act:
            return self._refuse(request, 401, "acting needs the admin token", field="token")
        if not access.bearer and not auth.form_proves(self.token, request.form.get("csrf")):
            return self._refuse(request, 403, "csrf: this form did not come from this dashboard", field="csrf")
        action = actions.ACTIONS.get(name)
        if action is None:
            raise BadField("action", f"action: no action {name!r} ({', '.join(actions.ACTIONS)})", status=404)
        try:
            said = action(self.app, request.form)
        except actions.ActionFailed as exc:
            return self._refuse(request, exc.status, exc.message)
        log.info("dashboard %s: %s", name, said)
        if access.bearer:
            return flask.jsonify({"ok": True, "message": said})
        return self._redirect(_back(request), flash=said)

    def _login(self, request: flask.Request, access: auth.Access) -> flask.Response:
        viewer = self._viewer(access, request)
        if request.method == "GET":
            return self._page(html_ops.login_page(viewer))
        if self.token is None:
            return self._page(html_ops.login_page(viewer, "no RELAUNCH_DASHBOARD_TOKEN is set"), 503)
        if not auth.same(request.form.get("token"), self.token):
            return self._page(html_ops.login_page(viewer, "that is not the admin token"), 401)
        return self._redirect("/", cookie=auth.derived(self.token, "session"))

    # -- helpers ------------------------------------------------------------------------------------------------

    def _viewer(self, access: auth.Access, request: flask.Request) -> html.Viewer:
        csrf = auth.derived(self.token, "form") if self.token and access.signed_in else ""
        said = request.args.get("said", "")[:500]
        signed = self.token is not None and auth.same(request.args.get("sig"), auth.derived(self.token, f"said {said}"))
        return html.Viewer(can_act=access.signed_in, csrf=csrf, flash=said if signed else "")

    def _run_and_timeline(self, run_id: str) -> tuple[PipelineRun, list[TimelineEntry]]:
        run = self.app.store.get_run(run_id)
        if run is None:
            raise BadField("run_id", f"run_id: no run {safe_line(run_id[:100])!r}", status=404)
        return run, self.app.store.timeline(run_id)

    def _page(self, body: str, status: int = 200) -> flask.Response:
        return flask.Response(body, status, {"Content-Type": HTML, **SECURITY})

    def _asset(self, which: str) -> flask.Response:
        kind = "text/css" if which == "css" else "text/javascript"
        return flask.Response(
            CSS if which == "css" else JS,
            200,
            {"Content-Type": f"{kind}; charset=utf-8", "Cache-Control": "max-age=300", **SECURITY},
        )

    def _plain(self, status: int, message: str) -> flask.Response:
        return flask.Response(message + "\n", status, {"Content-Type": "text/plain; charset=utf-8", **SECURITY})

    def _refuse(self, request: flask.Request, status: int, message: str, field: str = "") -> flask.Response:
        """A refusal as JSON for scripts, as a page for browsers; the field named either way."""
        if "text/html" not in request.headers.get("Accept", ""):
            body = {"error": message, **({"field": field} if field else {})}
            return flask.Response(flask.json.dumps(body), status, {"Content-Type": "application/json", **SECURITY})
        viewer = html.Viewer()
        return self._page(html_ops.message_page(f"{status}", message, viewer), status)

    def _redirect(self, to: str, *, flash: str = "", cookie: str | None = None) -> flask.Response:
        # Signed, so a crafted link cannot make this page say something it never said.
        signature = auth.derived(self.token, f"said {flash}") if self.token and flash else ""
        location = to + (f"?{urlencode({'said': flash, 'sig': signature})}" if signature else "")
        response = flask.Response(status=303, headers={"Location": location, **SECURITY})
        if cookie is not None:
            secure = flask.request.is_secure or flask.request.headers.get("X-Forwarded-Proto") == "https"
            response.set_cookie(
                auth.COOKIE,
                cookie,
                httponly=True,
                samesite="Strict",
                secure=secure,
                path="/",
                max_age=None if cookie else 0,
            )
        return response


def _back(request: flask.Request) -> str:
    """The page a form was sent from, when it is one of this dashboard's (else the runs list)."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc.lower() != request.host.lower():
        return "/"
    return referrer.path or "/"

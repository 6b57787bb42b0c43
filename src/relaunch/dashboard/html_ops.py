"""The dashboard's operations pages: pipelines (environments, traffic, health, champion history), the inbox and
dead letters, and sign-in. Pure, and escaping as relaunch.dashboard.html does."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

from relaunch.dashboard.html import Viewer, fmt, layout, path_part, when
from relaunch.dashboard.readmodel import Place, serving_text, traffic_text
from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import DeadLetter, Delivery


def places_body(places: Sequence[Place], history: dict[str, list[PromotionRecord]], viewer: Viewer) -> Markup:
    """Per pipeline: each environment's serving version, split, health and Rollback; then its champion history."""
    pipelines = list(dict.fromkeys(p.pipeline for p in places))
    parts = []
    for pipeline in pipelines:
        rows = Markup("").join(
            fmt(
                '<tr data-environment="{}"><td>{}</td><td>{}</td><td>{}</td><td id="traffic-{}">{}</td><td>{}</td>'
                "<td>{}</td></tr>",
                p.environment,
                p.environment,
                p.endpoint,
                serving_text(p),
                p.endpoint,
                traffic_text(p.traffic),
                p.health or "-",
                viewer.form(
                    "/actions/rollback",
                    "Rollback",
                    f"rollback-{p.pipeline}-{p.environment}",
                    pipeline=p.pipeline,
                    env=p.environment,
                ),
            )
            for p in places
            if p.pipeline == pipeline
        )
        parts.append(
            fmt(
                '<section data-pipeline="{}"><h2>{}</h2><div class="scroll"><table><thead><tr><th>environment</th>'
                "<th>endpoint</th><th>serves</th><th>traffic</th><th>health</th><th></th></tr></thead><tbody>{}"
                "</tbody></table></div><h3>Champion history</h3>{}</section>",
                pipeline,
                pipeline,
                rows,
                _history(history.get(pipeline, [])),
            )
        )
    return Markup("").join(parts) or Markup('<p class="note">no pipelines</p>')


def pipelines_page(places: Sequence[Place], history: dict[str, list[PromotionRecord]], viewer: Viewer) -> str:
    """The pipelines page, following its live stream (a canary's split moves while one looks)."""
    body = fmt(
        '<h1>Pipelines</h1><div id="pipelines" data-live="/live/pipelines">{}</div>',
        places_body(places, history, viewer),
    )
    return layout("pipelines", body, "pipelines", viewer)


def _history(records: Sequence[PromotionRecord]) -> Markup:
    if not records:
        return Markup('<p class="note">no promotion recorded</p>')
    rows = Markup("").join(
        fmt(
            '<tr data-kind="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href="/runs/{}">{}</a>'
            "</td><td>{}</td></tr>",
            r.kind,
            when(r.at),
            r.environment,
            r.kind,
            r.version,
            r.replaced or "-",
            path_part(r.run_id),
            r.run_id,
            r.approved_by or "-",
        )
        for r in records
    )
    return fmt(
        '<div class="scroll"><table><thead><tr><th>when</th><th>environment</th><th>what</th><th>version</th>'
        "<th>replaced</th><th>run</th><th>approved by</th></tr></thead><tbody>{}</tbody></table></div>",
        rows,
    )


def inbox_page(deliveries: Sequence[Delivery], dead: Sequence[DeadLetter], viewer: Viewer) -> str:
    """Deliveries with Replay (as `relaunch replay KEY`), then dead letters with their reasons."""
    rows = Markup("").join(
        fmt(
            '<tr data-delivery="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            d.key,
            when(d.received_at),
            d.source,
            d.key,
            d.outcome,
            Markup(" ").join(fmt('<a href="/runs/{}">{}</a>', path_part(r), r) for r in d.run_ids) or "-",
            viewer.form("/actions/replay", "Replay", f"replay-{index}", key=d.key),
        )
        for index, d in enumerate(deliveries)
    )
    letters = Markup("").join(
        fmt("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", when(x.at), x.id, x.source, x.reason) for x in dead
    )
    body = fmt(
        '<h1>Inbox</h1><div class="scroll"><table id="inbox"><thead><tr><th>received</th><th>source</th><th>key</th>'
        "<th>outcome</th><th>runs</th><th></th></tr></thead><tbody>{}</tbody></table></div><h2>Dead letters</h2>"
        '<p class="note">messages acknowledged but never processed; fix the cause, then send the event again</p>'
        '<div class="scroll"><table id="dead-letters"><thead><tr><th>at</th><th>id</th><th>source</th><th>reason</th>'
        "</tr></thead><tbody>{}</tbody></table></div>",
        rows,
        letters,
    )
    return layout("inbox", body, "inbox", viewer)


def login_page(viewer: Viewer, problem: str = "") -> str:
    """Sign in with the admin token (it is kept in an HttpOnly, SameSite=Strict cookie as a derived value)."""
    said = fmt('<p class="fail">{}</p>', problem) if problem else Markup("")
    body = fmt(
        '<h1>Sign in</h1>{}<form method="post" action="/login"><label>admin token '
        '<input type="password" name="token" autocomplete="current-password" required></label> '
        '<button id="sign-in">sign in</button></form><p class="note">The token is RELAUNCH_DASHBOARD_TOKEN (the '
        "embedded stack keeps its own in RELAUNCH_HOME/secrets/dashboard_token).</p>",
        said,
    )
    return layout("sign in", body, "", viewer)


def message_page(title: str, message: str, viewer: Viewer) -> str:
    """A page that says one thing: an error with its field, or why signing in is needed."""
    return layout(title, fmt('<h1>{}</h1><p id="message">{}</p>', title, message), "", viewer)

#!/usr/bin/env python3
"""Send relaunch a manual retrain: a signed workflow_dispatch-shaped webhook, or a message on relaunch-commands.

Standard library only, so the `retrain` action runs on any runner with a python3. Every setting is a flag or its
environment variable RETRAIN_<FLAG> (the action passes its inputs as environment variables, never inlined into
shell). The webhook secret and the access token are read from RETRAIN_SECRET / RETRAIN_TOKEN only (a command line is
visible to every process on the machine) and are never printed. Exit codes: 0 sent, 1 refused or unreachable,
2 a bad input (nothing was sent).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

SECRET_ENV, TOKEN_ENV = "RETRAIN_SECRET", "RETRAIN_TOKEN"
FLAGS = "mode url project topic endpoint pipeline reason priority repo ref sha sender run_id run_attempt attempts backoff"
# Where a flag falls back to when neither it nor RETRAIN_<FLAG> is set: what GitHub Actions provides every step.
GITHUB_ENV = {
    "repo": ("GITHUB_REPOSITORY",),
    "ref": ("GITHUB_REF",),
    "sha": ("GITHUB_SHA",),
    "sender": ("GITHUB_TRIGGERING_ACTOR", "GITHUB_ACTOR"),
    "run_id": ("GITHUB_RUN_ID",),
    "run_attempt": ("GITHUB_RUN_ATTEMPT",),
}
DEFAULTS = {"mode": "webhook", "topic": "relaunch-commands", "endpoint": "https://pubsub.googleapis.com"}
DEFAULTS |= {"priority": "0", "run_attempt": "1", "attempts": "4", "backoff": "1", "sender": "github-actions"}
# (pattern, what it must be) per validated setting; the repo and pipeline rules are relaunch's own.
RULES = {
    "mode": (r"webhook|pubsub", "webhook or pubsub"),
    "repo": (r"[\w.-]{1,100}/[\w.-]{1,100}", "owner/name (GITHUB_REPOSITORY)"),
    "ref": (r"\S{1,250}", "the branch or tag to retrain (GITHUB_REF)"),
    "sha": (r"([0-9a-f]{40}|[0-9a-f]{64})?", "a full commit SHA, 40 or 64 hex (GITHUB_SHA), or empty"),
    "reason": (r"(?s).{0,300}", "at most 300 characters"),
    "pipeline": (r"([a-z][a-z0-9-]{0,62})?", "a pipeline name (lower-case letters, digits, '-') or empty"),
    "priority": (r"\+?0*[0-9]{1,3}", "an integer from 0 to 100"),
    "run_id": (r"[0-9A-Za-z_.-]{1,80}", "the workflow run id (GITHUB_RUN_ID)"),
    "run_attempt": (r"[0-9A-Za-z_.-]{1,80}", "the run attempt (GITHUB_RUN_ATTEMPT)"),
    "project": (r"[a-z][a-z0-9.:-]{2,99}", "a Google Cloud project id"),
    "topic": (r"[A-Za-z][\w.~+%-]{2,254}", "a Pub/Sub topic name"),
    "attempts": (r"[1-9]|10", "an integer from 1 to 10"),
    "backoff": (r"[0-9]{1,2}(\.[0-9]+)?", "seconds, from 0 to 99"),
}
MAX_PRIORITY = 100
# git check-ref-format's rules (as relaunch's domain/gitnames.py checks them), plus: no part may start with '-'.
REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f~^:?*\[\\]|\.\.|//|@\{|(?:^|/)[.-]|\.lock(?:/|$)|[/.]$")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
RETRYABLE = frozenset({429, 500, 502, 503, 504})
# A fixed namespace, so the same repo, run attempt and pipeline always give the same X-GitHub-Delivery.
DELIVERY_NAMESPACE = uuid.UUID("6f1c0a52-5a8e-4a43-9d0e-2f3b7f0c9a11")


class InputError(ValueError):
    """A bad setting, found before anything is sent; the message starts with the setting's name."""


class SendError(RuntimeError):
    """relaunch or Pub/Sub refused the request, or could not be reached."""


@dataclass(frozen=True)
class Request:
    """One validated retrain request."""

    repo: str
    ref: str
    sha: str
    pipeline: str
    reason: str
    priority: int
    sender: str
    run_id: str
    run_attempt: str
    workflow: str | None

    @property
    def request_id(self) -> str:
        """The idempotency key: one per workflow run attempt and pipeline, so a re-run step starts nothing new."""
        return f"{self.run_id}-{self.run_attempt}" + (f"-{self.pipeline}" if self.pipeline else "")

    @property
    def delivery_id(self) -> str:
        """X-GitHub-Delivery: a UUID derived from the repo and request id (relaunch dedupes deliveries by it)."""
        return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{self.repo}:{self.request_id}"))


@dataclass(frozen=True)
class Outcome:
    """What happened, for the log and the step's outputs."""

    message: str
    outputs: dict[str, str]


# -- validation and payloads (pure) ----------------------------------------------------------------------------


def valid(values: dict[str, str], name: str) -> str:
    """The setting, stripped, if it matches its rule; else InputError naming it."""
    value = values[name].strip()
    pattern, what = RULES[name]
    if not re.fullmatch(pattern, value):
        raise InputError(f"{name} must be {what}, got {value[:80]!r}" if value else f"{name} is required: {what}")
    return value


def build_request(values: dict[str, str], workflow_ref: str | None) -> Request:
    """Validate the settings every mode shares into a Request."""
    priority = int(valid(values, "priority"))
    if priority > MAX_PRIORITY:
        raise InputError(f"priority must be from 0 to {MAX_PRIORITY}, got {priority}")
    ref = valid(values, "ref")
    ref = ref if ref.startswith("refs/") else f"refs/heads/{ref}"  # a bare branch, as github.ref_name gives it
    if REF_FORBIDDEN.search(ref) or ref == "@":
        raise InputError(f"ref must be a branch or tag name git accepts (git check-ref-format), got {ref[:80]!r}")
    return Request(
        repo=valid(values, "repo"),
        ref=ref,
        sha=valid(values, "sha").lower(),
        pipeline=valid(values, "pipeline"),
        reason=valid(values, "reason"),
        priority=priority,
        sender=values["sender"].strip() or DEFAULTS["sender"],
        run_id=valid(values, "run_id"),
        run_attempt=valid(values, "run_attempt"),
        workflow=workflow_path(workflow_ref),
    )


def workflow_path(workflow_ref: str | None) -> str | None:
    """`.github/workflows/x.yml` out of GITHUB_WORKFLOW_REF (`owner/repo/.github/workflows/x.yml@refs/heads/main`)."""
    path = (workflow_ref or "").split("@", 1)[0]
    marker = path.find(".github/workflows/")
    return path[marker:] if marker >= 0 else None


def check_url(value: str, name: str) -> str:
    """An https URL, or http to this machine only (a signed body or a bearer token must not cross a network bare)."""
    url = value.strip()
    parts = urllib.parse.urlsplit(url)
    if not url:
        raise InputError(f"{name} is required in this mode")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{name} must be an http(s) URL, got {url[:120]!r}")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise InputError(f"{name} must use https (plain http is allowed to localhost only)")
    return url


def webhook_body(request: Request) -> bytes:
    """A workflow_dispatch payload as GitHub shapes it, with the fields relaunch reads."""
    owner, name = request.repo.split("/", 1)
    inputs = {"pipeline": request.pipeline, "reason": request.reason, "priority": str(request.priority)}
    if request.sha:  # the commit the smoke test passed on, not whatever the ref points at when relaunch builds
        inputs["sha"] = request.sha
    payload: dict[str, object] = {
        # `pipeline` is always present, even empty: it marks the dispatch as meant for relaunch.
        "inputs": inputs,
        "ref": request.ref,
        "repository": {"full_name": request.repo, "name": name, "owner": {"login": owner}},
        "sender": {"login": request.sender},
    }
    if request.workflow:
        payload["workflow"] = request.workflow
    return json.dumps(payload, sort_keys=True).encode()


def webhook_headers(body: bytes, secret: str, delivery_id: str) -> dict[str, str]:
    """The headers GitHub sends, X-Hub-Signature-256 being the HMAC-SHA256 of the exact body."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "User-Agent": "relaunch-retrain-action",
        "X-GitHub-Event": "workflow_dispatch",
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": f"sha256={digest}",
    }


def command_data(request: Request) -> dict[str, object]:
    """The `retrain` message relaunch reads from relaunch-commands."""
    return {
        "type": "retrain",
        "repo": request.repo,
        "ref": request.ref,
        **({"sha": request.sha} if request.sha else {}),
        "pipeline": request.pipeline,
        "reason": request.reason,
        "priority": request.priority,
        "requested_by": request.sender,
        "request_id": request.request_id,
    }


def publish_body(data: dict[str, object]) -> bytes:
    """A Pub/Sub REST `topics.publish` body carrying one message (attributes let subscriptions filter)."""
    encoded = base64.b64encode(json.dumps(data, sort_keys=True).encode()).decode()
    attributes = {"type": "retrain", "request_id": str(data["request_id"])}
    return json.dumps({"messages": [{"data": encoded, "attributes": attributes}]}).encode()


def judge_webhook(status: int, text: str) -> Outcome:
    """A run started (or started before, "duplicate") is success; any other answer raises SendError saying why."""
    answer = _json_object(text)
    if not 200 <= status < 300:
        detail = answer.get("error") or text.strip()[:300] or "no message"
        field = f" (field {answer['field']})" if answer.get("field") else ""
        raise SendError(f"relaunch answered {status}: {detail}{field}")
    outcome, runs = str(answer.get("outcome", "")), ",".join(str(r) for r in answer.get("runs") or [])
    outputs = {"status": str(status), "outcome": outcome, "runs": runs, "answer": json.dumps(answer, sort_keys=True)}
    if outcome == "accepted":
        return Outcome(f"relaunch started run(s) {runs}", outputs)
    if outcome == "duplicate":
        return Outcome(f"already sent for this run attempt; relaunch's run(s): {runs or 'none'}", outputs)
    why = answer.get("reason") or "; ".join(f"{k}: {v}" for k, v in (answer.get("skipped") or {}).items())
    raise SendError(f"relaunch answered {status} {outcome or 'without an outcome'}: {why or 'no reason given'}")


def judge_publish(status: int, text: str) -> str:
    """The message id Pub/Sub gave the message; anything else raises SendError with Pub/Sub's message."""
    answer = _json_object(text)
    ids = answer.get("messageIds") if 200 <= status < 300 else None
    if isinstance(ids, list) and ids:
        return str(ids[0])
    error = answer.get("error")
    detail = error.get("message") if isinstance(error, dict) else text.strip()[:300]
    raise SendError(f"Pub/Sub answered {status}: {detail or 'no message id'}")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- I/O -------------------------------------------------------------------------------------------------------


def post(url: str, body: bytes, headers: dict[str, str], retry: tuple[int, float]) -> tuple[int, str]:
    """POST, retrying connection errors, 429 and 5xx with exponential backoff; the last answer otherwise."""
    attempts, backoff = retry
    for attempt in range(1, attempts + 1):
        try:
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(req, timeout=15) as answer:
                return answer.status, answer.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode("utf-8", "replace")
            if status not in RETRYABLE or attempt == attempts:
                return status, text
            problem = f"answer {status}"
        except OSError as exc:  # URLError, refused, reset, timed out
            problem = str(getattr(exc, "reason", exc))
            if attempt == attempts:
                raise SendError(f"cannot reach {url} after {attempts} attempt(s): {problem}") from None
        delay = backoff * 2 ** (attempt - 1)
        print(f"attempt {attempt} of {attempts} failed ({problem}); retrying in {delay:g}s", file=sys.stderr)
        time.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


def send(args: argparse.Namespace, env: dict[str, str]) -> Outcome:
    """Validate everything, then send once (retrying transient failures only)."""
    values = vars(args)
    request = build_request(values, env.get("GITHUB_WORKFLOW_REF"))
    retry = int(valid(values, "attempts")), float(valid(values, "backoff"))
    if valid(values, "mode") == "webhook":
        url, secret = check_url(args.url, "url"), _credential(env, SECRET_ENV, "secret", "webhook")
        body = webhook_body(request)
        outcome = judge_webhook(*post(url, body, webhook_headers(body, secret, request.delivery_id), retry))
        keys = {"request-id": request.request_id, "delivery-id": request.delivery_id}
        return Outcome(outcome.message, keys | outcome.outputs)
    project, topic = valid(values, "project"), valid(values, "topic")
    endpoint, token = check_url(args.endpoint, "endpoint").rstrip("/"), _credential(env, TOKEN_ENV, "token", "pubsub")
    topic_url = f"{endpoint}/v1/projects/{project}/topics/{topic}:publish"
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    message_id = judge_publish(*post(topic_url, publish_body(command_data(request)), headers, retry))
    outputs = {"request-id": request.request_id, "outcome": "published", "message-id": message_id}
    return Outcome(f"published message {message_id} to {topic} (request {request.request_id})", outputs)


def _credential(env: dict[str, str], variable: str, name: str, mode: str) -> str:
    if not env.get(variable, "").strip():
        raise InputError(f"{name} is required in {mode} mode ({variable})")
    return env[variable].strip()


def parse_args(argv: list[str] | None, env: dict[str, str]) -> argparse.Namespace:
    """Flags, each defaulting to RETRAIN_<FLAG>, then to what GitHub Actions sets, then to DEFAULTS."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    for dest in FLAGS.split():
        names = (f"RETRAIN_{dest.upper()}", *GITHUB_ENV.get(dest, ()))
        default = next((env[n] for n in names if env.get(n)), DEFAULTS.get(dest, ""))
        parser.add_argument(f"--{dest.replace('_', '-')}", dest=dest, default=default, help=f"env {', '.join(names)}")
    return parser.parse_args(argv)


def report(outcome: Outcome, env: dict[str, str]) -> None:
    """Print the result and hand the outputs to the step (GITHUB_OUTPUT), one line each."""
    print(outcome.message)
    if env.get("GITHUB_OUTPUT"):
        with open(env["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
            out.writelines(f"{key}={' '.join(value.splitlines())}\n" for key, value in outcome.outputs.items())


def fail(message: str, env: dict[str, str]) -> None:
    """An error on stderr (an annotation under Actions), the secret and the token blanked out should one be echoed."""
    for name in (SECRET_ENV, TOKEN_ENV):
        if env.get(name):
            message = message.replace(env[name], "***")
    prefix = "::error title=relaunch retrain::" if env.get("GITHUB_ACTIONS") == "true" else "error: "
    print(prefix + " ".join(message.splitlines()), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    env = dict(os.environ)
    try:
        report(send(parse_args(argv, env), env), env)
    except InputError as exc:
        fail(f"{exc} (nothing was sent)", env)
        return 2
    except SendError as exc:
        fail(str(exc), env)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

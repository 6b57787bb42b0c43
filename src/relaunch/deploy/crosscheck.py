"""Cross-references between the triggers file's tables, and the pipelines it names; each problem names its field."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from relaunch.deploy.infra import Infra
from relaunch.deploy.validators import secret_like_key, secret_shape
from relaunch.domain.model import FunctionName as F
from relaunch.domain.spec import PipelineSpec
from relaunch.functions.main import ENTRY_POINTS
from relaunch.settings import Settings

Problem = tuple[str, str]  # (field, what is wrong)

WEBHOOKS = {F.GITHUB_WEBHOOK, F.WANDB_WEBHOOK}
HTTP = {*WEBHOOKS, "dashboard"}  # the entry points served over HTTP (the dashboard is no FunctionName: no topic)
INGEST = {*WEBHOOKS, F.DRIFT_ALERT, F.SCHEDULE_TICK, F.BUILD_STATUS, F.VERTEX_JOB}  # they publish commands
SET_BY_DEPLOY = {"RELAUNCH_PROFILE", "RELAUNCH_GCP_PROJECT", "RELAUNCH_GCP_REGION"}
SECRET_SETTINGS = {
    f"RELAUNCH_{name.upper()}" for name, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)
}
EVENT_TIMEOUT_S = 540  # Cloud Functions (2nd gen) limit for event-driven functions; HTTP ones get 3600
GITHUB_SECRET = "RELAUNCH_GITHUB_WEBHOOK_SECRET"
WANDB_SECRETS = ("RELAUNCH_WANDB_WEBHOOK_TOKEN", "RELAUNCH_WANDB_WEBHOOK_SECRET")


def crosscheck(infra: Infra, specs: dict[str, PipelineSpec] | None) -> list[Problem]:
    """Every broken reference or unsafe value in a well-shaped Infra."""
    checks = (_unique, _accounts, _topics, _functions, _consumers, _environment, _webhooks, _dashboard)
    problems = [p for check in checks for p in check(infra)]
    if specs is not None:
        problems += _pipelines(infra, specs)
    return problems


def warnings(infra: Infra, specs: dict[str, PipelineSpec]) -> list[str]:
    """Declarations that are valid but would do nothing: W&B automations no pipeline acts on."""
    found = []
    for a in infra.wandb.automations if infra.wandb else []:
        watching = [
            s.name
            for s in specs.values()
            if s.source.wandb
            and (s.source.wandb.entity, s.source.wandb.project) == (a.entity, a.project)
            and a.collection in (None, s.source.wandb.collection)
        ]
        if not watching:
            where = "/".join(p for p in (a.entity, a.project, a.collection) if p)
            found.append(
                f"W&B automation {a.name}: no pipeline's source.wandb watches {where}; wandb_webhook will "
                "answer its events 202 ignored until one does"
            )
    return found


def _dupes(field: str, names: Iterable[str]) -> Iterator[Problem]:
    for name, count in Counter(names).items():
        if count > 1:
            yield field, f"{name!r} is declared {count} times"


def _unique(infra: Infra) -> Iterator[Problem]:
    yield from _dupes("service_accounts", (s.name for s in infra.service_accounts))
    yield from _dupes("storage.buckets", (b.name for b in infra.storage.buckets))
    yield from _dupes("topics", (t.name for t in infra.topics))
    yield from _dupes("subscriptions", (s.name for s in infra.subscriptions))
    yield from _dupes("functions", (f.name for f in infra.functions))
    yield from _dupes("schedules", (s.job for s in infra.schedules))
    yield from _dupes("wandb.automations", (a.name for a in (infra.wandb.automations if infra.wandb else [])))


def _accounts(infra: Infra) -> Iterator[Problem]:
    accounts = {s.name for s in infra.service_accounts}
    buckets = {b.name for b in infra.storage.buckets}
    for i, sa in enumerate(infra.service_accounts):
        for target in sa.act_as:
            if target not in accounts:
                yield f"service_accounts[{i}].act_as", f"{target!r} is not a declared service account"
        for bucket in sa.bucket_roles:
            if bucket not in buckets:
                yield f"service_accounts[{i}].bucket_roles", f"{bucket!r} is not a declared bucket"
    for i, f in enumerate(infra.functions):
        if f.service_account not in accounts:
            yield f"functions[{i}].service_account", f"{f.service_account!r} is not a declared service account"
    for i, t in enumerate(infra.triggers):
        if t.service_account not in accounts:
            yield f"triggers[{i}].service_account", f"{t.service_account!r} is not a declared service account"


def _topics(infra: Infra) -> Iterator[Problem]:
    topics = {t.name for t in infra.topics}
    refs: list[tuple[str, str]] = [(f"subscriptions[{i}].topic", s.topic) for i, s in enumerate(infra.subscriptions)]
    refs += [(f"triggers[{i}].topic", t.topic) for i, t in enumerate(infra.triggers)]
    refs += [
        (f"triggers[{i}].dead_letter.topic", t.dead_letter.topic) for i, t in enumerate(infra.triggers) if t.dead_letter
    ]
    refs += [(f"functions[{i}].publishes", n) for i, f in enumerate(infra.functions) for n in f.publishes]
    refs += [(f"schedules[{i}].topic", s.topic) for i, s in enumerate(infra.schedules)]
    refs += [("reconcile.topic", infra.reconcile.topic)] if infra.reconcile else []
    refs += [("drift_sink.topic", infra.drift_sink.topic)] if infra.drift_sink else []
    refs += [("job_sink.topic", infra.job_sink.topic)] if infra.job_sink else []
    for where, name in refs:
        if name not in topics:
            yield where, f"{name!r} is not a declared topic"
    for i, t in enumerate(infra.triggers):
        if t.dead_letter and t.dead_letter.topic == t.topic:
            yield f"triggers[{i}].dead_letter.topic", "must differ from the trigger's own topic"
        if not t.retry and (t.dead_letter or t.retry_policy):
            yield f"triggers[{i}].retry", "dead_letter and retry_policy need retry: true"


def _functions(infra: Infra) -> Iterator[Problem]:
    names = {f.name: f for f in infra.functions}
    for i, f in enumerate(infra.functions):
        if f.entry_point not in ENTRY_POINTS:
            yield f"functions[{i}].entry_point", f"{f.entry_point!r} is not one of {', '.join(sorted(ENTRY_POINTS))}"
        elif (f.trigger == "http") != (f.entry_point in HTTP):
            want = "http" if f.entry_point in HTTP else "pubsub"
            yield f"functions[{i}].trigger", f"{f.entry_point} is a {want} function"
        if f.trigger == "pubsub" and f.timeout_s > EVENT_TIMEOUT_S:
            yield f"functions[{i}].timeout_s", f"an event-driven function runs at most {EVENT_TIMEOUT_S} s"
        count = sum(t.function == f.name for t in infra.triggers)
        if f.trigger == "pubsub" and count != 1:
            yield f"functions[{i}]", f"a Pub/Sub function needs exactly one trigger, {f.name!r} has {count}"
    for i, t in enumerate(infra.triggers):
        if t.function not in names:
            yield f"triggers[{i}].function", f"{t.function!r} is not a declared function"
        elif names[t.function].trigger != "pubsub":
            yield f"triggers[{i}].function", f"{t.function!r} is an HTTP function"


def _consumers(infra: Infra) -> Iterator[Problem]:
    """Each topic relaunch publishes to reaches the function that reads it."""
    fed = {(infra.function(t.function).entry_point, t.topic) for t in infra.triggers if t.function in _names(infra)}
    wanted = [(F.ORCHESTRATOR, infra.commands_topic(), "the orchestrator's trigger (RELAUNCH_PUBSUB_COMMANDS_TOPIC)")]
    wanted += [(F.SCHEDULE_TICK, s.topic, f"schedules[{i}].topic") for i, s in enumerate(infra.schedules)]
    wanted += [(F.RECONCILE, infra.reconcile.topic, "reconcile.topic")] if infra.reconcile else []
    wanted += [(F.DRIFT_ALERT, infra.drift_sink.topic, "drift_sink.topic")] if infra.drift_sink else []
    wanted += [(F.VERTEX_JOB, infra.job_sink.topic, "job_sink.topic")] if infra.job_sink else []
    for entry_point, topic, where in wanted:
        if (entry_point, topic) not in fed:
            yield where, f"no trigger delivers {topic!r} to a {entry_point} function"
    for i, f in enumerate(infra.functions):
        if f.entry_point in INGEST and infra.commands_topic() not in f.publishes:
            yield f"functions[{i}].publishes", f"{f.entry_point} publishes commands: list {infra.commands_topic()!r}"


def _names(infra: Infra) -> set[str]:
    return {f.name for f in infra.functions}


def _environment(infra: Infra) -> Iterator[Problem]:
    yield from _env_table("env", infra.env)
    for i, f in enumerate(infra.functions):
        yield from _env_table(f"functions[{i}].env", f.env)
        for key, name in f.secrets.items():
            where = f"functions[{i}].secrets.{key}"
            if key.startswith("RELAUNCH_") and key not in SECRET_SETTINGS:
                yield where, f"not a secret setting; secret settings: {', '.join(sorted(SECRET_SETTINGS))}"
            if secret_shape(name):
                yield where, f"must name a Secret Manager secret, and this looks like {secret_shape(name)}"
            if key in f.env or key in infra.env:
                yield where, "also set as a plain environment variable"
    if infra.wandb and secret_shape(infra.wandb.api_key_secret):
        yield "wandb.api_key_secret", "must name a Secret Manager secret, not hold a key"
    vertex_sa = infra.env.get("RELAUNCH_VERTEX_SERVICE_ACCOUNT")
    if vertex_sa and vertex_sa not in {infra.sa_email(s.name) for s in infra.service_accounts}:
        yield "env.RELAUNCH_VERTEX_SERVICE_ACCOUNT", f"{vertex_sa!r} is not a declared service account's email"


def _env_table(where: str, env: dict[str, str]) -> Iterator[Problem]:
    for key, value in env.items():
        at = f"{where}.{key}"
        if key in SET_BY_DEPLOY:
            yield at, "set by deploy from project and region; remove it"
        elif key in SECRET_SETTINGS or secret_like_key(key):
            yield at, "looks like a secret: reference it under secrets (ENV: secret-name), never inline"
        elif secret_shape(value):
            yield at, f"the value looks like {secret_shape(value)}: put it in Secret Manager and list it under secrets"
        elif "\n" in value:
            yield at, "must be one line"
        elif key.startswith("RELAUNCH_"):
            yield from _setting(at, key, value)


def _setting(where: str, key: str, value: str) -> Iterator[Problem]:
    field = Settings.model_fields.get(key.removeprefix("RELAUNCH_").lower())
    if field is None:
        yield where, "not a relaunch setting (see src/relaunch/settings.py)"
        return
    kind: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    try:
        adapter.validate_python(value)
    except ValidationError as exc:
        yield where, exc.errors()[0]["msg"]


def _webhooks(infra: Infra) -> Iterator[Problem]:
    by_name = {f.name: f for f in infra.functions}
    for i, f in enumerate(infra.functions):
        if f.entry_point == F.GITHUB_WEBHOOK and GITHUB_SECRET not in f.secrets:
            yield f"functions[{i}].secrets", f"github_webhook needs {GITHUB_SECRET} (it refuses every delivery without)"
        if f.entry_point == F.WANDB_WEBHOOK and not any(k in f.secrets for k in WANDB_SECRETS):
            yield f"functions[{i}].secrets", f"wandb_webhook needs {' and/or '.join(WANDB_SECRETS)}"
    for i, hook in enumerate(infra.github_webhooks):
        target = by_name.get(hook.function)
        if target is None or target.entry_point != F.GITHUB_WEBHOOK:
            yield f"github_webhooks[{i}].function", f"{hook.function!r} is not a declared github_webhook function"
        elif target.secrets.get(GITHUB_SECRET) != hook.secret:
            yield f"github_webhooks[{i}].secret", f"must be the secret {hook.function} reads ({GITHUB_SECRET})"
    for i, a in enumerate(infra.wandb.automations if infra.wandb else []):
        target = by_name.get(a.function)
        if target is None or target.entry_point != F.WANDB_WEBHOOK:
            yield f"wandb.automations[{i}].function", f"{a.function!r} is not a declared wandb_webhook function"


def _dashboard(infra: Infra) -> Iterator[Problem]:
    """One dashboard at most: reports link to one URL, and IAP guards the one that is declared."""
    count = sum(f.entry_point == "dashboard" for f in infra.functions)
    if count > 1:
        yield "functions", f"one dashboard function at most (reports link to one page), {count} are declared"
    iap = infra.dashboard.iap
    if iap is not None:
        yield from _dupes("dashboard.iap.members", iap.members)
        if count == 0:
            yield "dashboard.iap", "no function with entry point dashboard is declared for IAP to guard"


def _pipelines(infra: Infra, specs: dict[str, PipelineSpec]) -> Iterator[Problem]:
    for i, s in enumerate(infra.schedules):
        if s.pipeline not in specs:
            yield f"schedules[{i}].pipeline", f"no pipeline {s.pipeline!r} (pipelines: {', '.join(sorted(specs))})"
    for i, hook in enumerate(infra.github_webhooks):
        if not any(spec.source.watches_repo(hook.repo) for spec in specs.values()):
            yield f"github_webhooks[{i}].repo", f"no pipeline watches {hook.repo}"

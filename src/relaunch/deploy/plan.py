"""The deploy plan: a pure function of the triggers file (and the pipelines) to an ordered list of steps.

Order is dependency order: APIs, then identities and their roles, storage, the secrets (checked, never created),
topics before anything that uses them, functions before their triggers' subscriptions and before the dashboard's
URL check and IAP (plan_dashboard.py), then what feeds the
functions from outside (scheduler jobs, the log sinks, GitHub webhooks, W&B automations), which need topics and
function URLs to exist.

Triggers: a Pub/Sub function is deployed with `gcloud functions deploy --trigger-topic=T [--retry]`, not with a
separate `gcloud eventarc triggers create`. Through the Cloud Functions v2 API the function owns its Eventarc
trigger: it is created, updated and deleted with the function, `--retry` is the documented switch of the
trigger's retry policy (off unless set), and `--trigger-service-account` picks the identity it invokes with.
A separately created trigger would need its own lifecycle and has no `--retry`; its retry policy would be the
Pub/Sub subscription's, which is the one thing both approaches leave to us: Eventarc names the subscription
itself (eventarc-REGION-...), so the dead-letter and backoff policies are set on it after the deploy, found
through `gcloud functions describe` (eventTrigger.trigger) and `gcloud eventarc triggers describe`
(transport.pubsub.subscription).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from relaunch.deploy import plan_iam as iam
from relaunch.deploy.crosscheck import warnings
from relaunch.deploy.infra import Infra, PipelineSchedule, ReconcileSchedule, ServiceAccount
from relaunch.deploy.plan_dashboard import apis, dashboard_steps
from relaunch.deploy.plan_functions import function_steps, trigger_steps
from relaunch.deploy.plan_indexes import index_steps
from relaunch.deploy.plan_outbound import github_step, job_sink_steps, schedule_step, sink_steps, wandb_steps
from relaunch.deploy.step import Step, gcloud, service_agent
from relaunch.domain.spec import PipelineSpec

# gcloud filters on bindings.role: roles that can read a secret, and storage roles that hold without a condition.
SECRET_READERS = "(bindings.role:secretmanager OR bindings.role=roles/owner OR bindings.role=roles/editor)"
UNCONDITIONAL_STORAGE = "bindings.role:storage AND -bindings.condition:*"

SECTIONS = (
    "APIs",
    "service accounts",
    "IAM",
    "storage",
    "secrets",
    "topics",
    "subscriptions",
    "functions",
    "dashboard",
    "trigger subscriptions",
    "scheduler jobs",
    "drift log sink",
    "job log sink",
    "GitHub webhooks",
    "W&B automations",
)


@dataclass(frozen=True)
class Plan:
    """The ordered steps of a deploy, and declarations worth a warning."""

    project: str
    region: str
    steps: tuple[Step, ...]
    warnings: tuple[str, ...] = ()


def build_plan(infra: Infra, specs: dict[str, PipelineSpec]) -> Plan:
    """Every step, in dependency order (see the module docstring)."""
    steps = [
        *_apis(infra),
        *_accounts(infra),
        *_roles(infra),
        *_storage(infra),
        *_secrets(infra),
        *_topics(infra),
        *_subscriptions(infra),
        *(s for f in infra.functions for s in function_steps(infra, f)),
        *dashboard_steps(infra),
        *(s for t in infra.triggers for s in trigger_steps(infra, infra.function(t.function), t)),
        *(schedule_step(infra, job) for job in _jobs(infra)),
        *(sink_steps(infra, infra.drift_sink) if infra.drift_sink else []),
        *(job_sink_steps(infra, infra.job_sink) if infra.job_sink else []),
        *(github_step(infra, hook) for hook in infra.github_webhooks),
        *wandb_steps(infra),
    ]
    return Plan(infra.project, infra.region, tuple(steps), tuple(warnings(infra, specs)))


def _jobs(infra: Infra) -> list[PipelineSchedule | ReconcileSchedule]:
    return [*infra.schedules, *([infra.reconcile] if infra.reconcile else [])]


def _apis(infra: Infra) -> Iterable[Step]:
    for api in apis(infra):
        describe = gcloud(infra.project, "services", "list", "--enabled", f"--filter=config.name={api}",
                          "--format=value(config.name)")  # fmt: skip
        enable = gcloud(infra.project, "services", "enable", api)
        yield Step(f"api {api}", "APIs", describe, enable, expect=api, update=enable)  # listed only when enabled


def _accounts(infra: Infra) -> Iterable[Step]:
    for sa in infra.service_accounts:
        email = infra.sa_email(sa.name)
        describe = gcloud(infra.project, "iam", "service-accounts", "describe", email, "--format=value(email)")
        create = gcloud(
            infra.project, "iam", "service-accounts", "create", sa.name, f"--display-name={sa.display_name}"
        )
        yield Step(f"service account {sa.name}", "service accounts", describe, create, expect=email)


def _roles(infra: Infra) -> Iterable[Step]:
    """Project roles, who may act as whom, and the Pub/Sub agent minting tokens for trigger identities."""
    for sa in infra.service_accounts:
        member = f"serviceAccount:{infra.sa_email(sa.name)}"
        for role in sa.roles:
            yield iam.binding(infra.project, "IAM", iam.project(infra.project), member, sa.name, role)
        for target in sa.act_as:
            where = iam.service_account(infra.sa_email(target))
            yield iam.binding(infra.project, "IAM", where, member, sa.name, "roles/iam.serviceAccountUser")
        if sa.no_secret_access:  # it runs code from pull requests: no role that can read a secret
            yield iam.holds_none(infra.project, "IAM", iam.project(infra.project), member, sa.name, SECRET_READERS)
    agent = service_agent(infra.project, "gcp-sa-pubsub")
    for name in dict.fromkeys(t.service_account for t in infra.triggers):
        # Pub/Sub signs the push requests to the functions as this account (needed in projects from before 2021-04).
        where = iam.service_account(infra.sa_email(name))
        yield iam.binding(
            infra.project, "IAM", where, agent, "Pub/Sub service agent", "roles/iam.serviceAccountTokenCreator"
        )


def _prefix_roles(infra: Infra, sa: ServiceAccount) -> Iterable[Step]:
    """Bucket roles limited to one prefix each, and a check that no unconditional storage role undoes them."""
    member = f"serviceAccount:{infra.sa_email(sa.name)}"
    for grant in sa.prefix_roles:
        condition = iam.Condition(grant.title, grant.expression())
        yield iam.binding(infra.project, "storage", iam.bucket(grant.bucket), member, sa.name, grant.role, condition)
    for bucket in dict.fromkeys(g.bucket for g in sa.prefix_roles):
        yield iam.holds_none(infra.project, "storage", iam.bucket(bucket), member, sa.name, UNCONDITIONAL_STORAGE)


def _storage(infra: Infra) -> Iterable[Step]:
    p, store = infra.project, infra.storage
    for b in store.buckets:
        describe = gcloud(p, "storage", "buckets", "describe", f"gs://{b.name}", "--format=value(name)")
        create = gcloud(p, "storage", "buckets", "create", f"gs://{b.name}", f"--location={b.location or infra.region}",
                        "--uniform-bucket-level-access")  # fmt: skip
        yield Step(f"bucket {b.name}", "storage", describe, create, expect=b.name)
    for sa in infra.service_accounts:
        for bucket, roles in sa.bucket_roles.items():
            member = f"serviceAccount:{infra.sa_email(sa.name)}"
            yield from (iam.binding(p, "storage", iam.bucket(bucket), member, sa.name, role) for role in roles)
        yield from _prefix_roles(infra, sa)
    if store.firestore_database:
        db = f"--database={store.firestore_database}"
        create = gcloud(
            p, "firestore", "databases", "create", db, f"--location={infra.region}", "--type=firestore-native"
        )
        yield Step(
            f"firestore {store.firestore_database}",
            "storage",
            gcloud(p, "firestore", "databases", "describe", db),
            create,
        )
    yield from index_steps(infra)
    if store.image_repository:
        where = [store.image_repository, f"--location={infra.region}"]
        create = gcloud(p, "artifacts", "repositories", "create", *where, "--repository-format=docker",
                        "--description=relaunch training images")  # fmt: skip
        yield Step(f"image repository {store.image_repository}", "storage",
                   gcloud(p, "artifacts", "repositories", "describe", *where), create)  # fmt: skip


def _secrets(infra: Infra) -> Iterable[Step]:
    """Each secret must exist with an enabled version; deploy never creates a value. Then who may read it."""
    names = [n for f in infra.functions for n in f.secrets.values()]
    names += [hook.secret for hook in infra.github_webhooks]
    names += [infra.wandb.api_key_secret] if infra.wandb and infra.wandb.automations else []
    names += [name for sa in infra.service_accounts for name in sa.secrets]
    for name in dict.fromkeys(names):
        describe = gcloud(infra.project, "secrets", "versions", "describe", "latest", f"--secret={name}",
                          "--format=value(state)")  # fmt: skip
        missing = (
            f"Secret Manager secret {name!r} is missing or has no enabled version; deploy never creates secret "
            f'values. Create it: printf %s "$VALUE" | gcloud secrets create {name} --data-file=- '
            f"--project={infra.project} (or add a version: gcloud secrets versions add {name} --data-file=-)"
        )
        yield Step(f"secret {name}", "secrets", describe, None, expect="ENABLED", missing=missing)
    readers = dict.fromkeys((n, f.service_account) for f in infra.functions for n in f.secrets.values())
    readers |= dict.fromkeys((name, sa.name) for sa in infra.service_accounts for name in sa.secrets)
    for name, sa in readers:
        member = f"serviceAccount:{infra.sa_email(sa)}"
        yield iam.binding(infra.project, "secrets", iam.secret(name), member, sa, "roles/secretmanager.secretAccessor")


def _topics(infra: Infra) -> Iterable[Step]:
    for t in infra.topics:
        describe = gcloud(infra.project, "pubsub", "topics", "describe", t.name, "--format=value(name)")
        create = gcloud(infra.project, "pubsub", "topics", "create", t.name)
        yield Step(f"topic {t.name}", "topics", describe, create, expect=f"projects/{infra.project}/topics/{t.name}")
    for topic, sa in dict.fromkeys((t, f.service_account) for f in infra.functions for t in f.publishes):
        member = f"serviceAccount:{infra.sa_email(sa)}"
        yield iam.binding(infra.project, "topics", iam.topic(topic), member, sa, "roles/pubsub.publisher")


def _subscriptions(infra: Infra) -> Iterable[Step]:
    for s in infra.subscriptions:
        describe = gcloud(infra.project, "pubsub", "subscriptions", "describe", s.name, "--format=value(topic)")
        create = gcloud(infra.project, "pubsub", "subscriptions", "create", s.name, f"--topic={s.topic}",
                        f"--message-retention-duration={s.retention_days}d", f"--ack-deadline={s.ack_deadline_s}",
                        "--expiration-period=never")  # fmt: skip
        expect = f"projects/{infra.project}/topics/{s.topic}"
        yield Step(f"subscription {s.name}", "subscriptions", describe, create, expect=expect, missing=(
            f"subscription {s.name} exists on another topic; delete it or rename it"))  # fmt: skip

"""Function steps: `gcloud functions deploy` (with the Eventarc trigger of Pub/Sub functions), the invoker role,
and the retry and dead-letter policies of each trigger's subscription."""

from __future__ import annotations

import hashlib

from relaunch.deploy import plan_iam as iam
from relaunch.deploy.command import Arg, Capture, Cmd, SourceDigest, Word, render_arg, word
from relaunch.deploy.infra import Function, Infra, Trigger
from relaunch.deploy.plan_dashboard import AUDIENCE, PUBLIC_URL, iap_audience, iap_on, public_url
from relaunch.deploy.step import Step, gcloud, service_agent

FUNCTIONS = "functions"
TRIGGERS = "trigger subscriptions"
PUBSUB_AGENT = "gcp-sa-pubsub"
_DELIMITERS = "@:;|#~"  # gcloud's ^D^ list syntax, for values holding commas


def function_steps(infra: Infra, f: Function) -> list[Step]:
    """Deploy one function; a Pub/Sub function's trigger identity then gets the invoker role on it."""
    describe = gcloud(
        infra.project,
        "functions",
        "describe",
        f.name,
        f"--region={infra.region}",
        "--format=value(labels.relaunch_config,labels.relaunch_source)",
    )
    config = deploy_argv(infra, f)
    digest = hashlib.sha256("\0".join(render_arg(a) for a in config).encode()).hexdigest()[:16]
    source = SourceDigest(infra.source)
    labels = word(f"--update-labels=relaunch_config={digest},relaunch_source=", source)
    deploy = gcloud(infra.project, *config, labels)
    # Redeployed only when its declared configuration or its source changed (recorded in its labels).
    steps = [Step(f"function {f.name}", FUNCTIONS, describe, deploy, expect=word(digest, " ", source), update=deploy)]
    trigger = infra.trigger_of(f.name)
    if f.trigger == "pubsub" and trigger is not None:
        caller = infra.sa_email(trigger.service_account)
        where = iam.run_service(f.name, infra.region)
        steps.append(
            iam.binding(
                infra.project, FUNCTIONS, where, f"serviceAccount:{caller}", trigger.service_account, iam.INVOKER
            )
        )
    return steps


def deploy_argv(infra: Infra, f: Function) -> list[Arg]:
    """`gcloud functions deploy` for one function, without the labels that record what was deployed."""
    argv: list[Arg] = ["functions", "deploy", f.name, "--gen2", f"--region={infra.region}"]
    argv += [f"--runtime={infra.runtime}", f"--source={infra.source}", f"--entry-point={f.entry_point}"]
    argv += [f"--service-account={infra.sa_email(f.service_account)}"]
    argv += _trigger_flags(infra, f)
    argv += [f"--memory={f.memory}", f"--timeout={f.timeout_s}s"]
    argv += [f"--min-instances={f.min_instances}", f"--max-instances={f.max_instances}"]
    argv.append(_list_flag("--set-env-vars", deployed_env(infra, f)))
    secrets = {key: f"{name}:latest" for key, name in f.secrets.items()}
    argv.append(_list_flag("--set-secrets", secrets) if secrets else "--clear-secrets")
    return argv


def function_env(infra: Infra, f: Function) -> dict[str, str]:
    """The plain environment the triggers file gives a function (the gcp-emulated demo runs functions with it);
    deployed, it also gets the dashboard's URL (`deployed_env`). Its secrets come from Secret Manager."""
    env = {"RELAUNCH_PROFILE": "gcp", "RELAUNCH_GCP_PROJECT": infra.project, "RELAUNCH_GCP_REGION": infra.region}
    return {**env, **infra.env, **f.env}


def deployed_env(infra: Infra, f: Function) -> dict[str, Arg]:
    """`--set-env-vars`: the file's environment, RELAUNCH_PUBLIC_URL for the reports' links on every function (a
    list of the functions that report would go stale as more learn to; the others never read it), and behind IAP the
    dashboard's RELAUNCH_IAP_AUDIENCE."""
    url = public_url(infra)
    env: dict[str, Arg] = {PUBLIC_URL: url} if url is not None else {}
    env |= {AUDIENCE: iap_audience(infra, f)} if iap_on(infra, f) else {}
    return {**env, **function_env(infra, f)}


def _trigger_flags(infra: Infra, f: Function) -> list[Arg]:
    if iap_on(infra, f):  # IAP lets people through, then calls the service as its agent (the invoker binding)
        return ["--trigger-http", "--no-allow-unauthenticated"]
    if f.trigger == "http":  # GitHub and W&B cannot carry Google credentials: the functions verify signatures
        return ["--trigger-http", "--allow-unauthenticated"]
    t = infra.trigger_of(f.name)
    assert t is not None, f"crosscheck guarantees {f.name} one trigger"
    flags: list[Arg] = [f"--trigger-topic={t.topic}", f"--trigger-service-account={infra.sa_email(t.service_account)}"]
    return [*flags, *(["--retry"] if t.retry else []), "--no-allow-unauthenticated"]


def _list_flag(flag: str, values: dict[str, str] | dict[str, Arg]) -> Arg:
    """`FLAG=K=V,...`, or gcloud's `FLAG=^D^K=VDK=V` when a value holds a comma (D: a character no item holds; a
    deploy-time value here is the project number, digits only)."""
    items = [word(f"{key}=", value) for key, value in sorted(values.items())]
    text = [_literal_text(item) for item in items]
    delimiter, lead = ",", f"{flag}="
    if any("," in t for t in text):
        delimiter = next(d for d in _DELIMITERS if not any(d in t for t in text))
        lead = f"{flag}=^{delimiter}^"
    return word(lead, *(part for i, item in enumerate(items) for part in ((delimiter, item) if i else (item,))))


def _literal_text(arg: Arg) -> str:
    if isinstance(arg, Word):
        return "".join(p for p in arg.parts if isinstance(p, str))
    return arg if isinstance(arg, str) else ""


def trigger_steps(infra: Infra, f: Function, t: Trigger) -> list[Step]:
    """Set the retry and dead-letter policies on the subscription Eventarc made for the trigger, and let the
    Pub/Sub service agent move failed messages (publish to the dead-letter topic, acknowledge on the source)."""
    if not (t.dead_letter or t.retry_policy):
        return []
    subscription = trigger_subscription(infra, f.name)
    fields, expected, flags = _policy(infra, t)
    fmt = f"--format=value({','.join(fields)})"
    describe = gcloud(infra.project, "pubsub", "subscriptions", "describe", subscription, fmt)
    update = gcloud(infra.project, "pubsub", "subscriptions", "update", subscription, *flags)
    missing = f"the Eventarc subscription of {f.name}'s trigger was not found: check the function deployed"
    policy = Step(f"trigger {f.name}: subscription policy", TRIGGERS, describe, None, expected, update, missing)
    if not t.dead_letter:
        return [policy]
    agent, who = service_agent(infra.project, PUBSUB_AGENT), "Pub/Sub service agent"
    source = iam.subscription(subscription, f"subscription of {f.name}'s trigger")
    publish = iam.binding(infra.project, TRIGGERS, iam.topic(t.dead_letter.topic), agent, who, "roles/pubsub.publisher")
    return [policy, publish, iam.binding(infra.project, TRIGGERS, source, agent, who, "roles/pubsub.subscriber")]


def _policy(infra: Infra, t: Trigger) -> tuple[list[str], str, list[Arg]]:
    """The subscription fields to read, their declared values (as describe prints them), and the update flags."""
    fields: list[str] = []
    expected: list[str] = []
    flags: list[Arg] = []
    if t.dead_letter:
        attempts = t.dead_letter.max_delivery_attempts
        fields += ["deadLetterPolicy.deadLetterTopic", "deadLetterPolicy.maxDeliveryAttempts"]
        expected += [f"projects/{infra.project}/topics/{t.dead_letter.topic}", str(attempts)]
        flags += [f"--dead-letter-topic={t.dead_letter.topic}", f"--max-delivery-attempts={attempts}"]
    if t.retry_policy:
        low, high = t.retry_policy.min_backoff_s, t.retry_policy.max_backoff_s
        fields += ["retryPolicy.minimumBackoff", "retryPolicy.maximumBackoff"]
        expected += [f"{low}s", f"{high}s"]
        flags += [f"--min-retry-delay={low}s", f"--max-retry-delay={high}s"]
    return fields, " ".join(expected), flags


def trigger_subscription(infra: Infra, function: str) -> Capture:
    """The subscription Eventarc created for a function's trigger (its name is chosen by Eventarc)."""
    trigger = Capture(_describe_function(infra, function, "eventTrigger.trigger"))
    return Capture(
        gcloud(
            infra.project,
            "eventarc",
            "triggers",
            "describe",
            trigger,
            f"--location={infra.region}",
            "--format=value(transport.pubsub.subscription)",
        )
    )


def _describe_function(infra: Infra, function: str, field: str) -> Cmd:
    return gcloud(
        infra.project, "functions", "describe", function, f"--region={infra.region}", f"--format=value({field})"
    )

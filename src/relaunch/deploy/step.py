"""One step of a deploy plan, and the gcloud command shapes every step shares."""

from __future__ import annotations

from dataclasses import dataclass

from relaunch.deploy.command import Arg, Capture, Cmd, cmd, word


@dataclass(frozen=True)
class Step:
    """A resource: how to see it, how to make it, and (optionally) how it should look and how to fix it.

    The runner describes first. Found and `expect` is None or matches the description's output: nothing to do.
    Found but different: `update` (or `create` when there is no separate update). Not found: `create`. A step
    without `create` is a precondition (a secret, a manual W&B setting): the deploy stops with `missing`.
    """

    id: str
    section: str
    describe: Cmd
    create: Cmd | None
    expect: Arg | None = None
    update: Cmd | None = None
    missing: str = ""
    notes: tuple[str, ...] = ()


def gcloud(project: str, *args: Arg) -> Cmd:
    """A gcloud command pinned to the project (never the caller's active configuration)."""
    return cmd("gcloud", *args, f"--project={project}")


def project_number(project: str) -> Capture:
    """The project's number, which service agents' emails are made of."""
    return Capture(gcloud(project, "projects", "describe", project, "--format=value(projectNumber)"))


def service_agent(project: str, domain: str) -> Arg:
    """A Google-managed service agent, e.g. gcp-sa-pubsub: serviceAccount:service-NUMBER@DOMAIN.iam..."""
    return word("serviceAccount:service-", project_number(project), f"@{domain}.iam.gserviceaccount.com")


def function_url(project: str, region: str, function: str) -> Capture:
    """An HTTP function's URL, known once it is deployed."""
    return Capture(
        gcloud(project, "functions", "describe", function, f"--region={region}", "--format=value(serviceConfig.uri)")
    )


def secret_value(project: str, secret: str) -> Capture:
    """A secret's latest value, resolved in memory at deploy time and never printed."""
    access = gcloud(project, "secrets", "versions", "access", "latest", f"--secret={secret}")
    return Capture(access, secret=True)

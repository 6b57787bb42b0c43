"""IAM binding steps: one role for one member on one resource, checked with get-iam-policy before it is added."""

from __future__ import annotations

from dataclasses import dataclass

from relaunch.deploy.command import Arg, Cmd, word
from relaunch.deploy.step import Step, gcloud

INVOKER = "roles/run.invoker"
IAP_WEB = ("beta", "iap", "web")  # gcloud has IAP on a Cloud Run service (--resource-type=cloud-run) in beta only


@dataclass(frozen=True)
class Resource:
    """Something with an IAM policy: its gcloud group, its name (maybe deploy-time), extra flags, a label."""

    group: tuple[str, ...]
    name: Arg | None  # None: the flags name it
    label: str
    flags: tuple[str, ...] = ()


def project(project_id: str) -> Resource:
    """The project itself."""
    return Resource(("projects",), project_id, f"project {project_id}")


def service_account(email: str) -> Resource:
    """A service account, as a resource others may act as."""
    return Resource(("iam", "service-accounts"), email, f"service account {email.split('@')[0]}")


def bucket(name: str) -> Resource:
    """A Cloud Storage bucket."""
    return Resource(("storage", "buckets"), f"gs://{name}", f"bucket {name}")


def secret(name: str) -> Resource:
    """A Secret Manager secret."""
    return Resource(("secrets",), name, f"secret {name}")


def topic(name: str) -> Resource:
    """A Pub/Sub topic."""
    return Resource(("pubsub", "topics"), name, f"topic {name}")


def subscription(name: Arg, label: str) -> Resource:
    """A Pub/Sub subscription (for a trigger's, the name is only known at deploy time)."""
    return Resource(("pubsub", "subscriptions"), name, label)


def run_service(name: str, region: str) -> Resource:
    """The Cloud Run service of a 2nd gen function (where its invoker role lives)."""
    return Resource(("run", "services"), name, f"function {name}", (f"--region={region}",))


def iap_cloud_run(name: str, region: str) -> Resource:
    """IAP's own policy on a Cloud Run service (a 2nd gen function's): who may pass IAP to reach it."""
    where = ("--resource-type=cloud-run", f"--service={name}", f"--region={region}")
    return Resource(IAP_WEB, None, f"IAP on function {name}", where)


@dataclass(frozen=True)
class Condition:
    """An IAM condition: the binding holds only where `expression` (CEL) is true."""

    title: str
    expression: str

    def flag(self) -> str:
        return f"--condition=expression={self.expression},title={self.title}"


def binding(
    project_id: str,
    section: str,
    resource: Resource,
    member: Arg,
    who: str,
    role: str,
    condition: Condition | None = None,
) -> Step:
    """Grant `role` on `resource` to `member` (`who` names the member readably in the step id), maybe conditionally."""
    titled = f' AND bindings.condition.title="{condition.title}"' if condition else ""
    describe = _roles_held(project_id, resource, f'bindings.role="{role}"{titled}', member)
    add = _add(project_id, resource, member, role, condition)
    # get-iam-policy succeeds with no output when the binding is absent: "differs" means "add it".
    where = f" on {condition.title}" if condition else ""
    return Step(f"iam {resource.label}: {role}{where} for {who}", section, describe, add, expect=role, update=add)


def holds_none(project_id: str, section: str, resource: Resource, member: Arg, who: str, roles: str) -> Step:
    """A check that `member` holds no role matching `roles` (a gcloud filter on bindings.role) on `resource`."""
    describe = _roles_held(project_id, resource, roles, member)
    why = f"{who} must hold no such role on {resource.label}: remove it (it runs code from pull requests)"
    return Step(f"iam {resource.label}: none of {roles} for {who}", section, describe, None, expect="", missing=why)


def _roles_held(project_id: str, resource: Resource, roles: str, member: Arg) -> Cmd:
    """The gcloud call printing the roles matching `roles` (a filter on bindings.role) that `member` holds."""
    if resource.group == ("storage", "buckets"):
        # `gcloud storage buckets get-iam-policy` takes no --filter: the same test runs inside the output format, as
        # gcloud's filter() transform over the bindings (fields relative to a binding), printing the roles it keeps.
        kept = word(roles.replace("bindings.", ""), ' AND members="', member, '"')
        shown = word("--format=value(bindings.filter('", kept, "').map().extract(role).flatten())")
        return gcloud(project_id, *resource.group, "get-iam-policy", *_named(resource), shown)
    flt = word(f'{roles} AND bindings.members="', member, '"')
    return gcloud(
        project_id,
        *resource.group,
        "get-iam-policy",
        *_named(resource),
        "--flatten=bindings[].members",
        word("--filter=", flt),
        "--format=value(bindings.role)",
    )


def _add(project_id: str, resource: Resource, member: Arg, role: str, condition: Condition | None = None) -> Cmd:
    if resource.group == ("run", "services"):  # gcloud's documented way to let a caller invoke a gen2 function
        if role != INVOKER:
            raise ValueError(f"a function's policy takes only {INVOKER}, not {role}")
        verb: tuple[Arg, ...] = ("functions", "add-invoker-policy-binding", *_named(resource))
        return gcloud(project_id, *verb, word("--member=", member))
    if condition is not None:
        flags: tuple[str, ...] = (condition.flag(),)
    else:  # never prompt on conditions (these policies may hold conditional bindings)
        flags = ("--condition=None",) if resource.group in (("projects",), IAP_WEB) else ()
    return gcloud(
        project_id,
        *resource.group,
        "add-iam-policy-binding",
        *_named(resource),
        word("--member=", member),
        f"--role={role}",
        *flags,
    )


def _named(resource: Resource) -> tuple[Arg, ...]:
    """The words naming a resource: its positional name (when it has one), then its flags."""
    return (*([] if resource.name is None else [resource.name]), *resource.flags)

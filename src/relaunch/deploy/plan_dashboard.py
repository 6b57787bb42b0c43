"""The dashboard on GCP: where reports link to it, and Identity-Aware Proxy in front of it when the file opts in.

Public URL: the reports' links (`{RELAUNCH_PUBLIC_URL}/runs/<id>`) need the dashboard's address in the functions that
report before they are deployed. Cloud Run gives every service whose name fits a deterministic URL,
https://SERVICE-PROJECT_NUMBER.REGION.run.app, known before the service exists, so deploy computes it (the project
number is a deploy-time value, like the service agents' emails) and needs no ordering among the functions nor a
second pass. Once the dashboard is deployed, a check reads the URL Cloud Run reports for it (`status.url`, where the
deterministic URL is shown first) and stops the deploy, saying what to set, if the two differ (a name too long for
the deterministic URL, or a custom domain); a RELAUNCH_PUBLIC_URL the triggers file sets wins and is not checked.

IAP (Cloud Run's direct integration, "Configure IAP for Cloud Run"): the function is deployed without public
invocation, IAP is switched on for its service (`gcloud beta run services update --iap`, re-checked after every
function deploy since a redeploy may drop it), IAP's service agent gets the invoker role (IAP calls the service as
that agent once it let a person through), and each declared member gets roles/iap.httpsResourceAccessor on IAP's
policy for the service. The dashboard gets RELAUNCH_IAP_AUDIENCE, so it can verify IAP's signed header and let the
person it names read; the admin token still decides who may act on it.
"""

from __future__ import annotations

from relaunch.deploy import plan_iam as iam
from relaunch.deploy.command import Arg, word
from relaunch.deploy.infra import Function, Infra
from relaunch.deploy.step import Step, gcloud, project_number, service_agent

SECTION = "dashboard"
IAP_API = "iap.googleapis.com"
IAP_ANNOTATION = "run.googleapis.com/iap-enabled"  # what `run services update --iap` sets on the service
ACCESSOR = "roles/iap.httpsResourceAccessor"
PUBLIC_URL = "RELAUNCH_PUBLIC_URL"
AUDIENCE = "RELAUNCH_IAP_AUDIENCE"


def public_url(infra: Infra) -> Arg | None:
    """RELAUNCH_PUBLIC_URL for the functions: the file's own, else the dashboard's deterministic run.app URL."""
    dashboard = infra.dashboard_function()
    if PUBLIC_URL in infra.env or dashboard is None:
        return infra.env.get(PUBLIC_URL)
    return _run_app_url(infra, dashboard)


def _run_app_url(infra: Infra, f: Function) -> Arg:
    return word(f"https://{f.name}-", project_number(infra.project), f".{infra.region}.run.app")


def iap_audience(infra: Infra, f: Function) -> Arg:
    """What IAP signs its header for on this service: the dashboard verifies it (dashboard/iap.py) before it lets the
    person IAP names read."""
    return word("/projects/", project_number(infra.project), f"/locations/{infra.region}/services/{f.name}")


def iap_on(infra: Infra, f: Function) -> bool:
    """Whether `f` is the dashboard and the file puts IAP in front of it."""
    return f.entry_point == "dashboard" and infra.dashboard.iap is not None


def apis(infra: Infra) -> list[str]:
    """The declared APIs, and IAP's when the dashboard is behind it."""
    wanted = [IAP_API] if infra.dashboard.iap is not None and infra.dashboard_function() else []
    return list(dict.fromkeys([*infra.apis, *wanted]))


def dashboard_steps(infra: Infra) -> list[Step]:
    """After the functions are deployed: the URL check, then IAP when declared."""
    f = infra.dashboard_function()
    if f is None:
        return []
    steps = [] if PUBLIC_URL in infra.env else [_url_check(infra, f)]
    return [*steps, *(_iap_steps(infra, f) if iap_on(infra, f) else [])]


def _run_service(infra: Infra, f: Function, fmt: str) -> list[Arg]:
    return ["run", "services", "describe", f.name, f"--region={infra.region}", f"--format=value({fmt})"]


def _url_check(infra: Infra, f: Function) -> Step:
    describe = gcloud(infra.project, *_run_service(infra, f, "status.url"))
    uri = f"gcloud functions describe {f.name} --region={infra.region} --format='value(serviceConfig.uri)'"
    missing = (
        f"{f.name} does not answer at the URL the reports link to (its name may be too long for Cloud Run's "
        f"deterministic URL): set {PUBLIC_URL} in the triggers file's env to its URL ({uri}) and deploy again"
    )
    note = f"the reports link here ({PUBLIC_URL}); a service answering elsewhere stops the deploy, saying what to set"
    return Step(f"dashboard {f.name}: URL", SECTION, describe, None, _run_app_url(infra, f), None, missing, (note,))


def _iap_steps(infra: Infra, f: Function) -> list[Step]:
    agent = word("service-", project_number(infra.project), "@gcp-sa-iap.iam.gserviceaccount.com")
    ensure = gcloud(infra.project, "beta", "services", "identity", "create", f"--service={IAP_API}",
                    "--format=value(email)")  # fmt: skip
    missing = "IAP's service agent could not be made: check that iap.googleapis.com is enabled"
    note = "identity create is Google's get-or-create: as the check, it makes the agent if missing and prints it"
    made = Step(f"dashboard {f.name}: IAP service agent", SECTION, ensure, None, agent, None, missing, (note,))
    describe = gcloud(infra.project, *_run_service(infra, f, f"metadata.annotations['{IAP_ANNOTATION}']"))
    enable = gcloud(infra.project, "beta", "run", "services", "update", f.name, f"--region={infra.region}", "--iap")
    switched = Step(f"dashboard {f.name}: IAP", SECTION, describe, None, "true", enable)
    caller = service_agent(infra.project, "gcp-sa-iap")
    invoker = iam.binding(infra.project, SECTION, iam.run_service(f.name, infra.region), caller, "IAP service agent",
                          iam.INVOKER)  # fmt: skip
    guarded = iam.iap_cloud_run(f.name, infra.region)
    members = infra.dashboard.iap.members if infra.dashboard.iap else []
    grants = [iam.binding(infra.project, SECTION, guarded, m, m, ACCESSOR) for m in members]
    return [made, switched, invoker, *grants]

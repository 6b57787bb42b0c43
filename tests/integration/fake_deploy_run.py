"""The fake gcloud's Cloud Run and beta commands (see fake_deploy_cli.py): a function's Cloud Run service (its URL,
the IAP switch) and IAP's service agent. A function's service exists once the function is deployed."""

from __future__ import annotations

import fake_deploy_cli as cli

IAP = "run.googleapis.com/iap-enabled"


def run_services(state: dict, pos: list[str], named: dict) -> str:
    """`run services describe NAME --format=value(FIELD)` and `beta run services update NAME --iap`."""
    name = pos[3]
    if name not in state.get("functions", {}):
        raise cli.not_found(f"service {name}")
    annotations = state.setdefault("run_annotations", {}).setdefault(name, {})
    if pos[2] == "update":
        if "iap" not in named:
            raise cli.Exit(2, f"fake gcloud: unsupported run services update {named}\n")
        annotations[IAP] = "true"
        cli.changed(state)
        return ""
    fmt = named["format"]
    if fmt == f"value(metadata.annotations['{IAP}'])":
        return annotations.get(IAP, "") + "\n"
    assert fmt == "value(status.url)", fmt
    moved = state.get("run_urls", {}).get(name)  # a test's service without the deterministic URL
    return (moved or f"https://{name}-{cli.NUMBER}.{named['region']}.run.app") + "\n"  # deterministic: shown first


def beta(state: dict, pos: list[str], named: dict) -> str:
    if pos[1:3] == ["run", "services"]:
        return run_services(state, pos[1:], named)
    if pos[1:4] == ["services", "identity", "create"] and named.get("service") == "iap.googleapis.com":
        if "iap.googleapis.com" not in state["apis"]:
            raise cli.Exit(1, "ERROR: FAILED_PRECONDITION: iap.googleapis.com is not enabled\n")
        return cli.fields({"email": f"service-{cli.NUMBER}@gcp-sa-iap.iam.gserviceaccount.com"}, named["format"])
    raise cli.Exit(2, f"fake gcloud: unsupported command {pos}\n")

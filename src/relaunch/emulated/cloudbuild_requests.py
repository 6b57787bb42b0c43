"""What the Cloud Build stand-in refuses in a CreateBuild body, and how it says so (as the real API answers).

A body is checked against the `Build` schema of the cloudbuild v1 discovery document
(discovery/cloudbuild.v1.Build.json) and against Cloud Build's rules for secrets. The SDK's REST transport sends enums
as numbers (`$alt=json;enum-encoding=int`), which the API reads as the proto's enum numbers; the discovery document
lists only the names, so numbers are turned into names with the proto's descriptor (the server's own knowledge)
before the body is checked and stored.
"""

from __future__ import annotations

import re
from typing import Any

from relaunch.emulated import proto_enums
from relaunch.emulated.discovery_schema import document, problems

DOCUMENT = "cloudbuild.v1.Build"
_RULES = ("build.steps.secretEnv:", "build.availableSecrets.")  # Cloud Build's own checks, not the JSON parser's
_VERSION_NAME = re.compile(r"projects/[^/]+/secrets/[^/]+/versions/[^/]+")


def build_problems(body: Any) -> list[str]:
    """Every way a CreateBuild body breaks the published `Build` schema or the secrets rules (empty: valid).

    Enums may come by number (the REST transport sends them so); a number the proto does not define is a problem."""
    if not isinstance(body, dict):
        return [f"build: must be object, got {type(body).__name__}"]
    build = named_enums(body)
    found = [re.sub(r"^Build", "build", line) for line in problems(document(DOCUMENT), "Build", build)]
    secrets = secrets_problem(build) if not found else None
    return found + ([secrets] if secrets else [])


def secrets_problem(build: dict[str, Any]) -> str | None:
    """Cloud Build's rules for secrets (cloudbuild.v1 SecretManagerSecret, BuildStep.secretEnv): each secretEnv a step
    names is defined in availableSecrets, each defined one is used by a step, and versions are full resource names."""
    available = build.get("availableSecrets", {}).get("secretManager", [])
    defined = {s.get("env", ""): s.get("versionName", "") for s in available}
    used = {env for step in build.get("steps", []) for env in step.get("secretEnv", [])}
    bad = [v for v in defined.values() if not _VERSION_NAME.fullmatch(v)]
    if used - set(defined):
        return f"build.steps.secretEnv: invalid build: {sorted(used - set(defined))} not defined in availableSecrets"
    if set(defined) - used:
        unused = sorted(set(defined) - used)
        return f"build.availableSecrets.secretManager.env: invalid build: {unused} not used by any step"
    if bad:
        return f"build.availableSecrets.secretManager.versionName: {bad[0]!r} is not projects/*/secrets/*/versions/*"
    return None


def invalid_argument(found: list[str]) -> dict[str, Any]:
    """Google's JSON error for a request the API refuses: 400 INVALID_ARGUMENT, each field path in a violation."""
    violations = [{"field": line.split(":", 1)[0], "description": line} for line in found]
    return {
        "error": {
            "code": 400,
            "message": ("" if found[0].startswith(_RULES) else "Invalid JSON payload received. ") + "; ".join(found),
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}],
        }
    }


def named_enums(build: dict[str, Any]) -> dict[str, Any]:
    """`build` with every enum given by number (what the REST transport sends) given by name, as the API reads it."""
    from google.cloud.devtools import cloudbuild_v1

    named: dict[str, Any] = proto_enums.named_enums(cloudbuild_v1.Build.pb().DESCRIPTOR, build)
    return named

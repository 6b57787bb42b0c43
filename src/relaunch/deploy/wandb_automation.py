"""W&B automations through the W&B SDK (`wandb.automations`), as commands a deploy plan can run:

    python3 -m relaunch.deploy.wandb_automation integration --entity E --name HOOK   # prints the hook's URL
    python3 -m relaunch.deploy.wandb_automation describe --entity E --name NAME      # prints NAME if it exists
    python3 -m relaunch.deploy.wandb_automation create --entity E --project P --name NAME --event EVENT
        [--collection C --artifact-type T] [--alias-regex R] --integration HOOK --payload JSON

Authenticates with WANDB_API_KEY. A missing integration or automation exits 1 with NOT_FOUND on stderr, the
convention the deploy runner reads. W&B has no API to create webhook integrations: that one step is manual.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EVENTS = ("CREATE_ARTIFACT", "ADD_ARTIFACT_ALIAS", "LINK_ARTIFACT")
DESCRIPTION = "relaunch: evaluate, gate and promote W&B model versions (created by relaunch deploy)"


def new_automation(
    name: str, event: str, alias_regex: str | None, payload: dict[str, Any], scope: Any, integration: Any
) -> Any:
    """The SDK's NewAutomation: `event` on `scope`, filtered by alias, posting `payload` to `integration`."""
    from wandb.automations import (
        ArtifactEvent,
        NewAutomation,
        OnAddArtifactAlias,
        OnCreateArtifact,
        OnLinkArtifact,
        SendWebhook,
    )

    kinds: dict[str, Any] = {
        "CREATE_ARTIFACT": OnCreateArtifact,
        "ADD_ARTIFACT_ALIAS": OnAddArtifactAlias,
        "LINK_ARTIFACT": OnLinkArtifact,
    }
    alias = {"filter": ArtifactEvent.alias.matches_regex(alias_regex)} if alias_regex else {}
    trigger = kinds[event](scope=scope, **alias)
    action = SendWebhook.from_integration(integration, payload=payload)
    return NewAutomation(name=name, description=DESCRIPTION, event=trigger, action=action)


def _integration(api: Any, entity: str, name: str) -> Any | None:
    return next((hook for hook in api.webhook_integrations(entity=entity) if hook.name == name), None)


def cmd_integration(api: Any, args: argparse.Namespace) -> int:
    """Print the URL a webhook integration posts to."""
    hook = _integration(api, args.entity, args.name)
    if hook is None:
        print(f"NOT_FOUND: no webhook integration {args.name!r} in W&B entity {args.entity!r}", file=sys.stderr)
        return 1
    print(hook.url_endpoint)
    return 0


def cmd_describe(api: Any, args: argparse.Namespace) -> int:
    """Print the automation's name if it exists."""
    found = next(iter(api.automations(entity=args.entity, name=args.name)), None)
    if found is None:
        print(f"NOT_FOUND: no automation {args.name!r} in W&B entity {args.entity!r}", file=sys.stderr)
        return 1
    print(found.name)
    return 0


def cmd_create(api: Any, args: argparse.Namespace) -> int:
    """Create the automation on its collection (or project) with the integration and payload."""
    hook = _integration(api, args.entity, args.integration)
    if hook is None:
        print(f"no webhook integration {args.integration!r} in W&B entity {args.entity!r}", file=sys.stderr)
        return 1
    if args.collection:
        scope = api.artifact_collection(args.artifact_type, f"{args.entity}/{args.project}/{args.collection}")
    else:
        scope = api.project(args.project, entity=args.entity)
    payload = json.loads(args.payload)
    api.create_automation(new_automation(args.name, args.event, args.alias_regex, payload, scope, hook))
    print(f"created W&B automation {args.name}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m relaunch.deploy.wandb_automation")
    sub = p.add_subparsers(dest="command", required=True)
    for name, func in (("integration", cmd_integration), ("describe", cmd_describe), ("create", cmd_create)):
        cmd = sub.add_parser(name)
        cmd.add_argument("--entity", required=True)
        cmd.add_argument("--name", required=True)
        cmd.set_defaults(func=func)
        if name == "create":
            cmd.add_argument("--project", required=True)
            cmd.add_argument("--event", required=True, choices=EVENTS)
            cmd.add_argument("--collection")
            cmd.add_argument("--artifact-type", default="model")
            cmd.add_argument("--alias-regex")
            cmd.add_argument("--integration", required=True)
            cmd.add_argument("--payload", required=True, help="the JSON payload template")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand against W&B."""
    args = _parser().parse_args(argv)
    try:
        import wandb
    except ImportError:
        print("the W&B SDK is not installed: pip install 'relaunch[wandb]'", file=sys.stderr)
        return 3
    try:
        return int(args.func(wandb.Api(), args))
    except Exception as exc:  # the SDK's errors carry the API's answer; the runner shows this line
        print(f"W&B {args.command} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

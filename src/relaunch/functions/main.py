"""Every function's entry point, in one module: the source functions-framework and `gcloud functions deploy` load."""

from relaunch.functions.github_webhook import github_webhook
from relaunch.functions.orchestrator import orchestrator

__all__ = ["github_webhook", "orchestrator"]

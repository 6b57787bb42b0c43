"""Deploy source for `gcloud functions deploy --source functions/ --entry-point NAME`.

Each Cloud Function is one of the names below; requirements.txt beside this file installs relaunch itself.
"""

from relaunch.functions.main import github_webhook, orchestrator

__all__ = ["github_webhook", "orchestrator"]

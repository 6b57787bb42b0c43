"""Deploy source for `gcloud functions deploy NAME --source functions/ --entry-point NAME`.

Each Cloud Function is one of the names in relaunch.functions.main.ENTRY_POINTS; requirements.txt beside this file
installs relaunch itself. Names resolve lazily, so each function imports only its own module.
"""

from relaunch.functions.main import ENTRY_POINTS, __getattr__  # noqa: F401

__all__ = sorted(ENTRY_POINTS)

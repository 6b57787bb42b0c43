"""Local stand-ins of the Google Cloud, GitHub and W&B services relaunch talks to, at their HTTP boundary.

They answer what the real services answer to the requests the real SDKs send, and refuse a request body that the
service's published description does not allow (Google's discovery documents, GitHub's OpenAPI description, the
queries the wandb SDK sends): `relaunch demo --profile gcp-emulated` runs the GCP code path on them, and the
adapters' boundary tests use them. Nothing in relaunch's product code imports this package.
"""

"""GitHub adapters (PyGithub): the notifier that reports runs as commit statuses, check runs and deployments."""

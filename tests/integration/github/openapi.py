"""The OpenAPI request validator moved to relaunch.emulated.github_openapi; re-exported for the boundary tests."""

from relaunch.emulated.github_openapi import (
    ENFORCED,
    SUPPLEMENT,
    assert_conforms,
    body_problems,
    operation_for,
    problems,
)

__all__ = ["ENFORCED", "SUPPLEMENT", "assert_conforms", "body_problems", "operation_for", "problems"]

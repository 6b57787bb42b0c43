"""The words of a health verdict too quiet to judge: they name the number of requests that would be enough."""

from __future__ import annotations

import pytest

from relaunch.domain.health import HealthLimits, assess
from relaunch.domain.model import EndpointHealth


@pytest.mark.parametrize(("min_requests", "needed"), [(0, 1), (1, 1), (20, 20)])
def test_an_idle_version_is_unknown_and_says_how_many_requests_would_judge_it(min_requests: int, needed: int) -> None:
    verdict = assess(EndpointHealth(version="v1"), HealthLimits(min_requests=min_requests))
    assert verdict.state == "unknown"
    assert verdict.detail == f"only 0 requests (< {needed} to judge)"  # never "< 0": zero requests are not < 0

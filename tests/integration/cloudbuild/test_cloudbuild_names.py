"""Issue 13: Cloud Build gets only checked SHAs and refs, and never a clone URL of the machine it does not run on."""

from __future__ import annotations

import pytest

from relaunch.emulated.cloudbuild import FakeCloudBuild
from tests.integration.cloudbuild.test_cloudbuild_builder import fake, make_builder, make_run  # noqa: F401

pytest.importorskip("google.cloud.devtools.cloudbuild_v1", reason="google-cloud-build is not installed")


@pytest.mark.parametrize(
    ("trigger", "named"),
    [
        ({"sha": "--orphan=pwned"}, "trigger.sha"),
        ({"sha": "HEAD"}, "trigger.sha"),
        ({"sha": None, "ref": "--upload-pack=touch /tmp/x"}, "trigger.ref"),
        ({"sha": None, "ref": "refs/heads/a..b"}, "trigger.ref"),
        ({"sha": None, "ref": "refs/heads/-x"}, "trigger.ref"),
        ({"clone_url": "file:///srv/digits"}, "trigger.clone_url"),
        ({"clone_url": "ext::sh -c touch% /tmp/pwned"}, "trigger.clone_url"),
        ({"clone_url": "--upload-pack=touch /tmp/x"}, "trigger.clone_url"),
    ],
)
def test_a_bad_sha_ref_or_clone_url_is_refused_before_any_build_is_submitted(
    fake: FakeCloudBuild,  # noqa: F811
    trigger: dict[str, object],
    named: str,
) -> None:
    with pytest.raises(ValueError, match=named) as caught:
        make_builder(fake).build(make_run(**trigger), "run-42:build")
    assert "run-42" in str(caught.value) and not fake.builds


def test_a_file_clone_url_says_it_belongs_to_the_embedded_profile(fake: FakeCloudBuild) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="embedded"):
        make_builder(fake).build(make_run(clone_url="file:///srv/digits"), "run-42:build")

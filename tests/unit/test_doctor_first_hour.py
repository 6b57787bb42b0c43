"""`relaunch doctor` names what a new user would otherwise find out from a failed run (issue 17)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from relaunch import doctor
from relaunch.config_files import load_specs
from relaunch.doctor import diagnose, render
from relaunch.settings import Settings

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
SCHEDULED = """\
name: {name}
source: {{repo: acme/{name}{clone_url}}}
train: {{command: [python, train.py]}}
evaluate: {{command: [python, evaluate.py]}}
gate: {{floors: {{accuracy: 0.9}}}}
drift: {{min_severity: warning}}
endpoint: {name}
"""


def installed(name: str) -> bool:
    return True


def specs_folder(tmp_path: Path) -> Path:
    """Two pipelines retrained by schedule and drift: one without source.clone_url, one with."""
    (tmp_path / "nightly.yaml").write_text(SCHEDULED.format(name="nightly", clone_url=""))
    pinned = ", clone_url: 'file:///srv/pinned'"
    (tmp_path / "pinned.yaml").write_text(SCHEDULED.format(name="pinned", clone_url=pinned))
    return tmp_path


def test_a_pipeline_without_clone_url_is_named_in_the_embedded_profile(tmp_path: Path) -> None:
    settings = Settings(pipelines_dir=specs_folder(tmp_path), github_webhook_secret=SecretStr("s"))
    findings = diagnose(settings, env={}, installed=installed, sandbox_probe=lambda: None)
    flagged = {f.subject: f for f in findings if "clone_url" in f.detail}
    assert list(flagged) == ["pipeline nightly"], render(findings)
    detail = flagged["pipeline nightly"].detail
    assert flagged["pipeline nightly"].level == "warn"
    assert "https://github.com/acme/nightly.git" in detail and "set source.clone_url" in detail
    assert "file:///" in detail  # what to set it to for a repository on this machine


def test_the_gcp_profile_clones_from_github_and_is_not_warned(tmp_path: Path) -> None:
    (tmp_path / "nightly.yaml").write_text(SCHEDULED.format(name="nightly", clone_url=""))
    gcp = Settings(pipelines_dir=tmp_path, profile="gcp", gcp_project="p", github_webhook_secret=SecretStr("s"))
    findings = diagnose(gcp, env={}, installed=installed)
    assert not [f for f in findings if f.subject == "pipeline nightly"], render(findings)


def test_up_warns_at_startup_with_the_same_words(tmp_path: Path) -> None:
    settings = Settings(pipelines_dir=specs_folder(tmp_path))
    lines = doctor.startup_warnings(settings, load_specs(settings.pipelines_dir))
    assert len(lines) == 1 and lines[0].startswith("warning: pipeline nightly: "), lines
    assert "set source.clone_url" in lines[0] and "\n" not in lines[0]
    assert doctor.startup_warnings(settings.model_copy(update={"builder": "cloudbuild"}), load_specs(tmp_path)) == []


def test_slack_not_configured_is_an_optional_finding_saying_what_to_set() -> None:
    findings = diagnose(Settings(pipelines_dir=PIPELINES), env={}, installed=installed, sandbox_probe=lambda: None)
    (slack,) = [f for f in findings if f.subject == "slack notifier"]
    assert slack.level == "optional" and "RELAUNCH_SLACK_WEBHOOK_URL" in slack.detail
    assert "opt " in render(findings) and "missing" not in render(findings).splitlines()[-1]
    configured = Settings(pipelines_dir=PIPELINES, slack_webhook_url=SecretStr("https://hooks.slack.com/services/x"))
    (ok,) = [f for f in diagnose(configured, env={}, installed=installed) if f.subject == "slack notifier"]
    assert ok.level == "ok"

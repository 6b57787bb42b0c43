"""`relaunch doctor`: each missing piece of a configuration is named, and nothing is touched."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from relaunch.doctor import diagnose, render
from relaunch.settings import Settings

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def _settings(**values: object) -> Settings:
    return Settings(pipelines_dir=PIPELINES, **values)  # type: ignore[arg-type]


def _missing(findings: list) -> dict[str, str]:
    return {f.subject: f.detail for f in findings if f.level == "missing"}


def everything_installed(name: str) -> bool:
    return True


def test_local_profile_with_a_secret_is_ready() -> None:
    findings = diagnose(_settings(github_webhook_secret=SecretStr("s")), env={}, installed=everything_installed)
    assert _missing(findings) == {}
    assert render(findings).endswith("ready")
    assert any(f.subject == "pipelines" and "digits" in f.detail for f in findings)


def test_no_webhook_secret_is_missing_unless_dev_mode_or_the_embedded_stack() -> None:
    gcp = {"profile": "gcp", "gcp_project": "p", "artifact_root": "gs://b/a", "image_repository": "r"}
    assert "github webhook" in _missing(diagnose(_settings(**gcp), env={}, installed=everything_installed))
    assert "github webhook" not in _missing(diagnose(_settings(), env={}, installed=everything_installed))
    dev = diagnose(_settings(**gcp, insecure_dev_mode=True), env={}, installed=everything_installed)
    assert "github webhook" not in _missing(dev)
    assert any(f.level == "warn" and "UNSIGNED" in f.detail for f in dev)


def test_gcp_profile_names_every_missing_setting() -> None:
    missing = _missing(
        diagnose(_settings(profile="gcp", github_webhook_secret=SecretStr("s")), env={}, installed=everything_installed)
    )
    assert "RELAUNCH_GCP_PROJECT" in missing["gcp project"]
    assert "gcloud auth application-default login" in missing["gcp credentials"]
    assert "RELAUNCH_ARTIFACT_ROOT" in missing["artifact root"]
    assert "RELAUNCH_IMAGE_REPOSITORY" in missing["image repository"]
    assert "RELAUNCH_WANDB_API_KEY" in missing["wandb api key"]


def test_emulators_need_no_credentials_and_sdks_are_checked() -> None:
    settings = _settings(store="firestore", bus="pubsub", gcp_project="p", github_webhook_secret=SecretStr("s"))
    env = {"FIRESTORE_EMULATOR_HOST": "127.0.0.1:1", "PUBSUB_EMULATOR_HOST": "127.0.0.1:2"}
    findings = diagnose(settings, env=env, installed=lambda name: name != "google.cloud.firestore")
    missing = _missing(findings)
    assert list(missing) == ["store SDK"]
    assert "relaunch[gcp]" in missing["store SDK"]


def test_credentials_file_must_exist(tmp_path: Path) -> None:
    settings = _settings(profile="gcp", gcp_project="p", github_webhook_secret=SecretStr("s"))
    absent = {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "nope.json")}
    findings = diagnose(settings, env=absent, installed=everything_installed)
    assert "does not exist" in _missing(findings)["gcp credentials"]
    key = tmp_path / "key.json"
    key.write_text("{}")
    present = diagnose(settings, env={"GOOGLE_APPLICATION_CREDENTIALS": str(key)}, installed=everything_installed)
    assert "gcp credentials" not in _missing(present)


def test_secrets_never_appear_in_the_report() -> None:
    settings = _settings(
        github_webhook_secret=SecretStr("hook-secret-123"),
        github_token=SecretStr("ghs_token_456"),
        slack_webhook_url=SecretStr("https://hooks.slack.com/services/T/B/secret789"),
    )
    text = render(diagnose(settings, env={}, installed=everything_installed))
    for secret in ("hook-secret-123", "ghs_token_456", "secret789"):
        assert secret not in text


def test_broken_pipelines_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: x\n")
    findings = diagnose(
        Settings(pipelines_dir=tmp_path, github_webhook_secret=SecretStr("s")), env={}, installed=everything_installed
    )
    assert "bad.yaml" in _missing(findings)["pipelines"]
    assert "keep serving the last valid specs" in _missing(findings)["pipelines"]
    gone = diagnose(Settings(pipelines_dir=tmp_path / "gone"), env={}, installed=everything_installed)
    assert "does not exist" in _missing(gone)["pipelines"]


def test_doctor_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "state"
    diagnose(Settings(home=home, pipelines_dir=PIPELINES), env={})
    assert not home.exists()


def test_blue_green_on_a_vertex_endpoint_is_refused_by_name(tmp_path: Path) -> None:
    spec = (PIPELINES / "digits.yaml").read_text().replace("strategy: direct", "strategy: blue-green\n  smoke: [[0]]")
    (tmp_path / "digits.yaml").write_text(spec)
    secret = SecretStr("s")
    vertex = diagnose(
        Settings(pipelines_dir=tmp_path, github_webhook_secret=secret, endpoint="vertex"),
        env={},
        installed=everything_installed,
    )
    assert "use canary" in _missing(vertex)["pipeline digits"]
    local = diagnose(
        Settings(pipelines_dir=tmp_path, github_webhook_secret=secret), env={}, installed=everything_installed
    )
    assert "pipeline digits" not in _missing(local)


def test_a_file_clone_url_is_missing_in_the_gcp_profile_and_fine_embedded(tmp_path: Path) -> None:
    local = "  clone_url: file:///srv/digits\n  branches:"
    spec = (PIPELINES / "digits.yaml").read_text().replace("  branches:", local)
    (tmp_path / "digits.yaml").write_text(spec)
    secret = SecretStr("s")
    gcp = Settings(pipelines_dir=tmp_path, github_webhook_secret=secret, profile="gcp")
    assert "file:///srv/digits" in _missing(diagnose(gcp, env={}, installed=everything_installed))["pipeline digits"]
    embedded = Settings(pipelines_dir=tmp_path, github_webhook_secret=secret)
    assert "pipeline digits" not in _missing(diagnose(embedded, env={}, installed=everything_installed))


def test_doctor_says_whether_local_jobs_run_in_the_sandbox() -> None:
    def sandbox(mode: str, why_not: str | None) -> tuple[str, str]:
        findings = diagnose(
            _settings(job_sandbox=mode), env={}, installed=everything_installed, sandbox_probe=lambda: why_not
        )
        (found,) = [f for f in findings if f.subject == "job sandbox"]
        return found.level, found.detail

    assert sandbox("auto", None)[0] == "ok" and "private PID and mount namespaces" in sandbox("auto", None)[1]
    assert sandbox("auto", "unshare: Operation not permitted") == (
        "warn",
        "jobs run unsandboxed, the sandbox is unavailable here (unshare: Operation not permitted): a job can read the"
        " stack's state (RELAUNCH_JOB_SANDBOX)",
    )
    assert sandbox("required", "no user namespaces")[0] == "missing"
    assert sandbox("off", None)[0] == "warn"
    vertex = _settings(training="vertex", gcp_project="p", artifact_root="gs://b/p")
    assert not [f for f in diagnose(vertex, env={}, installed=everything_installed) if f.subject == "job sandbox"]

"""cloudbuild/: both build configs checked structurally, and the functions' packaging script run for real."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from relaunch.adapters.gcp.cloudbuild import CHECKOUT_STEP, RUN_SUBSTITUTIONS
from relaunch.emulated.cloudbuild import substitute

ROOT = Path(__file__).resolve().parents[2]
CLOUDBUILD = ROOT / "cloudbuild"
FILES = ["train-image.yaml", "deploy.yaml"]
# The build config file schema: a Build resource minus what only the service sets.
TOP_LEVEL = {"steps", "timeout", "queueTtl", "logsBucket", "options", "substitutions", "tags", "serviceAccount"}
TOP_LEVEL |= {"secrets", "availableSecrets", "artifacts", "images"}
STEP_KEYS = {"name", "args", "env", "allowFailure", "allowExitCodes", "dir", "id", "waitFor", "entrypoint"}
STEP_KEYS |= {"secretEnv", "volumes", "timeout", "script", "automapSubstitutions"}
BUILT_INS = {"PROJECT_ID", "BUILD_ID", "PROJECT_NUMBER", "LOCATION", "TRIGGER_NAME", "COMMIT_SHA", "REVISION_ID"}
BUILT_INS |= {"SHORT_SHA", "REPO_NAME", "REPO_FULL_NAME", "BRANCH_NAME", "TAG_NAME", "REF_NAME"}
BUILT_INS |= {"TRIGGER_BUILD_CONFIG_PATH", "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT"}
# Cloud Build reads $$ as a literal $, and $NAME / ${NAME} as a variable; anything else after a $ is a mistake.
ESCAPED = "$$"
VARIABLE = re.compile(r"\$(\{)?([A-Za-z_][A-Za-z0-9_]*)(?(1)\})")
SUBSTITUTION_NAME = re.compile(r"^_[A-Z0-9_]+$")
SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"


def load(name: str) -> dict[str, Any]:
    config = yaml.safe_load((CLOUDBUILD / name).read_text())
    assert isinstance(config, dict), f"{name}: not a mapping"
    return config


def texts(config: dict[str, Any]) -> Iterator[str]:
    """Every string Cloud Build substitutes in: the steps' fields, images and tags."""
    yield from config.get("images", [])
    yield from config.get("tags", [])
    for step in config["steps"]:
        for value in step.values():
            yield from [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]


def used_variables(config: dict[str, Any]) -> set[str]:
    return {m[2] for text in texts(config) for m in VARIABLE.finditer(text.replace(ESCAPED, ""))}


def header(name: str) -> str:
    """The comment block the file opens with."""
    lines = (CLOUDBUILD / name).read_text().splitlines()
    return "\n".join(line for line in lines[: next(i for i, x in enumerate(lines) if not x.startswith("#"))])


# -- both files ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_only_build_config_fields_and_the_api_accepts_them(name: str) -> None:
    config = load(name)
    assert set(config) <= TOP_LEVEL, f"{name}: unknown top-level keys {set(config) - TOP_LEVEL}"
    cb = pytest.importorskip("google.cloud.devtools.cloudbuild_v1")
    build = cb.Build.from_json(json.dumps(config))  # the API's own schema: unknown fields and enum values raise
    assert len(build.steps) == len(config["steps"]) and build.timeout.total_seconds() >= 600
    assert build.options.substitution_option.name == "ALLOW_LOOSE"
    assert build.options.logging.name == "CLOUD_LOGGING_ONLY"


@pytest.mark.parametrize("name", FILES)
def test_every_step_is_named_with_arguments_and_a_unique_id(name: str) -> None:
    steps = load(name)["steps"]
    assert steps, f"{name}: no steps"
    for i, step in enumerate(steps):
        assert set(step) <= STEP_KEYS, f"{name}: steps[{i}]: unknown keys {set(step) - STEP_KEYS}"
        assert isinstance(step.get("name"), str) and step["name"], f"{name}: steps[{i}].name"
        args = step.get("args")
        assert isinstance(args, list) and args and all(isinstance(a, str) for a in args), f"{name}: steps[{i}].args"
        assert all(isinstance(e, str) and "=" in e for e in step.get("env", [])), f"{name}: steps[{i}].env"
    ids = [s.get("id") for s in steps]
    assert all(ids) and len(set(ids)) == len(ids), f"{name}: step ids {ids}"


@pytest.mark.parametrize("name", FILES)
def test_substitutions_are_well_named_declared_used_and_documented(name: str) -> None:
    config = load(name)
    declared = config["substitutions"]
    assert all(SUBSTITUTION_NAME.match(k) and isinstance(v, str) for k, v in declared.items()), declared
    used = used_variables(config)
    undeclared = {v for v in used if v not in declared and v not in BUILT_INS}
    assert not undeclared, f"{name}: {undeclared} neither declared nor built in (a shell variable needs $$)"
    assert set(declared) <= used, f"{name}: declared but never used: {set(declared) - used}"
    documented = header(name)
    assert all(re.search(rf"^#\s+{k}\s", documented, re.M) for k in declared), f"{name}: undocumented substitution"
    assert "gcloud builds submit" in documented and "--config=cloudbuild/" + name in documented


@pytest.mark.parametrize("name", FILES)
def test_every_shell_script_parses_once_substituted(name: str) -> None:
    config = load(name)
    values = {k: v or "x" for k, v in config["substitutions"].items()}
    bash = shutil.which("bash")
    assert bash, "bash is needed to check the build's scripts"
    scripts = [s["args"][1] for s in config["steps"] if s.get("entrypoint") == "bash" and s["args"][0] == "-c"]
    assert scripts, f"{name}: expected bash steps"
    for script in scripts:
        done = subprocess.run([bash, "-n", "-c", substitute(script, values)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


# -- train-image.yaml ------------------------------------------------------------------------------------------


def test_the_training_image_is_the_pushed_image_of_the_checked_out_commit() -> None:
    config = load("train-image.yaml")
    assert config["images"] == ["$_IMAGE"]
    assert set(RUN_SUBSTITUTIONS) <= set(config["substitutions"])  # what the builder sets on every build
    steps = {s["id"]: s for s in config["steps"]}
    assert list(steps) == ["check", "clone", CHECKOUT_STEP, "image"]
    clone = steps["clone"]
    assert clone["env"][:4] == ["CLONE_URL=$_CLONE_URL", "SHA=$_SHA", "REF=$_REF", "PR=$_PR"]
    assert 'git clone --quiet -- "$$CLONE_URL" src' in clone["args"][1]
    # A private repository: the token reaches git only through the environment, never argv, a file or the output.
    assert "GIT_CONFIG_VALUE_0=" in clone["args"][1] and "extraHeader" in clone["args"][1]
    leaks = r"echo[^\n]*\$\$(token|basic|GITHUB_APP_PRIVATE_KEY)|set -x|credential\.helper"
    assert not re.search(leaks, clone["args"][1])
    assert not [s["id"] for s in steps.values() if "secretEnv" in s]  # relaunch adds the key, to the clone step only
    assert steps[CHECKOUT_STEP]["env"] == ["SHA=$_SHA"]  # local only: what to check out was fetched by the clone
    assert '> "$$BUILDER_OUTPUT/output"' in steps[CHECKOUT_STEP]["args"][1]  # what the builder reads back
    image = steps["image"]
    assert image["dir"] == "src" and image["entrypoint"] == "bash"
    env = ["DOCKERFILE=$_DOCKERFILE", "IMAGE=$_IMAGE", "RUN_ID=$_RELAUNCH_RUN_ID", "PIPELINE=$_PIPELINE"]
    assert image["env"] == env
    # Every value reaches the scripts through the environment: no $_VAR inside shell text.
    assert not [s["id"] for s in steps.values() if s.get("entrypoint") == "bash" and "$_" in s["args"][1]]


def run_step(step_id: str, values: dict[str, str], workspace: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """One step of train-image.yaml as Cloud Build runs it: substituted, its env set, in `workspace` (/workspace)."""
    step = next(s for s in load("train-image.yaml")["steps"] if s["id"] == step_id)
    env |= dict(substitute(e, values).split("=", 1) for e in step.get("env", []))
    env.setdefault("PATH", os.environ["PATH"])
    env |= {"HOME": str(workspace), "GIT_CONFIG_NOSYSTEM": "1"}
    command = [step.get("entrypoint", "git"), *(substitute(a, values) for a in step["args"])]
    cwd = workspace / step.get("dir", "")
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def run_check_step(**values: str) -> subprocess.CompletedProcess[str]:
    return run_step("check", values, Path.cwd())


CHECKED = {"_CLONE_URL": "https://github.com/o/r.git", "_SHA": SHA, "_REF": "", "_PR": "", "_IMAGE": "r/digits:x"}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"_SHA": "a" * 64},  # a SHA-256 repository
        {"_REF": "refs/pull/1/head"},  # with a SHA the ref is only a label
        *({"_SHA": "", "_REF": ref} for ref in ["refs/heads/main", "main", "feature/x", "refs/tags/v1.0", "v_2"]),
    ],
)
def test_the_check_step_passes_a_full_sha_or_a_branch_or_tag_ref(change: dict[str, str]) -> None:
    done = run_check_step(**{**CHECKED, **change})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"_SHA": SHA[:7]}, "_SHA must be a full commit SHA"),
        ({"_SHA": "main"}, "_SHA must be a full commit SHA"),
        ({"_SHA": SHA.upper(), "_REF": "main"}, "_SHA must be a full commit SHA"),
        ({"_SHA": ""}, "_SHA or _REF is required"),
        *(({"_SHA": "", "_REF": r}, "_REF must be") for r in ["refs/pull/1/head", "-x", "a..b", "HEAD", "a b", "a:b"]),
        ({"_SHA": "", "_REF": "refs/heads/--upload-pack=x"}, "_REF must be"),
        ({"_PR": "-1"}, "_PR must be a pull request number"),
        ({"_PR": "1 2"}, "_PR must be a pull request number"),
        ({"_PR": "7", "_SHA": "", "_REF": "main"}, "_PR must be a pull request number, with _SHA"),
        ({"_CLONE_URL": ""}, "_CLONE_URL is required"),
        ({"_IMAGE": ""}, "_IMAGE is required"),
    ],
)
def test_the_check_step_stops_the_build_naming_the_substitution(change: dict[str, str], named: str) -> None:
    done = run_check_step(**{**CHECKED, **change})
    assert done.returncode == 1 and named in done.stderr


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    done = subprocess.run(["git", *identity, "-C", str(repo), *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A repository with main, a branch ahead of it and an annotated tag on main's first commit."""
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "--quiet")
    for name in ("first", "second"):
        (repo / "Dockerfile").write_text(f"FROM scratch\n# {name}\n")
        git(repo, "add", "Dockerfile")
        git(repo, "commit", "--quiet", "-m", name)
    git(repo, "tag", "-a", "-m", "release", "v1", "HEAD~1")
    git(repo, "checkout", "--quiet", "-b", "feature/x")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "feature")
    git(repo, "checkout", "--quiet", "main")
    return repo


def checkout(origin: Path, workspace: Path, **values: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run clone then checkout as the build does; returns the checkout's result and its $BUILDER_OUTPUT."""
    values = {"_CLONE_URL": origin.as_uri(), "_SHA": "", "_REF": "", "_PR": "", **values}
    workspace.mkdir()
    output = workspace.parent / f"{workspace.name}-builder-output"
    output.mkdir()
    cloned = run_step("clone", values, workspace)
    assert cloned.returncode == 0, cloned.stderr
    git(origin, "commit", "--quiet", "--allow-empty", "-m", "pushed after the clone")  # the ref moves on
    return run_step(CHECKOUT_STEP, values, workspace, BUILDER_OUTPUT=str(output)), output


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"_REF": "refs/heads/main"}, "main"),
        ({"_REF": "main"}, "main"),
        ({"_REF": "feature/x"}, "feature/x"),
        ({"_REF": "refs/tags/v1"}, "v1^{commit}"),
        ({"_SHA": "<first>", "_REF": "main"}, "main~1"),  # a SHA wins over the ref
    ],
)
def test_the_checkout_step_checks_out_the_head_of_the_ref_and_reports_the_commit(
    origin: Path, tmp_path: Path, values: dict[str, str], expected: str
) -> None:
    first = git(origin, "rev-parse", "main~1")
    values = {k: first if v == "<first>" else v for k, v in values.items()}
    sha = git(origin, "rev-parse", expected)  # the ref as the clone step fetches it: a later push changes nothing
    assert re.fullmatch(r"[0-9a-f]{40}", sha)
    done, output = checkout(origin, tmp_path / "workspace", **values)
    assert done.returncode == 0, done.stderr

    assert (output / "output").read_text() == sha
    assert (tmp_path / "workspace" / ".relaunch-sha").read_text() == sha + "\n"
    assert git(tmp_path / "workspace" / "src", "rev-parse", "HEAD") == sha
    assert git(tmp_path / "workspace" / "src", "status", "--porcelain") == ""  # the docker context is the commit


def test_the_checkout_step_builds_a_fork_pull_requests_head_that_is_on_no_branch(origin: Path, tmp_path: Path) -> None:
    fork = tmp_path / "fork"
    subprocess.run(["git", "clone", "--quiet", "--", str(origin), str(fork)], check=True, timeout=30)
    git(fork, "commit", "--quiet", "--allow-empty", "-m", "from a fork")
    head = git(fork, "rev-parse", "HEAD")
    git(origin, "fetch", "--quiet", "--", str(fork), "HEAD:refs/pull/7/head")  # what GitHub serves for a fork's PR
    without_pr, _ = checkout(origin, tmp_path / "without", _SHA=head)
    assert without_pr.returncode != 0  # the fork's commit is on no branch the clone fetched

    done, output = checkout(origin, tmp_path / "workspace", _SHA=head, _PR="7")
    assert done.returncode == 0, done.stderr
    assert (output / "output").read_text() == head
    assert git(tmp_path / "workspace" / "src", "rev-parse", "HEAD") == head


def test_the_clone_step_fails_on_a_ref_the_repository_lacks(origin: Path, tmp_path: Path) -> None:
    (tmp_path / "workspace").mkdir()
    values = {"_CLONE_URL": origin.as_uri(), "_SHA": "", "_REF": "refs/heads/gone", "_PR": ""}
    done = run_step("clone", values, tmp_path / "workspace")
    assert done.returncode != 0 and "refs/heads/gone" in done.stderr  # the build stops before the checkout step


def test_the_image_step_labels_the_image_with_the_commit_checked_out(tmp_path: Path) -> None:
    bin_dir, workspace = tmp_path / "bin", tmp_path / "workspace"
    (workspace / "src" / "docker").mkdir(parents=True)
    (workspace / "src" / "docker" / "train.Dockerfile").write_text("FROM scratch\n")  # the step checks it is there
    bin_dir.mkdir()
    docker = bin_dir / "docker"  # records its arguments, one a line, instead of building
    docker.write_text(f'#!/bin/sh\nprintf "%s\\n" "$PWD" "$@" > {tmp_path / "argv"}\n')
    docker.chmod(0o755)
    (workspace / ".relaunch-sha").write_text(SHA + "\n")
    values = {"_IMAGE": "r/digits:run-x", "_DOCKERFILE": "docker/train.Dockerfile", "_RELAUNCH_RUN_ID": "x"}
    done = run_step("image", {**values, "_PIPELINE": "digits"}, workspace, PATH=f"{bin_dir}:{os.environ['PATH']}")
    assert done.returncode == 0, done.stderr

    cwd, *argv = (tmp_path / "argv").read_text().splitlines()
    assert cwd == str(workspace / "src")
    assert argv == [
        "build",
        "--file=docker/train.Dockerfile",
        "--tag=r/digits:run-x",
        f"--label=org.opencontainers.image.revision={SHA}",
        "--label=relaunch.run_id=x",
        "--label=relaunch.pipeline=digits",
        ".",
    ]


# -- deploy.yaml -----------------------------------------------------------------------------------------------


def test_deploy_tests_then_packages_then_runs_relaunch_deploy() -> None:
    config = load("deploy.yaml")
    steps = {s["id"]: s for s in config["steps"]}
    assert list(steps) == ["test", "package", "deploy"]  # sequential: a failed test stops the deploy
    assert all(not s.get("waitFor") for s in steps.values())
    assert steps["test"]["name"] == "python:3.11"
    assert "pip install --quiet --root-user-action=ignore -e '.[test]'" in steps["test"]["args"][1]
    assert "python -m pytest -q" in steps["test"]["args"][1]
    package = steps["package"]
    assert package["entrypoint"] == "python" and package["args"][0] == "cloudbuild/package_functions.py"
    assert "--functions=functions" in package["args"]
    deploy = steps["deploy"]
    assert "TRIGGERS_FILE=$_TRIGGERS_FILE" in deploy["env"] and "REGION=$_REGION" in deploy["env"]
    script = deploy["args"][1]
    assert 'relaunch deploy --file "$$TRIGGERS_FILE" $$DEPLOY_ARGS' in script.splitlines()[-1]
    assert "functions/wheels/relaunch-*.whl" in script  # the deploy runs the very wheel the functions get
    assert {"_TRIGGERS_FILE", "_REGION"} <= set(config["substitutions"])
    assert (ROOT / config["substitutions"]["_PIPELINES_DIR"]).is_dir()


# -- functions/requirements.txt and package_functions.py -------------------------------------------------------


def test_the_committed_requirements_install_relaunch_from_its_own_wheel_never_an_index(tmp_path: Path) -> None:
    lines = [x for x in (ROOT / "functions" / "requirements.txt").read_text().splitlines() if x and x[0] != "#"]
    version = re.search(r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1]  # type: ignore[index]
    # "relaunch" on a public index is not ours (dependency confusion): only the wheel packaged beside the source
    assert lines == [f"./wheels/relaunch-{version}-py3-none-any.whl[gcp,wandb,github]"]
    shutil.copy(ROOT / "functions" / "requirements.txt", tmp_path / "requirements.txt")
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "-r", "requirements.txt"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "wheels/relaunch" in done.stderr  # unpackaged: pip stops, it fetches nothing


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("package_functions", CLOUDBUILD / "package_functions.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of functions/ packaged by the script, run as deploy.yaml runs it."""
    functions = tmp_path_factory.mktemp("source") / "functions"
    shutil.copytree(ROOT / "functions", functions, ignore=shutil.ignore_patterns("wheels", "pipelines"))
    had_build_dir = (ROOT / "build").exists()
    command = [sys.executable, str(CLOUDBUILD / "package_functions.py"), f"--functions={functions}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (ROOT / "build").exists() == had_build_dir  # the wheel is built from a copy: no build/ left behind
    return functions


def test_packaging_writes_the_wheel_its_requirements_and_the_specs(packaged: Path) -> None:
    wheels = list((packaged / "wheels").glob("*.whl"))
    assert [w.name for w in wheels] == ["relaunch-0.1.0-py3-none-any.whl"]
    lines = (packaged / "requirements.txt").read_text().splitlines()
    assert [x for x in lines if not x.startswith("#")] == [f"./wheels/{wheels[0].name}[gcp,wandb,github]"]
    assert sorted(p.name for p in (packaged / "pipelines").iterdir()) == ["digits.yaml"]
    with zipfile.ZipFile(wheels[0]) as wheel:
        packaged_config = wheel.read("relaunch/adapters/gcp/train-image.yaml").decode()
    assert packaged_config == (CLOUDBUILD / "train-image.yaml").read_text()  # the file, not a dangling link


def test_pip_installs_the_packaged_requirements_from_the_functions_folder(packaged: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index", "-r", "requirements.txt"]
    done = subprocess.run(command, cwd=packaged, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Would install relaunch-0.1.0" in done.stdout


def test_bad_packaging_input_is_refused_naming_the_option(tmp_path: Path) -> None:
    module = script()
    with pytest.raises(module.PackagingError, match="--extras"):
        module.requirements_text("relaunch-0.1.0-py3-none-any.whl", "gcp;rm -rf /")
    with pytest.raises(module.PackagingError, match="--functions .*no main.py"):
        module.package(ROOT, tmp_path, None, "gcp")
    with pytest.raises(module.PackagingError, match="--pipelines .*no \\*.yaml"):
        module.copy_specs(tmp_path, tmp_path / "out")
    with pytest.raises(module.PackagingError, match="--repo .*no pyproject.toml"):
        module.build_wheel(tmp_path, tmp_path / "wheels")
    assert module.main(["--functions", str(tmp_path), "--extras", "Bad Extra"]) == 1


# -- issue 13: no value reaches git as an option -----------------------------------------------------------------

# git subcommands that take no `--`: check-ref-format (its argument is refused unless it starts with refs/ first).
NO_END_OF_OPTIONS = {"check-ref-format"}
GIT_CALL = re.compile(r"(?:^|[;&|(]|\bthen|\belse|\$\$\()\s*git\s+([^;&|)\n]*)", re.MULTILINE)


def git_calls(config: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """(step id, argv after `git`) of every git the steps run, in args or in a bash script."""
    for step in config["steps"]:
        args = [str(a) for a in step.get("args", [])]
        if step["name"].endswith("/git") and "entrypoint" not in step:
            yield step["id"], args
        elif step.get("entrypoint") == "bash":
            for match in GIT_CALL.finditer(args[-1]):
                yield step["id"], match[1].split()


@pytest.mark.parametrize("name", FILES)
def test_every_git_call_ends_its_options_before_a_substituted_value(name: str) -> None:
    calls = list(git_calls(load(name)))
    for step, argv in calls:
        first_value = next((i for i, a in enumerate(argv) if "$" in a), None)
        subcommand = next((a for i, a in enumerate(argv) if not a.startswith("-") and argv[i - 1] != "-C"), "")
        if first_value is None or subcommand in NO_END_OF_OPTIONS:
            continue
        ends = [i for i, a in enumerate(argv) if a in ("--", "--end-of-options")]
        assert ends and ends[0] < first_value, f"{name}: step {step}: git {' '.join(argv)} has no -- before a value"
    assert name != "train-image.yaml" or {s for s, _ in calls} >= {"clone", "checkout"}


def test_the_checkout_step_refuses_an_option_shaped_sha(origin: Path, tmp_path: Path) -> None:
    """The check step refuses it first; the checkout step alone (a build by hand) must not read it as an option."""
    done, output = checkout(origin, tmp_path / "workspace", _SHA="--orphan=pwned")
    assert done.returncode != 0 and "--orphan" not in git(tmp_path / "workspace" / "src", "branch", "--all")
    assert not (output / "output").exists()


@pytest.mark.parametrize(
    "url", ["file:///srv/digits", "ext::sh -c touch% /tmp/pwned", "--upload-pack=touch /tmp/x", "fd::0", "/srv/x"]
)
def test_the_check_step_refuses_a_clone_url_that_is_not_https_or_ssh(url: str) -> None:
    done = run_check_step(**{**CHECKED, "_CLONE_URL": url})
    assert done.returncode == 1 and "_CLONE_URL must be" in done.stderr


@pytest.mark.parametrize("url", ["https://github.com/o/r.git", "ssh://git@github.com:22/o/r", "git@github.com:o/r.git"])
def test_the_check_step_passes_https_and_ssh_clone_urls(url: str) -> None:
    done = run_check_step(**{**CHECKED, "_CLONE_URL": url})
    assert done.returncode == 0, done.stderr

"""The example's training image: its Dockerfile, and cloudbuild/train-image.yaml building it from the repository.

No Docker daemon here: the Dockerfile is read as the builder reads it (its COPY sources taken from the build context)
and the files it puts in the image are run with the pipeline's own commands; the image step is run with a `docker`
that checks the Dockerfile exists, as `docker build` does, and records its arguments.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from relaunch.config_files import load_spec
from tests.unit.test_cloudbuild_files import ROOT, SHA, load, run_step

EXAMPLE = ROOT / "examples" / "digits"
SPEC = load_spec(ROOT / "pipelines" / "digits.yaml")
SECRETISH = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")


def instructions(dockerfile: Path) -> list[tuple[str, list[str]]]:
    """(INSTRUCTION, arguments) of each line that is not a comment (the example uses no line continuations)."""
    lines = [line.strip() for line in dockerfile.read_text().splitlines()]
    return [(line.split()[0].upper(), line.split()[1:]) for line in lines if line and not line.startswith("#")]


def image_files(context: Path, dest: Path) -> None:
    """Copy into `dest` (the image's WORKDIR) what the Dockerfile's COPY lines take from `context`."""
    for instruction, args in instructions(context / "Dockerfile"):
        if instruction == "COPY":
            *sources, target = args
            assert target in ("./", "."), f"COPY into the WORKDIR only, got {target}"
            for pattern in sources:
                matched = [p for p in context.iterdir() if fnmatch.fnmatch(p.name, pattern) and p.is_file()]
                assert matched, f"COPY {pattern}: nothing in the build context matches"
                for path in matched:
                    shutil.copy(path, dest / path.name)


def test_the_example_ships_a_slim_python_dockerfile_with_its_requirements_and_no_secret() -> None:
    steps = instructions(EXAMPLE / "Dockerfile")
    assert steps[0][0] == "FROM" and fnmatch.fnmatch(steps[0][1][0], "python:3.1[1-9]-slim")
    names = [name for name, _ in steps]
    assert "WORKDIR" in names and "USER" not in names  # the Vertex FUSE mount and the pipeline's cwd: see README
    install = next(i for i, (name, args) in enumerate(steps) if name == "RUN" and "requirements.txt" in args)
    assert steps[install][1][:3] == ["pip", "install", "--no-cache-dir"]
    copies = [i for i, (name, _) in enumerate(steps) if name == "COPY"]
    assert steps[copies[0]][1] == ["requirements.txt", "./"] and copies[0] < install < copies[1]  # a cached layer
    for name, args in steps:
        assert name not in ("ARG", "ENV") or not any(w in " ".join(args).upper() for w in SECRETISH), (name, args)


def test_the_image_holds_what_the_pipelines_commands_need(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    image_files(EXAMPLE, app)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "RELAUNCH_SMOKE": "1", "AIP_MODEL_DIR": str(tmp_path / "m")}
    trained = subprocess.run(_python(SPEC.train.command), cwd=app, env=env, capture_output=True, text=True, timeout=120)
    assert trained.returncode == 0, trained.stderr
    env |= {"RELAUNCH_CANDIDATE_DIR": str(tmp_path / "m"), "RELAUNCH_EVAL_DIR": str(tmp_path / "e")}
    command = _python(SPEC.evaluate.command)
    scored = subprocess.run(command, cwd=app, env=env, capture_output=True, text=True, timeout=120)
    assert scored.returncode == 0 and (tmp_path / "e" / "metrics.json").is_file(), scored.stderr


def _python(command: list[str]) -> list[str]:
    """The pipeline's command with `python` as this interpreter (the image's is python:3.x-slim's)."""
    return [sys.executable if part == "python" else part for part in command]


@pytest.fixture
def docker(tmp_path: Path) -> Path:
    """A `docker` on PATH that fails like `docker build` on a missing --file, else records its argv, one a line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in --file=*) [ -f "${a#--file=}" ] || '
        '{ echo "failed to read dockerfile: open ${a#--file=}: no such file or directory" >&2; exit 1; };; esac; done\n'
        f'printf "%s\\n" "$@" > {tmp_path / "argv"}\n'
    )
    script.chmod(0o755)
    return bin_dir


def build(workspace: Path, docker: Path) -> subprocess.CompletedProcess[str]:
    """The image step with the config's default substitutions, as a build of the example's repository runs it."""
    (workspace / ".relaunch-sha").write_text(SHA + "\n")
    values = {**load("train-image.yaml")["substitutions"], "_IMAGE": "r/digits:run-x", "_PIPELINE": "digits"}
    return run_step("image", values, workspace, PATH=f"{docker}:{os.environ['PATH']}")


def test_the_image_step_builds_the_example_repositorys_own_dockerfile(tmp_path: Path, docker: Path) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE, workspace / "src", ignore=shutil.ignore_patterns("__pycache__"))
    done = build(workspace, docker)
    assert done.returncode == 0, done.stderr
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[:3] == ["build", "--file=Dockerfile", "--tag=r/digits:run-x"] and argv[-1] == "."


def test_a_repository_without_the_dockerfile_stops_the_build_naming_the_substitution(
    tmp_path: Path, docker: Path
) -> None:
    workspace = tmp_path / "workspace"
    (workspace / "src").mkdir(parents=True)
    done = build(workspace, docker)
    assert done.returncode == 1 and "_DOCKERFILE" in done.stderr and "Dockerfile" in done.stderr, done.stderr
    assert not (tmp_path / "argv").exists()  # docker never ran

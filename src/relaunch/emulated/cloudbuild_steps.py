"""Runs what cloudbuild/train-image.yaml's steps do, on this machine, for the Cloud Build stand-in.

The `check`, `clone` and `checkout` steps are git: they are done here with git (argument lists, never a shell, every
value after `--`), with the checks the `check` step makes. The `image` step is docker, which is not available here:
it checks that the Dockerfile exists, as the real step does (the build fails like the real one when it is missing),
and the "image" is a clean copy of the checkout (no .git) in `images_root/<hex of the digest>`, the digest being
sha256 of the commit and the Dockerfile's path, so one commit built twice is one image.

Traffic stays on this machine: a clone URL is looked up in `sources` first (git's url.<base>.insteadOf: the URL a
pipeline names, e.g. https://github.com/OWNER/REPO.git, read from a local repository), and what is cloned must be a
file:// URL or an https:// URL on the loopback interface; git may use no other transport (GIT_ALLOW_PROTOCOL).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

STEP_IDS = ("check", "clone", "checkout", "image")
_SHA = re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64})$")
_PR = re.compile(r"^[1-9][0-9]{0,9}$")
_IMAGE_URI = re.compile(r"^[^@\s]+@sha256:(?P<hex>[0-9a-f]{64})$")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_GIT_TIMEOUT_S = 300


class StepFailed(Exception):
    """A step exited non-zero: which one (its index in the build's steps) and what it said."""

    def __init__(self, index: int, said: str, code: int = 1) -> None:
        super().__init__(said)
        self.index = index
        self.said = said
        self.code = code


@dataclass(frozen=True)
class Built:
    """What a successful build produced: the commit checked out and the image's digest."""

    sha: str
    digest: str


@dataclass
class LocalBuilds:
    """The stand-in's executor: runs a train-image.yaml build's steps here; images are folders under `images_root`."""

    images_root: Path
    sources: Mapping[str, str] = field(default_factory=dict)  # clone URL as sent -> the URL git clones instead

    def run(self, build: dict[str, Any]) -> Built:
        """Do the build's steps in a fresh workspace; StepFailed names the step that failed and why."""
        ids = [step.get("id") for step in build.get("steps", [])]
        if ids != list(STEP_IDS):
            raise StepFailed(0, f"the emulated Cloud Build runs train-image.yaml's steps {STEP_IDS}, got {ids}")
        values: dict[str, str] = build.get("substitutions", {})
        at = {step_id: index for index, step_id in enumerate(ids)}
        url = self._check(values, at["check"])
        with tempfile.TemporaryDirectory(prefix="relaunch-cloudbuild-") as workspace:
            src = Path(workspace) / "src"
            self._clone(url, values, src, at["clone"])
            _git(at["checkout"], "-C", str(src), "switch", "--quiet", "--detach", "--", values["_SHA"] or "FETCH_HEAD")
            sha = _git(at["checkout"], "-C", str(src), "rev-parse", "HEAD")
            return Built(sha=sha, digest=self._image(src, sha, values.get("_DOCKERFILE") or "Dockerfile", at["image"]))

    def image_folder(self, image_uri: str) -> Path:
        """The folder an image recorded as "name@sha256:<hex>" was built into; ValueError if it is not one of ours."""
        match = _IMAGE_URI.match(image_uri)
        if not match:
            raise ValueError(f"{image_uri[:120]!r} is not an image by digest (NAME@sha256:<64 hex>)")
        folder = self.images_root / match["hex"]
        if not folder.is_dir():
            raise ValueError(f"no image {image_uri[:120]!r} was built here (no {folder})")
        return folder

    def _check(self, values: dict[str, str], index: int) -> str:
        """The `check` step's rules; returns the URL to clone (after `sources`)."""
        url, sha, ref, pr = (values.get(name, "") for name in ("_CLONE_URL", "_SHA", "_REF", "_PR"))

        def fail(what: str) -> StepFailed:
            return StepFailed(index, f"train-image.yaml: substitution {what}")

        if not url:
            raise fail("_CLONE_URL is required (the repository's git URL)")
        if not values.get("_IMAGE"):
            raise fail("_IMAGE is required (the image to push)")
        if pr and not (_PR.match(pr) and sha):
            raise fail(f"_PR must be a pull request number, with _SHA naming its head commit, got '{pr}'")
        if sha and not _SHA.match(sha):
            raise fail(f"_SHA must be a full commit SHA, got '{sha}'")
        if not sha and not ref:
            raise fail("_SHA or _REF is required (the commit to build, or the ref whose head to build)")
        if not sha and not _branch_or_tag(_full_ref(ref)):
            raise fail(f"_REF must be refs/heads/BRANCH, refs/tags/TAG or a branch name, got '{ref}'")
        local = self.sources.get(url, url)
        if not _stays_here(local):
            raise fail(f"_CLONE_URL must be file:// or https:// on the loopback interface here, got '{local}'")
        return local

    @staticmethod
    def _clone(url: str, values: dict[str, str], src: Path, index: int) -> None:
        _git(index, "clone", "--quiet", "--", url, str(src))
        if values.get("_PR"):
            _git(index, "-C", str(src), "fetch", "--quiet", "--", "origin", f"refs/pull/{values['_PR']}/head")
        if not values.get("_SHA"):
            _git(index, "-C", str(src), "fetch", "--quiet", "--", "origin", _full_ref(values["_REF"]))

    def _image(self, src: Path, sha: str, dockerfile: str, index: int) -> str:
        """The image step: the Dockerfile must exist; the checkout (without .git) becomes the image's folder."""
        path = (src / dockerfile).resolve()
        if not path.is_file() or not path.is_relative_to(src.resolve()):
            raise StepFailed(
                index,
                f"train-image.yaml: substitution _DOCKERFILE: the repository has no '{dockerfile}' at {sha}; "
                "add it, or set _DOCKERFILE to its path",
            )
        digest = hashlib.sha256(f"{sha}:{dockerfile}".encode()).hexdigest()
        folder = self.images_root / digest
        if not folder.is_dir():
            self.images_root.mkdir(parents=True, exist_ok=True)
            staging = self.images_root / f".{digest}.{uuid.uuid4().hex}"
            shutil.copytree(src, staging, symlinks=True, ignore=shutil.ignore_patterns(".git"))
            try:
                staging.rename(folder)
            except OSError:  # built at the same time by another build of the same commit: same content
                shutil.rmtree(staging, ignore_errors=True)
        return f"sha256:{digest}"


def _full_ref(ref: str) -> str:
    return ref if ref.startswith("refs/") else f"refs/heads/{ref}"


def _branch_or_tag(ref: str) -> bool:
    if not re.match(r"^refs/(heads|tags)/[^-]", ref) or ref == "refs/heads/HEAD":
        return False
    return subprocess.run(["git", "check-ref-format", ref], capture_output=True, check=False).returncode == 0


def _stays_here(url: str) -> bool:
    if url.startswith("file:///"):
        return True
    parts = urlsplit(url)
    return parts.scheme == "https" and parts.hostname in _LOOPBACK and not parts.username


def _git(index: int, *args: str) -> str:
    """Run git; its stdout, or StepFailed with what it said (its last line of stderr)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": tempfile.gettempdir(),
        "GIT_ALLOW_PROTOCOL": "file:https",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    for name in ("GIT_SSL_CAINFO", "SSL_CERT_FILE"):  # a loopback https server's certificate authority
        if name in os.environ:
            env[name] = os.environ[name]
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, env=env, timeout=_GIT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(index, f"git timed out after {_GIT_TIMEOUT_S}s") from exc
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [f"git exited with {done.returncode}"])[-1]
        raise StepFailed(index, said, done.returncode)
    return done.stdout.strip()

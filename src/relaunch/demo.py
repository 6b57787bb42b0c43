"""`relaunch demo`: the whole loop, narrated as a live timeline, on the embedded stack or (`--profile gcp-emulated`,
relaunch.emulated.demo_gcp) on the GCP adapters against local stand-ins of Google Cloud."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import requests
import yaml
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from relaunch import bootstrap
from relaunch.bootstrap import embedded_stack
from relaunch.domain.model import JobStatus, PipelineRun, RunState
from relaunch.settings import Settings
from relaunch.simulate import git, push_payload, send_github
from relaunch.textsafe import safe_line

DEMO_REPO = "relaunch-demo/digits"
WORSE_PARAMS = {"C": 0.0001, "max_iter": 2000}


def project_root() -> Path:
    """The folder holding pipelines/ and examples/: the working directory if it has them, else the source tree."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (candidate / "pipelines").is_dir() and (candidate / "examples" / "digits").is_dir():
            return candidate
    raise FileNotFoundError("run `relaunch demo` from a relaunch checkout (needs pipelines/ and examples/digits/)")


@dataclass
class Narrator:
    """Prints run timelines as they grow, with progress on long steps: a spinner on a terminal, lines elsewhere."""

    app: bootstrap.App
    out: TextIO = sys.stdout
    t0: float = field(default_factory=time.monotonic)
    _seen: dict[str, int] = field(default_factory=dict)
    _last_progress: float = 0.0
    _console: Console | None = None

    def __post_init__(self) -> None:
        if self.out.isatty():  # markup, emoji codes and highlighting off: the story quotes outside text
            self._console = Console(
                file=self.out,
                force_terminal=True,
                color_system=None if os.environ.get("NO_COLOR") else "auto",
                markup=False,
                emoji=False,
                highlight=False,
            )

    def say(self, text: str) -> None:
        self._write(f"[{time.monotonic() - self.t0:7.2f}s] {text}")

    def follow(
        self, run_id: str, timeout: float = 300.0, until: Callable[[PipelineRun], bool] | None = None
    ) -> PipelineRun:
        """Print the run's new timeline entries until it reaches a terminal state (or `until` holds)."""
        deadline = time.monotonic() + timeout
        with self._spinner(run_id) as spinner:
            while time.monotonic() < deadline:
                run = self.app.store.get_run(run_id)
                self._print_new(run_id)
                if run is not None and (run.state.terminal or (until is not None and until(run))):
                    return run
                if run is not None:
                    self._progress(run, spinner)
                time.sleep(0.05)
        raise TimeoutError(f"run {run_id} did not finish within {timeout:.0f}s")

    def _write(self, line: str) -> None:
        if self._console is None:
            print(line, file=self.out, flush=True)
        else:  # above the spinner, which the console redraws below it
            self._console.print(Text(line), soft_wrap=True)

    def _spinner(self, run_id: str) -> AbstractContextManager[Spinner | None]:
        if self._console is None:
            return nullcontext()
        return _SpinnerLine(self._console, Spinner("dots", Text(f"run {safe_line(run_id)}")))

    def _print_new(self, run_id: str) -> None:
        entries = self.app.store.timeline(run_id)
        for entry in entries[self._seen.get(run_id, 0) :]:
            marker = {"state": "▶", "github.status": "  ↳ github", "github.check_run": "  ↳ github"}.get(
                entry.kind, "  ·"
            )
            self.say(f"{marker} {safe_line(entry.message)}")  # commit messages and reasons come from outside
            if entry.kind == "github.check_run":
                for line in str(entry.data.get("output", {}).get("summary", "")).splitlines():
                    self._write(f"{'':13}│ {safe_line(line)}")
        self._seen[run_id] = len(entries)

    def _progress(self, run: PipelineRun, spinner: Spinner | None) -> None:
        step = {RunState.TRAINING: "train", RunState.EVALUATING: "evaluate"}.get(run.state)
        now = time.monotonic()
        if step is None or step not in run.jobs or now - self._last_progress < (1.0 if spinner is None else 0.25):
            return
        self._last_progress = now
        line = job_progress(step, self.app.training.status(run.jobs[step]), time.time())  # a sweep too
        if spinner is None:
            self.say(f"  … {line}")
        else:
            spinner.update(text=Text(f"run {safe_line(run.id)}: {line}"))


@dataclass
class _SpinnerLine:
    """A spinner on the console's last line while a run is followed. Unlike rich's Status it leaves sys.stdout and
    sys.stderr alone: the embedded stack runs in this process, and its job runner needs the real streams."""

    console: Console
    spinner: Spinner
    _live: Live | None = None

    def __enter__(self) -> Spinner:
        self._live = Live(
            self.spinner, console=self.console, transient=True, redirect_stdout=False, redirect_stderr=False
        )
        self._live.start()
        return self.spinner

    def __exit__(self, *exc: object) -> None:
        assert self._live is not None
        self._live.stop()


def job_progress(step: str, status: JobStatus, now: float) -> str:
    """One line on a job: its state, how long it has run (a queued job has not started), its last log line."""
    lines = [ln for ln in status.log_tail.splitlines() if ln.strip() and not ln.startswith("---")]
    last = safe_line(lines[-1][:90]) if lines else "(no output yet)"
    if status.state == "running" and status.started_at is not None:
        return f"{step} job running {max(0.0, now - status.started_at):.1f}s — {last}"
    return f"{step} job {status.state} — {last}"


class DemoTarget(Protocol):
    """Where the scenario runs: a webhook to push to, the app reading its store, an endpoint to ask."""

    @property
    def app(self) -> bootstrap.App: ...

    @property
    def webhook_url(self) -> str: ...

    @property
    def webhook_secret(self) -> str: ...

    def describe(self) -> str:
        """One line: what is up and where."""

    def pushed(self, sha: str) -> None:
        """A commit reached the remote repository (the GitHub side now knows it)."""

    def predict(self, instances: list[Any]) -> dict[str, Any]:
        """The serving endpoint's answer for these instances."""


@dataclass(frozen=True)
class EmbeddedTarget:
    """The embedded stack as the scenario's target."""

    stack: bootstrap.EmbeddedStack

    @property
    def app(self) -> bootstrap.App:
        return bootstrap.App(self.stack.settings)

    @property
    def webhook_url(self) -> str:
        return self.stack.url_of("github_webhook")

    @property
    def webhook_secret(self) -> str:
        return self.stack.settings.webhook_secret() or ""

    def describe(self) -> str:
        return f"embedded stack up: {json.dumps(self.stack.urls)}"

    def pushed(self, sha: str) -> None:
        """Nothing to tell: the embedded stack reads the repository itself."""

    def predict(self, instances: list[Any]) -> dict[str, Any]:
        url = self.stack.urls["endpoint"].rstrip("/") + "/v1/endpoints/digits:predict"
        answer: dict[str, Any] = requests.post(url, json={"instances": instances}, timeout=30).json()
        return answer


class DemoFailed(Exception):
    """The scenario did not do what it promises."""


@dataclass(frozen=True)
class DemoOutcome:
    """What the scenario produced, for the exit code and for tests."""

    promoted: PipelineRun
    rejected: PipelineRun
    truth: list[int]
    answer: dict[str, Any]


def run_demo(home: Path | None = None, out: TextIO = sys.stdout) -> int:
    """Run the scenario and narrate it; 0 only if every promise held."""
    try:
        scenario(home, out)
    except DemoFailed as exc:
        print(f"\ndemo FAILED: {exc}", file=out)
        return 1
    return 0


def scenario(home: Path | None = None, out: TextIO = sys.stdout) -> DemoOutcome:
    """Start the embedded stack, push a good then a worse commit, query the endpoint; raise DemoFailed on a miss."""
    root = project_root()
    work = Path(tempfile.mkdtemp(prefix="relaunch-demo-"))
    home = home or work / "home"
    settings = Settings(
        home=home,
        pipelines_dir=demo_specs(root / "pipelines", work / "pipelines", work / "digits", tracking=True),
        github_webhook_secret=SecretStr(secrets.token_hex(16)),
    )
    stack = embedded_stack(settings)
    try:
        stack.start()
        return run_scenario(EmbeddedTarget(stack), root / "examples" / "digits", work / "digits", out)
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)  # the throwaway repo, the specs naming it, a home not given


def run_scenario(target: DemoTarget, example: Path, repo_dir: Path, out: TextIO) -> DemoOutcome:
    """The story on a started target: a good commit promoted, a worse one rejected, the champion still serving.

    The target's specs must clone `repo_dir` (demo_specs); the throwaway repository is made there from `example`.
    """
    narrator = Narrator(target.app, out)
    narrator.say(target.describe())
    repo = make_repo(example, repo_dir)
    narrator.say(f"throwaway repo {repo} at {git(repo, 'rev-parse', '--short', 'HEAD')}")
    first = push_and_follow(target, narrator, repo, before=None)
    _expect(first.state is RunState.PROMOTED, f"first run ended {first.state.value}: {first.reason}")
    before = git(repo, "rev-parse", "HEAD")
    (repo / "params.json").write_text(json.dumps(WORSE_PARAMS, indent=2) + "\n")
    git(repo, "commit", "-qam", "Regularise much harder (C=0.0001)")
    narrator.say(f"committed a worse model: params.json -> {WORSE_PARAMS}")
    second = push_and_follow(target, narrator, repo, before=before)
    _expect(second.state is RunState.REJECTED, f"second run ended {second.state.value}, expected rejected")
    narrator.say(f"gate rejected {second.id}: {second.reason}")
    truth, answer = _predict(target, narrator)
    _expect(
        answer.get("model_version") == first.model_version,
        f"endpoint served {answer.get('model_version')}, champion is {first.model_version}",
    )
    narrator.say(f"done: champion {first.model_version} kept serving; the worse candidate never reached the endpoint")
    return DemoOutcome(promoted=first, rejected=second, truth=truth, answer=answer)


def push_and_follow(
    target: DemoTarget,
    narrator: Narrator,
    repo: Path,
    before: str | None,
    until: Callable[[PipelineRun], bool] | None = None,
) -> PipelineRun:
    """Push the repository's HEAD to the target's webhook and follow the one run it starts to its end (or `until`)."""
    payload = push_payload(repo, full_name=DEMO_REPO, before=before)
    target.pushed(payload["after"])
    reply = send_github(target.webhook_url, "push", payload, target.webhook_secret)
    narrator.say(
        f'push {payload["after"][:7]} "{payload["head_commit"]["message"]}" -> {reply.status_code} {reply.text}'
    )
    _expect(reply.status_code == 202, f"webhook answered {reply.status_code}: {reply.text}")
    runs = reply.json().get("runs") or []
    _expect(len(runs) == 1, f"expected one run, got {runs}")
    return narrator.follow(runs[0], until=until)


def _predict(target: DemoTarget, narrator: Narrator) -> tuple[list[int], dict[str, Any]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    truth = [int(t) for t in digits.target[-3:]]
    answer = target.predict(digits.data[-3:].tolist())
    narrator.say(f"predict digits {truth} -> {answer.get('predictions')} from model {answer.get('model_version')}")
    return truth, answer


def demo_specs(source: Path, dest: Path, repo: Path | str, *, tracking: bool = False) -> Path:
    """Copies of the shipped specs that clone the throwaway repo (a folder, or the URL it stands behind): a run
    clones only the URL its spec names. With `tracking`, their jobs log offline W&B runs (domain/spec_tracking.py)."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.yaml"):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec["source"]["clone_url"] = repo if isinstance(repo, str) else repo.resolve().as_uri()
        if tracking:
            spec["tracking"] = {"wandb": "offline"}
        (dest / path.name).write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return dest


def make_repo(source: Path, dest: Path) -> Path:
    """A git repository at `dest` holding a copy of `source`, one commit on main."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".relaunch*")
    shutil.copytree(source, dest, ignore=ignore)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "-c", "user.name=relaunch demo", "-c", "user.email=demo@relaunch.invalid", "add", "-A")
    git(
        dest,
        "-c",
        "user.name=relaunch demo",
        "-c",
        "user.email=demo@relaunch.invalid",
        "commit",
        "-qm",
        "Digits classifier",
    )
    git(dest, "config", "user.name", "relaunch demo")
    git(dest, "config", "user.email", "demo@relaunch.invalid")
    return dest


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailed(message)

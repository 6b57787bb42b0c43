"""What each page of the dashboard shows, from values the store hands over. Pure.

The query string is untrusted: a filter names a known pipeline, trigger kind and state or it is refused with the
field named (BadField, a 400). Links leave the page only for addresses built here from checked parts (a repository
`owner/name`, a hex commit, a PR number, a Vertex job's resource name, an https W&B URL); anything else is shown as
text, never as an href.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import PipelineRun, RunState, TimelineEntry, TriggerKind
from relaunch.textsafe import safe_line

MAX_FILTER = 200  # a branch name git accepts is shorter; anything longer is not a filter
REPO = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
SHA = re.compile(r"^[0-9a-f]{7,64}$")
VERTEX_JOB = re.compile(r"^projects/([a-z0-9-]{1,63})/locations/([a-z0-9-]{1,40})/customJobs/([0-9]{1,25})$")
WANDB_ARTIFACT = re.compile(r"^([A-Za-z0-9_.-]{1,100})/([A-Za-z0-9_.-]{1,100})/([A-Za-z0-9_.-]{1,100}):(v[0-9]{1,9})$")
WANDB_URL = re.compile(r"^https://[A-Za-z0-9.-]{1,100}/[A-Za-z0-9_./:-]{1,400}$")
TRIGGERS: tuple[str, ...] = get_args(TriggerKind)
STATES = tuple(state.value for state in RunState)


class BadField(ValueError):
    """A request named something the dashboard does not know; a 4xx naming the field."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


@dataclass(frozen=True)
class RunFilter:
    """Which runs the list shows: each field unset shows every run."""

    pipeline: str | None = None
    trigger: str | None = None
    state: str | None = None
    branch: str | None = None

    def matches(self, run: PipelineRun) -> bool:
        """Whether `run` passes every filter that is set."""
        return (
            self.pipeline in (None, run.pipeline)
            and self.trigger in (None, run.trigger.kind)
            and self.state in (None, run.state.value)
            and self.branch in (None, branch_of(run))
        )

    def query(self) -> dict[str, str]:
        """The filter as query parameters (the live stream is asked for the same runs)."""
        return {k: v for k, v in vars(self).items() if v}


def run_filter(args: Mapping[str, str], pipelines: Iterable[str]) -> RunFilter:
    """The filter a query string asks for; BadField naming the first value that is not a known one."""
    values = {name: (args.get(name) or "").strip() or None for name in ("pipeline", "trigger", "state", "branch")}
    known = {"pipeline": tuple(pipelines), "trigger": TRIGGERS, "state": STATES}
    for name, allowed in known.items():
        value = values[name]
        if value is not None and value not in allowed:
            raise BadField(name, f"{name}: {safe_line(value[:60])!r} is none of {', '.join(allowed) or 'nothing'}")
    branch = values["branch"]
    if branch is not None and (len(branch) > MAX_FILTER or safe_line(branch) != branch):
        raise BadField("branch", f"branch: must be 1 to {MAX_FILTER} printable characters")
    return RunFilter(**values)


def branch_of(run: PipelineRun) -> str | None:
    """The branch a run came from (`refs/heads/x` -> x), or its ref as given, or None."""
    ref = run.trigger.ref
    if ref is None:
        return None
    return ref.removeprefix("refs/heads/")


@dataclass(frozen=True)
class Link:
    """A labelled address off the page, built from checked parts only."""

    label: str
    url: str


def links(run: PipelineRun, timeline: Sequence[TimelineEntry] = ()) -> list[Link]:
    """The run's commit, pull request, W&B artifact and run, and Vertex jobs, where each is known and well formed."""
    t, found = run.trigger, []
    repo = t.repo if t.repo and REPO.match(t.repo) else None
    if repo and t.sha and SHA.match(t.sha):
        found.append(Link(f"commit {t.sha[:7]}", f"https://github.com/{repo}/commit/{t.sha}"))
    if repo and t.pr_number:
        found.append(Link(f"pull request #{t.pr_number}", f"https://github.com/{repo}/pull/{t.pr_number}"))
    if t.artifact and (m := WANDB_ARTIFACT.match(t.artifact)):
        entity, project, name, version = m.groups()
        found.append(
            Link(
                f"W&B artifact {name}:{version}",
                f"https://wandb.ai/{entity}/{project}/artifacts/model/{name}/{version}",
            )
        )
    for entry in timeline:
        url = entry.data.get("wandb_run_url")
        if isinstance(url, str) and WANDB_URL.match(url):
            found.append(Link("W&B run", url))
    for step, job in sorted(run.jobs.items()):
        if m := VERTEX_JOB.match(job):
            project, region, job_id = m.groups()
            url = f"https://console.cloud.google.com/vertex-ai/locations/{region}/training/{job_id}?project={project}"
            found.append(Link(f"Vertex {step} job {job_id}", url))
    return list({link.url: link for link in found}.values())


@dataclass(frozen=True)
class JobLog:
    """The tail of one job's log, as the run's timeline recorded it."""

    at: float
    title: str
    tail: str


def job_logs(timeline: Sequence[TimelineEntry]) -> list[JobLog]:
    """Every log tail the timeline holds (`relaunch runs show` prints the same ones)."""
    return [JobLog(e.at, e.message, str(e.data.get("tail") or "")) for e in timeline if e.kind == "log"]


@dataclass(frozen=True)
class Place:
    """One environment of a pipeline: its endpoint, what it serves, its split and its latest record."""

    pipeline: str
    environment: str
    endpoint: str
    traffic: dict[str, int]
    latest: PromotionRecord | None
    health: str = ""


def traffic_text(split: Mapping[str, int]) -> str:
    """A traffic split as `v3 90% · v4 10%`, the largest share first (or `nothing deployed`)."""
    if not split:
        return "nothing deployed"
    ordered = sorted(split.items(), key=lambda item: (-item[1], item[0]))
    return " · ".join(f"{version} {share}%" for version, share in ordered)


def serving_text(place: Place) -> str:
    """How the environment came to serve what it serves."""
    r = place.latest
    if r is None:
        return "no promotion recorded"
    if r.kind == "promoted":
        return f"{r.version} promoted by run {r.run_id}"
    return f"{r.version} put back by a rollback of {r.replaced or 'a rollout'}"

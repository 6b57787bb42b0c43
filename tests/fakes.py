"""In-memory implementations of the ports, asserted on their state (no mocks)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from relaunch.adapters.content import split_held
from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import (
    BuildResult,
    DeadLetter,
    Delivery,
    EndpointHealth,
    JobRequest,
    JobState,
    JobStatus,
    ModelVersion,
    Notification,
    PipelineRun,
    TimelineEntry,
)
from relaunch.domain.ports import ConflictError, FetchedArtifact, Recorded
from relaunch.domain.retention import StoredBody


class FakeStore:
    """The whole RunStore in dicts; tests/contract holds it to the same contract as the real stores."""

    def __init__(self) -> None:
        self.runs: dict[str, PipelineRun] = {}
        self.deliveries: dict[str, Delivery] = {}
        self.timelines: dict[str, list[TimelineEntry]] = {}
        self.effects: dict[tuple[str, str], dict[str, Any]] = {}
        self.dead: list[tuple[str, str, str]] = []
        self.contents: dict[str, str] = {}
        self.lanes: dict[str, str] = {}
        self.promotion_records: list[PromotionRecord] = []  # in the order they were kept

    def record_delivery(self, delivery: Delivery, runs: Sequence[PipelineRun]) -> Recorded:
        if delivery.key in self.deliveries:
            return Recorded(False)
        contents = dict(self.contents)
        held, runs = split_held(runs, contents)
        taken = [run.id for run in runs if run.id in self.runs]
        if taken:  # the whole call fails and writes nothing, as the stores' transactions do
            raise ValueError(f"delivery {delivery.key}: run ids already exist: {taken}")
        self.contents.update(contents)
        ids = list(dict.fromkeys([*delivery.run_ids, *(run.id for run in runs)]))
        self.deliveries[delivery.key] = delivery.model_copy(update={"run_ids": ids})
        for run in runs:
            self.runs[run.id] = run
            self.timelines.setdefault(run.id, []).append(
                TimelineEntry(kind="state", message="received", data={"to": run.state.value})
            )
        return Recorded(True, held)

    def lane_head(self, lane: str) -> str | None:
        return self.lanes.get(lane)

    def take_lane(self, lane: str, expected: str | None, run_id: str) -> bool:
        if self.lanes.get(lane) != expected:
            return False
        self.lanes[lane] = run_id
        return True

    def get_delivery(self, key: str) -> Delivery | None:
        return self.deliveries.get(key)

    def list_deliveries(self, limit: int = 50, source: str | None = None) -> list[Delivery]:
        rows = [d for d in self.deliveries.values() if source in (None, d.source)]
        return sorted(rows, key=lambda d: d.received_at, reverse=True)[:limit]

    def list_dead_letters(self, limit: int = 100, source: str | None = None) -> list[DeadLetter]:
        letters = [
            DeadLetter(id=str(i), at=0.0, source=kept, reason=reason, payload=payload)
            for i, (kept, reason, payload) in enumerate(self.dead)
            if source in (None, kept)
        ]
        return letters[::-1][:limit]

    def set_delivery_outcome(self, key: str, outcome: str) -> None:
        if key in self.deliveries:  # an unknown key is ignored, as the stores' updates of no row are
            self.deliveries[key] = self.deliveries[key].model_copy(update={"outcome": outcome})

    def stored_bodies(self, received_before: float) -> list[StoredBody]:
        held = [d for d in self.deliveries.values() if d.received_at < received_before and d.body]
        return [
            StoredBody(d.key, d.source, d.received_at, d.outcome, len(d.body.encode()))
            for d in sorted(held, key=lambda d: d.received_at)
        ]

    def drop_bodies(self, keys: Sequence[str], received_before: float) -> int:
        size = 0
        for key in keys:
            d = self.deliveries.get(key)
            if d is not None and d.body and d.received_at < received_before:
                size += len(d.body.encode())
                self.deliveries[key] = d.model_copy(update={"body": "", "body_dropped_at": time.time()})
        return size

    def get_run(self, run_id: str) -> PipelineRun | None:
        return self.runs.get(run_id)

    def save_run(self, run: PipelineRun, entries: Sequence[TimelineEntry] = ()) -> PipelineRun:
        stored = self.runs[run.id].version  # KeyError for a run never recorded: no conflict
        if stored != run.version:
            raise ConflictError(f"run {run.id}: saved at version {run.version}, store has {stored}")
        saved = run.model_copy(update={"version": run.version + 1})
        self.runs[run.id] = saved
        self.timelines.setdefault(run.id, []).extend(entries)
        return saved

    def list_runs(self, pipeline: str | None = None, limit: int = 50, before: str | None = None) -> list[PipelineRun]:
        order = sorted(self.runs.values(), key=lambda r: (r.created_at, r.id), reverse=True)
        if before is not None:
            if before not in self.runs:
                raise KeyError(f"no run {before!r} to list the runs before")
            order = order[order.index(self.runs[before]) + 1 :]
        return [r for r in order if pipeline in (None, r.pipeline)][:limit]

    def runs_since(self, pipeline: str, since: float) -> list[PipelineRun]:
        runs = [r for r in self.runs.values() if r.pipeline == pipeline and r.created_at >= since]
        return sorted(runs, key=lambda r: r.created_at, reverse=True)

    def active_runs(self, pipeline: str) -> list[PipelineRun]:
        runs = [r for r in self.runs.values() if r.pipeline == pipeline and not r.state.terminal]
        return sorted(runs, key=lambda r: (r.created_at, r.id))

    def list_effects(self, step: str) -> list[dict[str, Any]]:
        return [result for (_, s), result in self.effects.items() if s == step]

    def timeline(self, run_id: str) -> list[TimelineEntry]:
        return list(self.timelines.get(run_id, []))

    def append_timeline(self, run_id: str, entry: TimelineEntry) -> None:
        self.timelines.setdefault(run_id, []).append(entry)

    def get_effect(self, run_id: str, step: str) -> dict[str, Any] | None:
        return self.effects.get((run_id, step))

    def put_effect(self, run_id: str, step: str, result: dict[str, Any]) -> None:
        self.effects.setdefault((run_id, step), result)

    def dead_letter(self, source: str, reason: str, payload: str) -> None:
        self.dead.append((source, reason, payload))

    def record_promotion(self, record: PromotionRecord) -> None:
        key = (record.pipeline, record.environment, record.run_id, record.kind, record.version)
        if all((r.pipeline, r.environment, r.run_id, r.kind, r.version) != key for r in self.promotion_records):
            self.promotion_records.append(record)

    def promotions(self, pipeline: str, environment: str | None = None, limit: int = 50) -> list[PromotionRecord]:
        mine = [r for r in self.promotion_records if r.pipeline == pipeline and environment in (None, r.environment)]
        return sorted(mine[::-1], key=lambda r: r.at, reverse=True)[:limit]  # a tie: the later write first


class FakeBus:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.not_before: list[float] = []  # the times of the messages published with one

    def publish(
        self,
        topic: str,
        data: dict[str, Any],
        attributes: dict[str, str] | None = None,
        *,
        not_before: float | None = None,
    ) -> str:
        self.messages.append((topic, data, attributes or {}))
        if not_before is not None:
            self.not_before.append(not_before)
        return str(len(self.messages))


class ResolvedBuild(BuildResult):
    """What a builder answers when it resolved the run's ref to a commit (as the local checkout builder does)."""

    sha: str | None = None


class FakeBuilder:
    """Builds instantly (or stays pending); a run without a commit gets `head` as its ref's resolved commit."""

    def __init__(self, pending: bool = False, error: str | None = None, head: str = "f" * 40) -> None:
        self.pending, self.error, self.head = pending, error, head
        self.builds: list[str] = []

    def build(self, run: PipelineRun, key: str) -> BuildResult:
        if self.error:
            raise ValueError(self.error)
        if key not in self.builds:
            self.builds.append(key)
        sha = run.trigger.sha or self.head
        image = None if self.pending else f"/images/{sha}"
        return ResolvedBuild(build_id=f"b-{run.id}", image=image, sha=sha)


class FakeArtifacts:
    """W&B artifacts in memory: versions with metadata, and aliases."""

    def __init__(self, versions: dict[str, dict[str, Any]] | None = None) -> None:
        self.versions = dict(versions or {})
        self.fetched: list[tuple[str, str]] = []
        self.aliases: dict[str, str] = {}

    def fetch(self, ref: str, dest: str) -> FetchedArtifact:
        resolved = ref if ref in self.versions else self.aliases.get(ref.rpartition(":")[2], ref)  # alias -> version
        if resolved not in self.versions:
            raise ValueError(f"artifact {ref} does not exist")
        self.fetched.append((ref, dest))
        return FetchedArtifact(ref=resolved, reported_metrics=self.versions[resolved].get("reported_metrics", {}))

    def set_alias(self, ref: str, alias: str) -> None:
        self.aliases[alias] = ref


class FakeBackend:
    """Jobs stay queued until the test finishes them; the evaluation writes files the test provides."""

    def __init__(self) -> None:
        self.submitted: dict[str, JobRequest] = {}
        self.states: dict[str, JobStatus] = {}

    def submit(self, request: JobRequest) -> str:
        job_id = f"job-{request.key}"
        if job_id not in self.submitted:
            self.submitted[job_id] = request
            self.states[job_id] = JobStatus(id=job_id, state="queued")
        return job_id

    def status(self, job_id: str) -> JobStatus:
        return self.states[job_id]

    def cancel(self, job_id: str) -> None:
        self.finish(job_id, "cancelled")

    def finish(self, job_id: str, state: JobState = "succeeded", message: str = "", log_tail: str = "") -> None:
        now = time.time()
        self.states[job_id] = JobStatus(
            id=job_id,
            state=state,
            message=message,
            log_tail=log_tail,
            started_at=now - 2.0,
            finished_at=now,
        )

    def job_for(self, step: str) -> str:
        return next(j for j, r in self.submitted.items() if r.step == step)


class FakeBlobs:
    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self.staged: dict[str, str] = {}  # dest -> src of read-only inputs handed to jobs
        self.copies: list[tuple[str, str]] = []  # (src, dest) of every copy_tree that copied
        self.refuse_copy: str | None = None  # copy_tree raises ValueError with this message

    def read_text(self, uri: str) -> str:
        if uri not in self.files:
            raise FileNotFoundError(uri)
        return self.files[uri]

    def join(self, base: str, *parts: str) -> str:
        return os.path.join(base, *parts)

    def stage_read_only(self, src: str, dest: str) -> str:
        """A copy of src's files under dest (as the local store makes), remembered as (src, dest)."""
        self.staged.setdefault(dest, src)
        for path, text in list(self.files.items()):
            if path.startswith(src.rstrip("/") + "/"):
                self.files.setdefault(dest + path[len(src.rstrip("/")) :], text)
        return dest

    def copy_tree(self, src: str, dest: str) -> str:
        """A copy of src's files under dest, made once per dest (as the adapters make it)."""
        if self.refuse_copy:
            raise ValueError(self.refuse_copy)
        if any(d == dest for _, d in self.copies):
            return dest
        for path, text in list(self.files.items()):
            if path.startswith(src.rstrip("/") + "/"):
                self.files[dest + path[len(src.rstrip("/")) :]] = text
        self.copies.append((src, dest))
        return dest

    def write_eval(
        self,
        folder: str,
        candidate: dict[str, Any],
        champion: dict[str, Any] | None = None,
        outcomes: dict[str, Any] | None = None,
    ) -> None:
        self.files[os.path.join(folder, "metrics.json")] = json.dumps({"candidate": candidate, "champion": champion})
        self.files[os.path.join(folder, "outcomes.json")] = json.dumps(
            outcomes or {"candidate": None, "champion": None}
        )


class FakeRegistry:
    def __init__(self) -> None:
        self.versions: dict[str, list[ModelVersion]] = {}
        self.champions: dict[str, str] = {}
        self.digests: dict[str, str] = {}  # model folder -> the digest content_digest answers (absent: None)
        self.aliases: dict[tuple[str, str], str] = {}  # (pipeline, environment) -> version

    def register(
        self,
        pipeline: str,
        run_id: str,
        artifact_uri: str,
        metrics: dict[str, float],
        metadata: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        existing = [v for v in self.versions.get(pipeline, []) if v.run_id == run_id]
        if existing:
            return existing[0]
        versions = self.versions.setdefault(pipeline, [])
        version = ModelVersion(
            pipeline=pipeline,
            version=f"v{len(versions) + 1}",
            artifact_uri=artifact_uri,
            run_id=run_id,
            metrics=metrics,
            metadata=dict(metadata or {}),
        )
        versions.append(version)
        return version

    def champion(self, pipeline: str) -> ModelVersion | None:
        name = self.champions.get(pipeline)
        return self.get(pipeline, name) if name else None

    def set_champion(self, pipeline: str, version: str) -> None:
        if self.get(pipeline, version) is None:
            raise KeyError(version)
        self.champions[pipeline] = version

    def get(self, pipeline: str, version: str) -> ModelVersion | None:
        return next((v for v in self.versions.get(pipeline, []) if v.version == version), None)

    def content_digest(self, artifact_uri: str) -> str | None:
        return self.digests.get(artifact_uri)

    def alias(self, pipeline: str, name: str) -> ModelVersion | None:
        held = self.aliases.get((pipeline, name))
        return self.get(pipeline, held) if held else None

    def set_alias(self, pipeline: str, name: str, version: str) -> None:
        if self.get(pipeline, version) is None:
            raise KeyError(version)
        self.aliases[(pipeline, name)] = version


class FakeEndpoint:
    """Deploys at once, unless `slow` > 0: then a deploy or undeploy hands back an operation name and finishes on the
    `slow`-th poll of it (`starts` counts the operations started, as Vertex would bill them)."""

    can_address_versions = True

    def __init__(self, refuse: str | None = None, slow: int = 0) -> None:
        self.deployed: dict[str, dict[str, int]] = {}
        self.calls: list[tuple[str, ...]] = []
        self.refuse = refuse
        self.healths: dict[str, EndpointHealth] = {}  # version -> what health() answers (default: no traffic)
        self.predict_error: str | None = None
        self.slow = slow
        self.running: dict[str, int] = {}  # operation name -> polls left
        self.starts: list[str] = []

    def _operation(self, kind: str, version: str, operation: str | None) -> str | None:
        """None when the operation is done (or there is none, `slow` == 0), else its name."""
        if operation is None:
            if not self.slow:
                return None
            operation = f"operations/{kind}-{version}-{len(self.starts)}"
            self.starts.append(operation)
            self.running[operation] = self.slow
            return operation
        self.running[operation] -= 1
        return operation if self.running[operation] > 0 else None

    def deploy(self, endpoint: str, model: ModelVersion, *, operation: str | None = None) -> str | None:
        if self.refuse:
            raise ValueError(self.refuse)
        self.calls.append(("deploy", endpoint, model.version))
        if model.version in self.deployed.get(endpoint, {}):
            return None
        if self._operation("deploy", model.version, operation) is not None:
            return operation or self.starts[-1]
        split = self.deployed.setdefault(endpoint, {})
        split.setdefault(model.version, 100 if not split else 0)
        return None

    def set_traffic(self, endpoint: str, split: dict[str, int]) -> None:
        self.calls.append(("set_traffic", endpoint, json.dumps(split, sort_keys=True)))
        current = self.deployed[endpoint]
        self.deployed[endpoint] = {v: split.get(v, 0) for v in current}

    def undeploy(self, endpoint: str, version: str, *, operation: str | None = None) -> str | None:
        self.calls.append(("undeploy", endpoint, version))
        if version in self.deployed.get(endpoint, {}) and self._operation("undeploy", version, operation):
            return operation or self.starts[-1]
        self.deployed.get(endpoint, {}).pop(version, None)  # absent: a no-op, as on the real endpoints
        return None

    def traffic(self, endpoint: str) -> dict[str, int]:
        return dict(self.deployed.get(endpoint, {}))

    def health(self, endpoint: str, version: str, since: float) -> EndpointHealth:
        return self.healths.get(version, EndpointHealth(version=version))

    def predict(self, endpoint: str, instances: list[Any], *, version: str | None = None) -> dict[str, Any]:
        """One prediction per instance, or the error set in `predict_error` (a smoke test of a broken model)."""
        self.calls.append(("predict", endpoint, version or ""))
        if self.predict_error is not None:
            raise ValueError(self.predict_error)
        if version is not None and version not in self.deployed.get(endpoint, {}):
            raise ValueError(f"version {version} is not deployed on {endpoint}")
        return {"predictions": [0 for _ in instances], "model_version": version}


class FakeNotifier:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Notification] = []
        self.fail = fail

    def notify(self, notification: Notification) -> None:
        self.sent.append(notification)
        if self.fail:
            raise RuntimeError("slack is down")


class FakeHistory:
    """A linear history of commits (oldest first) plus commits off it; records every question."""

    def __init__(self, line: Sequence[str] = (), off: Sequence[str] = (), fail: Exception | None = None) -> None:
        self.line, self.off, self.fail = list(line), set(off), fail
        self.asked: list[tuple[str, str | None, str, str]] = []

    def relation(self, repo: str, clone_url: str | None, base: str, head: str) -> str:
        self.asked.append((repo, clone_url, base, head))
        if self.fail is not None:
            raise self.fail
        if base == head:
            return "identical"
        if base in self.off or head in self.off:
            return "diverged"
        if base not in self.line or head not in self.line:
            return "unknown"
        return "ahead" if self.line.index(head) > self.line.index(base) else "behind"

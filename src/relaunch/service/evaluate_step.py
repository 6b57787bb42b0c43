"""What an evaluation is given and what it hands back: its evaluator's image, a read-only champion, its scores.

The evaluator is code the candidate cannot change (see domain/evaluator.py); when it is not the candidate's own
commit it is built through the same ImageBuilder as the derived run `<run id>.evaluator`. The champion is staged
as a read-only input in the run's own folder, so no job is ever handed the registry's.
"""

from __future__ import annotations

import json

from relaunch.domain import effects
from relaunch.domain.evaluator import choose, evaluator_run
from relaunch.domain.model import ModelVersion, PipelineRun, Scores, TimelineEntry
from relaunch.domain.ports import BlobStore, ImageBuilder, Runs
from relaunch.domain.spec import PipelineSpec


class EvaluationInputs:
    """Builds evaluators, stages champions and reads evaluation outputs through the ports."""

    def __init__(self, store: Runs, builder: ImageBuilder, blobs: BlobStore, artifact_root: str) -> None:
        self.store, self.builder, self.blobs, self.artifact_root = store, builder, blobs, artifact_root

    def with_evaluator(self, run: PipelineRun, spec: PipelineSpec) -> PipelineRun | None:
        """The run with its evaluator's commit and image; a separate evaluator is built first (None while it is).

        ValueError when no evaluator can be chosen or its build is refused: permanent for the run.
        """
        choice = choose(run, spec)
        if not choice.separate:
            return run.model_copy(update={"evaluator_sha": run.trigger.sha, "evaluator_image": run.image})
        result = self.builder.build(evaluator_run(run, choice), key=effects.evaluator_build(run.id))
        if result.image is None:
            if run.evaluator_build_id != result.build_id:
                note = TimelineEntry(kind="info", message=f"evaluator build {result.build_id} started")
                self.store.save_run(run.model_copy(update={"evaluator_build_id": result.build_id}), [note])
            return None
        sha = result.sha or choice.sha
        if choice.sha and sha != choice.sha:  # a builder must check out exactly the commit it was given
            raise ValueError(f"the evaluator's build checked out {sha}, not {choice.sha}")
        update = {"evaluator_sha": sha, "evaluator_image": result.image, "evaluator_build_id": result.build_id}
        if run.evaluator_sha == sha and run.evaluator_image == result.image:
            return run.model_copy(update=update)
        note = TimelineEntry(kind="info", message=f"evaluator: {choice.label} at {sha}", data={"image": result.image})
        return self.store.save_run(run.model_copy(update=update), [note])

    def champion_input(self, run: PipelineRun, champion: ModelVersion | None) -> str | None:
        """The champion's model as a read-only input of the run's jobs: never the registry's own folder."""
        if champion is None:
            return None
        dest = self.blobs.join(self.artifact_root, "runs", run.id, "inputs", f"champion-{champion.version}")
        return self.blobs.stage_read_only(champion.artifact_uri, dest)

    def read_scores(self, folder: str, with_champion: bool) -> tuple[Scores, Scores | None, int | None]:
        """Candidate and champion scores, and `n_examples` if stated; ValueError (or KeyError) naming the file."""
        metrics, outcomes = (self._read_object(folder, name) for name in ("metrics.json", "outcomes.json"))
        n_examples = metrics.get("n_examples")
        if n_examples is not None and (type(n_examples) is not int or n_examples < 0):
            raise ValueError(f"metrics.json: n_examples must be a whole number, got {str(n_examples)[:40]!r}")
        candidate = Scores.model_validate({"metrics": metrics["candidate"], "outcomes": outcomes.get("candidate")})
        if metrics.get("champion") is None or not with_champion:
            return candidate, None, n_examples
        champion = Scores.model_validate({"metrics": metrics["champion"], "outcomes": outcomes.get("champion")})
        return candidate, champion, n_examples

    def _read_object(self, folder: str, name: str) -> dict[str, object]:
        value = json.loads(self.blobs.read_text(self.blobs.join(folder, name)))
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected a JSON object, got {type(value).__name__}")
        return value

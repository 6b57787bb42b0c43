"""Vertex AI Model Registry: one parent model per pipeline (`relaunch-<pipeline>`), one version per promoted run.

Versions are "v<version_id>"; the champion is the version carrying the `champion` version alias. A version is
labelled with its run, so registering a run again finds the version it made; its metrics and full run id ride in
the version description (labels are too narrow for either), read back by `get`. The metrics are also imported as the
version's ModelEvaluation (models.evaluations.import), which is what the console's Evaluate tab shows.

An upload is awaited at most `operation_timeout_s`, well under a function's life: past it a TransientError makes the
platform redeliver; a retry that finds an upload still running on the model (operations.list) waits for another
redelivery instead of uploading the run's model again, and once it is done the run's label finds the version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from relaunch.adapters.gcp.vertex_common import VertexService, call, label_value, require, running_operation, wait
from relaunch.domain.model import ModelVersion
from relaunch.domain.ports import TransientError

CHAMPION = "champion"
RUN_LABEL = "relaunch-run-id"
_VERSION = re.compile(r"^v([1-9][0-9]*)$")
_DESCRIPTION_PREFIX = "relaunch "
_MODEL_ID_MAX = 63
# The schema Vertex's own pipelines import classification metrics with; relaunch's metrics are named by the
# pipeline's evaluator, and the console lists whatever keys the metrics object carries.
METRICS_SCHEMA = "gs://google-cloud-aiplatform/schema/modelevaluation/classification_metrics_1.0.0.yaml"


def model_id_for(pipeline: str) -> str:
    """The parent model's id (Vertex: at most 63 of [a-z0-9_-], starting with a letter)."""
    model_id = f"relaunch-{pipeline}"
    if len(model_id) <= _MODEL_ID_MAX:
        return model_id
    return f"{model_id[: _MODEL_ID_MAX - 13]}-{hashlib.sha256(pipeline.encode()).hexdigest()[:12]}"


class VertexRegistry(VertexService):
    """A `ModelRegistry` on Vertex AI; `register` is idempotent per run."""

    client_kind = "ModelServiceClient"

    def __init__(
        self,
        project: str,
        region: str,
        *,
        serving_image: str,
        api_endpoint: str | None = None,
        credentials: Any | None = None,
        operation_timeout_s: float = 120.0,
        poll_interval_s: float = 2.0,
    ) -> None:
        require("VertexRegistry", project=project, region=region, serving_image=serving_image)
        super().__init__(project, region, api_endpoint, credentials)
        self.serving_image = serving_image
        self.operation_timeout_s = operation_timeout_s
        self.poll_interval_s = poll_interval_s

    def model_name(self, pipeline: str) -> str:
        return f"projects/{self.project}/locations/{self.region}/models/{model_id_for(pipeline)}"

    # -- ModelRegistry ----------------------------------------------------------------------------------------

    def register(
        self,
        pipeline: str,
        run_id: str,
        artifact_uri: str,
        metrics: dict[str, float],
        metadata: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Upload the run's model as a new version of the pipeline's model, unless the run already has one; its
        provenance (`metadata`) rides in the version description, the trigger kind also in a label."""
        if not artifact_uri.startswith("gs://"):
            raise ValueError(f"artifact_uri must be a gs:// URI for Vertex AI, got {artifact_uri!r}")
        try:
            existing = self._by_run(pipeline, run_id)
            model_exists = True
        except LookupError:  # no parent model yet: this is the pipeline's first version
            existing, model_exists = None, False
        if existing is not None:
            self._evaluate(existing, run_id, metrics)  # a crash after the upload left it out
            return existing
        if model_exists:
            what = f"find an upload of {pipeline} still running"
            running = running_operation(self.client, self.model_name(pipeline), "UploadModel", what)
            if running is not None:  # started by an earlier delivery: the next redelivery finds its version
                raise TransientError(f"Vertex AI upload of a version of {pipeline}: {running} still running")
        request: dict[str, Any] = {
            "parent": self.parent,
            "model": self._model(pipeline, run_id, artifact_uri, metrics, dict(metadata or {})),
        }
        if model_exists:
            request["parent_model"] = self.model_name(pipeline)
        else:
            request["model_id"] = model_id_for(pipeline)
        operation = call(self.client, "upload_model", request, f"upload a version of {pipeline}")
        uploaded = wait(operation, f"upload a version of {pipeline}", self.operation_timeout_s, self.poll_interval_s)
        # Two racing registrations of one run both upload; both then answer with the run's oldest version.
        found = self._by_run(pipeline, run_id) or ModelVersion(
            pipeline=pipeline,
            version=f"v{uploaded.model_version_id}",
            artifact_uri=artifact_uri,
            run_id=run_id,
            metrics=metrics,
            resource_name=f"{uploaded.model}@{uploaded.model_version_id}",
            metadata=dict(metadata or {}),
        )
        self._evaluate(found, run_id, metrics)
        return found

    def content_digest(self, artifact_uri: str) -> str | None:
        """None: the registry reads no Cloud Storage, so an identical model is registered (its metadata says so)."""
        return None

    def champion(self, pipeline: str) -> ModelVersion | None:
        """The version carrying the champion alias, if any."""
        return self._get_ref(pipeline, CHAMPION)

    def set_champion(self, pipeline: str, version: str) -> None:
        """Move the champion alias to `version` (KeyError if it is not registered)."""
        self.set_alias(pipeline, CHAMPION, version)

    def alias(self, pipeline: str, name: str) -> ModelVersion | None:
        """The version carrying an environment's version alias (`staging`, `production`), if any."""
        return self._get_ref(pipeline, name)

    def set_alias(self, pipeline: str, name: str, version: str) -> None:
        """Move a version alias to `version` (KeyError if it is not registered)."""
        target = self.get(pipeline, version)
        if target is None:
            raise KeyError(f"{pipeline} has no version {version!r}")
        current = self._get_ref(pipeline, name)
        if current is not None and current.version == version:
            return
        # Off the old holder first: an alias names one version of a model, so adding it first could be refused.
        if current is not None:
            self._merge(current, [f"-{name}"])
        self._merge(target, [name])

    def get(self, pipeline: str, version: str) -> ModelVersion | None:
        """The version ("v3"), or None if there is no such version."""
        match = _VERSION.match(version)
        return self._get_ref(pipeline, match.group(1)) if match else None

    # -- the API calls ----------------------------------------------------------------------------------------

    def _get_ref(self, pipeline: str, ref: str) -> ModelVersion | None:
        name = f"{self.model_name(pipeline)}@{ref}"
        try:
            model = call(self.client, "get_model", {"name": name}, f"get {name}")
        except LookupError:
            return None
        return _version_of(pipeline, model)

    def _by_run(self, pipeline: str, run_id: str) -> ModelVersion | None:
        """The run's version (its oldest, if a race made two); LookupError if the parent model does not exist."""
        label = label_value(run_id)
        request = {"name": self.model_name(pipeline), "filter": f'labels.{RUN_LABEL}="{label}"'}
        pager = call(self.client, "list_model_versions", request, f"list versions of {pipeline}")
        mine = [_version_of(pipeline, m) for m in pager.models if m.labels.get(RUN_LABEL) == label]
        mine = [v for v in mine if v.run_id == run_id]
        return min(mine, key=lambda v: int(v.version[1:])) if mine else None

    def _evaluate(self, version: ModelVersion, run_id: str, metrics: dict[str, float]) -> None:
        """Import the run's metrics as a ModelEvaluation of the version, unless the run already imported one."""
        from google.cloud import aiplatform_v1 as v1

        parent, display = str(version.resource_name), f"relaunch {run_id}"
        listed = call(self.client, "list_model_evaluations", {"parent": parent}, f"list evaluations of {parent}")
        if any(e.display_name == display for e in listed):
            return
        evaluation = v1.ModelEvaluation(
            display_name=display,
            metrics_schema_uri=METRICS_SCHEMA,
            metrics=dict(metrics),
            metadata={"relaunch_run_id": run_id},
        )
        request = {"parent": parent, "model_evaluation": evaluation}
        call(self.client, "import_model_evaluation", request, f"import the evaluation of {parent}")

    def _merge(self, version: ModelVersion, aliases: list[str]) -> None:
        request = {"name": version.resource_name, "version_aliases": aliases}
        call(self.client, "merge_version_aliases", request, f"set aliases {aliases} on {version.resource_name}")

    def _model(
        self, pipeline: str, run_id: str, artifact_uri: str, metrics: dict[str, float], metadata: dict[str, str]
    ) -> Any:
        from google.cloud import aiplatform_v1 as v1

        described = json.dumps(
            {"run_id": run_id, "metrics": metrics, **({"metadata": metadata} if metadata else {})}, sort_keys=True
        )
        labels = {RUN_LABEL: label_value(run_id), "relaunch-pipeline": label_value(pipeline)}
        if metadata.get("trigger"):
            labels["relaunch-trigger"] = label_value(metadata["trigger"])
        return v1.Model(
            display_name=model_id_for(pipeline),
            description=f"relaunch pipeline {pipeline}",
            version_description=_DESCRIPTION_PREFIX + described,
            artifact_uri=artifact_uri,
            container_spec=v1.ModelContainerSpec(image_uri=self.serving_image),
            labels=labels,
        )


def _version_of(pipeline: str, model: Any) -> ModelVersion:
    described = _described(model.version_description)
    stamp = model.version_create_time or model.create_time
    return ModelVersion(
        pipeline=pipeline,
        version=f"v{model.version_id}",
        artifact_uri=model.artifact_uri,
        run_id=str(described.get("run_id") or model.labels.get(RUN_LABEL, "")),
        metrics={str(k): float(v) for k, v in (described.get("metrics") or {}).items()},
        created_at=stamp.timestamp() if stamp else 0.0,
        resource_name=f"{model.name}@{model.version_id}",
        metadata={str(k): str(v) for k, v in (described.get("metadata") or {}).items()},
    )


def _described(description: str) -> dict[str, Any]:
    """What relaunch wrote in the version description; {} for a version someone else uploaded."""
    if not description.startswith(_DESCRIPTION_PREFIX):
        return {}
    try:
        value = json.loads(description.removeprefix(_DESCRIPTION_PREFIX))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

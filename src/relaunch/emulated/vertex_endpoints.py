"""Endpoints of the Vertex AI stand-in: create, deployModel, undeployModel, traffic PATCH and predict.

Without a storage root a prediction is canned (the instance's length); with one, the deployed model's artifacts are
read as Vertex's prebuilt scikit-learn container reads them: `<artifactUri>/model.joblib`, loaded with joblib, its
`predict(instances)` answered (https://cloud.google.com/vertex-ai/docs/predictions/pre-built-containers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from relaunch.emulated.vertex_models import VertexModels
from relaunch.emulated.vertex_state import TYPE, ApiError, now, tail

MODEL_FILE = "model.joblib"


class VertexEndpoints(VertexModels):
    """endpoints.*: deployments change the endpoint when their operation is done."""

    def _create_endpoint(self, loc: str, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("displayName"):
            raise ApiError(400, "endpoint.displayName is required")
        endpoint_id = str(next(self._ids))
        stamp = now()
        endpoint = {**body, "name": self.name(loc, f"endpoints/{endpoint_id}"), "createTime": stamp}
        endpoint.update(updateTime=stamp, deployedModels=[], trafficSplit={})
        self.endpoints[f"endpoints/{endpoint_id}"] = endpoint
        return self._operation(
            loc, f"endpoints/{endpoint_id}", "CreateEndpoint", {"@type": TYPE + "Endpoint", **endpoint}
        )

    def _deploy(self, loc: str, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._get(self.endpoints, resource)
        deployed = dict(body.get("deployedModel") or {})
        version = self._model_version(tail(deployed.get("model", "")))
        if not deployed.get("dedicatedResources", {}).get("machineSpec", {}).get("machineType"):
            raise ApiError(400, "deployedModel.dedicatedResources.machineSpec.machineType is required")
        deployed.update(id=str(next(self._ids)) + "000", model=version["name"], modelVersionId=version["versionId"])
        deployed["createTime"] = now()
        split = {(deployed["id"] if k == "0" else k): v for k, v in (body.get("trafficSplit") or {}).items()}
        if split and sum(split.values()) != 100:
            raise ApiError(400, f"traffic split {split} must sum to 100")

        def done() -> None:
            endpoint["deployedModels"].append(deployed)
            if split:
                self._set_split(endpoint, split)

        response = {"@type": TYPE + "DeployModelResponse", "deployedModel": deployed}
        return self._operation(loc, resource, "DeployModel", response, done)

    def _undeploy(self, loc: str, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._get(self.endpoints, resource)
        target = body.get("deployedModelId")
        if target not in {d["id"] for d in endpoint["deployedModels"]}:
            raise ApiError(404, f"deployed model {target} not found")
        if endpoint["trafficSplit"].get(target, 0) > 0 and not body.get("trafficSplit"):
            raise ApiError(400, f"deployed model {target} still takes traffic", "FAILED_PRECONDITION")

        def done() -> None:
            endpoint["deployedModels"] = [d for d in endpoint["deployedModels"] if d["id"] != target]
            endpoint["trafficSplit"] = {k: v for k, v in endpoint["trafficSplit"].items() if k != target}

        return self._operation(loc, resource, "UndeployModel", {"@type": TYPE + "UndeployModelResponse"}, done)

    def _patch_endpoint(self, resource: str, query: dict[str, list[str]], body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._get(self.endpoints, resource)
        if query.get("updateMask") != ["trafficSplit"]:
            raise ApiError(400, f"unsupported updateMask {query.get('updateMask')}")
        self._set_split(endpoint, body.get("trafficSplit") or {})
        return endpoint

    def _predict(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        """Predictions by the deployed model with the largest share: canned, or its model.joblib's."""
        endpoint = self._get(self.endpoints, resource)
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            raise ApiError(400, "instances must be a non-empty list")
        if not endpoint["trafficSplit"]:
            raise ApiError(400, f"endpoint {resource} has no deployed model taking traffic", "FAILED_PRECONDITION")
        if self.predict_error is not None:
            raise ApiError(*self.predict_error)
        served = max(endpoint["trafficSplit"], key=lambda k: endpoint["trafficSplit"][k])
        deployed = next(d for d in endpoint["deployedModels"] if d["id"] == served)
        if self.storage_root is None:
            predictions: list[Any] = [len(i) if isinstance(i, list) else 0 for i in instances]
        else:
            version = self._model_version(f"{tail(deployed['model'])}@{deployed['modelVersionId']}")
            predictions = self._real_predictions(self.storage_root, version.get("artifactUri", ""), instances)
        return {
            "predictions": predictions,
            "deployedModelId": served,
            "model": deployed["model"],
            "modelVersionId": deployed["modelVersionId"],
        }

    def _real_predictions(self, root: Path, artifact_uri: str, instances: list[Any]) -> list[Any]:
        if not artifact_uri.startswith("gs://"):
            raise ApiError(
                400, f"the model's artifactUri {artifact_uri!r} is not a gs:// folder", "FAILED_PRECONDITION"
            )
        path = root.joinpath(*artifact_uri.removeprefix("gs://").split("/"), MODEL_FILE)
        try:
            model = self._load(path)
            return list(model.predict(instances).tolist())
        except FileNotFoundError as exc:
            raise ApiError(400, f"{artifact_uri.rstrip('/')}/{MODEL_FILE} not found", "FAILED_PRECONDITION") from exc
        except (ValueError, TypeError) as exc:  # what scikit-learn raises for instances of the wrong shape
            raise ApiError(400, f"Prediction failed: {exc}") from exc

    def _load(self, path: Path) -> Any:
        """The unpickled model at `path`, loaded again only when the file changed."""
        import joblib

        stamp = path.stat().st_mtime
        cached = self._loaded.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, joblib.load(path))
            self._loaded[path] = cached
        return cached[1]

    def _set_split(self, endpoint: dict[str, Any], split: dict[str, int]) -> None:
        known = {d["id"] for d in endpoint["deployedModels"]}
        if not set(split) <= known or sum(split.values()) != 100:
            raise ApiError(400, f"traffic split {split} must name deployed models and sum to 100")
        endpoint["trafficSplit"] = dict(split)

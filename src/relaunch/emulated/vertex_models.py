"""The Model Registry of the Vertex AI stand-in: upload (versions under a parent), get by version or alias,
listVersions, mergeVersionAliases, and model evaluations (import, list)."""

from __future__ import annotations

from typing import Any

from relaunch.emulated.vertex_state import TYPE, ApiError, VertexState, filtered, now, tail


class VertexModels(VertexState):
    """models.* and models.evaluations.*; "default" follows the newest version, as on Vertex."""

    def _upload(self, loc: str, body: dict[str, Any]) -> dict[str, Any]:
        model = body.get("model") or {}
        if not model.get("displayName") or not model.get("containerSpec", {}).get("imageUri"):
            raise ApiError(400, "model.displayName and model.containerSpec.imageUri are required")
        if body.get("parentModel"):
            model_id = tail(body["parentModel"]).split("/")[1]
            if model_id not in self.models:
                raise ApiError(404, f"parent model {body['parentModel']} not found")
        else:
            model_id = body.get("modelId") or str(next(self._ids))
            if model_id in self.models:
                raise ApiError(409, f"model {model_id} already exists")
            self.models[model_id] = {}
        versions = self.models[model_id]
        version_id = str(len(versions) + len(self._uploading.get(model_id, [])) + 1)
        self._uploading.setdefault(model_id, []).append(version_id)
        stamp = now()
        uploaded = {
            **model,
            "name": self.name(loc, f"models/{model_id}"),
            "versionId": version_id,
            "versionAliases": ["default"] if not versions else [],
            "createTime": stamp,
            "versionCreateTime": stamp,
            "versionUpdateTime": stamp,
        }

        def done() -> None:  # the version exists once its upload is done
            self._uploading[model_id].remove(version_id)
            versions[version_id] = uploaded
            if len(versions) > 1:  # "default" follows the newest version, as on Vertex
                for other in versions.values():
                    other["versionAliases"] = [a for a in other["versionAliases"] if a != "default"]
                uploaded["versionAliases"] = ["default"]

        response = {"@type": TYPE + "UploadModelResponse", "model": uploaded["name"], "modelVersionId": version_id}
        return self._operation(loc, f"models/{model_id}", "UploadModel", response, done)

    def _versioned(self, ref: str) -> str:
        """`model@version` of a model reference with a version id or alias (404 if there is no such version)."""
        return f"{ref.partition('@')[0]}@{self._model_version(f'models/{ref}')['versionId']}"

    def _import_evaluation(self, loc: str, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        """models.evaluations.import: a ModelEvaluation needs a metrics schema and metrics (an object)."""
        evaluation = dict(body.get("modelEvaluation") or {})
        if not evaluation.get("metricsSchemaUri", "").startswith("gs://"):
            raise ApiError(400, "modelEvaluation.metricsSchemaUri must be a gs:// URI")
        if not isinstance(evaluation.get("metrics"), dict):
            raise ApiError(400, "modelEvaluation.metrics must be an object")
        key = self._versioned(ref)
        number = sum(len(found) for found in self.evaluations.values()) + 1  # not from _ids: other names stay put
        evaluation.update(name=self.name(loc, f"models/{ref.partition('@')[0]}/evaluations/{number}"))
        evaluation["createTime"] = now()
        self.evaluations.setdefault(key, []).append(evaluation)
        return evaluation

    def _model_version(self, resource: str) -> dict[str, Any]:
        model_id, _, ref = resource.split("/")[1].partition("@")
        versions = self.models.get(model_id)
        if not versions:
            raise ApiError(404, f"model {model_id} not found")
        ref = ref or "default"
        for version in versions.values():
            if ref == version["versionId"] or ref in version["versionAliases"]:
                return version
        raise ApiError(404, f"model {model_id} has no version or alias {ref!r}")

    def _list_versions(self, model_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
        if model_id not in self.models:
            raise ApiError(404, f"model {model_id} not found")
        return {"models": filtered(self.models[model_id].values(), query)}

    def _merge_aliases(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        if "@" not in resource:
            raise ApiError(400, "name must include a version id")
        version = self._model_version(resource)
        siblings = self.models[resource.split("/")[1].partition("@")[0]].values()
        for alias in body.get("versionAliases", []):
            if alias.startswith("-"):
                version["versionAliases"] = [a for a in version["versionAliases"] if a != alias[1:]]
            elif any(alias in v["versionAliases"] for v in siblings if v is not version):
                raise ApiError(400, f"alias {alias} is already used by another version")
            elif alias not in version["versionAliases"]:
                version["versionAliases"].append(alias)
        return version

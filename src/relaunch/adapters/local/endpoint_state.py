"""What the local endpoint server serves: deployed versions and splits (persisted), cached models, stats.

Health: every model call is counted per (endpoint, version) with its time, outcome and latency (endpoint_stats
keeps a bounded window in memory: a restart starts a new window). `health(name, version, since)` answers
requests, errors (model exceptions and 5xx), error rate and p50/p95 latency since a timestamp.

Faults, for tests and the demo: a `relaunch_fault.json` file in a model's folder, e.g.
`{"error_rate": 0.5, "latency_ms": 800}`, makes that model fail (raise) on that share of predictions and answer that
much slower, the two ways a bad model fails in production. It is read on every prediction (cached by mtime), so a
test may add or remove it while the version serves. Training code can write it to simulate a bad release.

Models are pickles (loading one runs its code), so they load only from files inside the registry's folder. A version
deployed with its `python_environment` (the hash of the environment it was trained in) is loaded and predicted by a
worker of that environment (adapters/local/predictor.py), so the scikit-learn that pickled it unpickles it; one
without is served in-process, by relaunch's own packages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded with the first prediction: reading the state (reconcile's housekeeping) never pays
    import numpy as np

from relaunch.adapters.local.endpoint_guard import inside
from relaunch.adapters.local.endpoint_stats import Stats
from relaunch.adapters.local.predictor import Predictor, Predictors
from relaunch.domain.dependencies import is_environment_hash

log = logging.getLogger(__name__)
MODEL_FILE = "model.joblib"
FAULT_FILE = "relaunch_fault.json"


class ApiError(Exception):
    """A request the server refuses, with the HTTP status to answer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Fault:
    error_rate: float = 0.0
    latency_ms: float = 0.0


class ServingState:
    """Endpoints with their deployed versions and traffic splits; every change is written to `state_path`.
    Models load only from `registry_dir` (RuntimeError at start if the state file names a path outside it), in the
    worker of their environment under `envs_dir` when they name one (in-process without `envs_dir`)."""

    def __init__(
        self, state_path: Path, seed: int | None = None, *, registry_dir: Path, envs_dir: Path | None = None
    ) -> None:
        self.state_path = Path(state_path)
        self.registry_dir = Path(registry_dir)
        self.predictors = Predictors(envs_dir)
        self._loaded: dict[tuple[str, str | None], tuple[Predictor, str]] = {}
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._faults: dict[str, tuple[int, _Fault]] = {}
        self._started_at = time.time()
        self._stats: dict[tuple[str, str], Stats] = {}
        self._endpoints: dict[str, dict[str, Any]] = {}
        if self.state_path.exists():
            self._endpoints = json.loads(self.state_path.read_text())["endpoints"]
            self._refuse_foreign_models()

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._endpoints)

    def describe(self, name: str) -> dict[str, Any]:
        """Deployed versions, split and per-version stats of an endpoint."""
        with self._lock:
            endpoint = self._endpoint(name)
            stats = {
                d["version"]: self._stats.get((name, d["version"]), Stats()).as_dict() for d in endpoint["deployed"]
            }
            return {
                "name": name,
                "deployed": list(endpoint["deployed"]),
                "split": dict(endpoint["split"]),
                "stats": stats,
            }

    def deploy(self, name: str, version: str, artifact_uri: str, python_environment: Any = None) -> dict[str, Any]:
        """Deploy at 0% (100% if it is the only version), loading it in its environment's worker when it names one;
        the same version and artifact again is a no-op."""
        if not version or not artifact_uri:
            raise ApiError(400, "deploy needs a non-empty 'version' and 'artifact_uri'")
        if python_environment is not None and not _is_hash(python_environment):
            raise ApiError(400, "'python_environment' must be an environment hash (16 hex digits)")
        self._load(artifact_uri, python_environment, on_error=400)
        with self._lock:
            endpoint = self._endpoints.setdefault(name, {"deployed": [], "split": {}})
            current = {d["version"]: d["artifact_uri"] for d in endpoint["deployed"]}
            if version in current and current[version] != artifact_uri:
                raise ApiError(409, f"version {version} is already deployed from {current[version]}")
            if version not in current:
                deployed = {"version": version, "artifact_uri": artifact_uri, "deployed_at": time.time()}
                if python_environment is not None:
                    deployed["python_environment"] = python_environment
                endpoint["deployed"].append(deployed)
                endpoint["split"][version] = 100 if len(endpoint["deployed"]) == 1 else 0
                self._save()
            return self.describe(name)

    def set_traffic(self, name: str, split: Any) -> dict[str, Any]:
        """Replace the split; unnamed deployed versions get 0%."""
        with self._lock:
            endpoint = self._endpoint(name)
            deployed = [d["version"] for d in endpoint["deployed"]]
            _check_split(split, deployed)
            endpoint["split"] = {v: int(split.get(v, 0)) for v in deployed}
            self._save()
            return self.describe(name)

    def undeploy(self, name: str, version: str) -> dict[str, Any]:
        """Remove a version that no longer takes traffic, or the only one (the endpoint then serves nothing);
        an absent version is a no-op."""
        with self._lock:
            endpoint = self._endpoint(name)
            others = [d for d in endpoint["deployed"] if d["version"] != version]
            if endpoint["split"].get(version, 0) > 0 and others:
                raise ApiError(409, f"version {version} still has {endpoint['split'][version]}% of traffic")
            endpoint["deployed"] = [d for d in endpoint["deployed"] if d["version"] != version]
            endpoint["split"].pop(version, None)
            self._save()
            return self.describe(name)

    def predict(
        self, name: str, instances: Any, route_key: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        """Route one request by the split (or to `version`, even at 0%, for smoke tests) and predict with it."""
        rows = _instances(instances)
        with self._lock:
            deployed = self._pinned(name, version) if version else self._route(name, route_key)
            version, artifact_uri = deployed["version"], deployed["artifact_uri"]
            if (name, version) not in self._stats:
                self._stats[(name, version)] = self._new_stats(name, version)
            stats = self._stats[(name, version)]
        started = time.perf_counter()
        try:
            self._inject_fault(artifact_uri)
            predictor, path = self._load(artifact_uri, deployed.get("python_environment"), on_error=500)
            predictions = predictor.predict(path, artifact_uri, rows)
        except Exception as exc:
            with self._lock:
                stats.record(failed=True, latency_ms=(time.perf_counter() - started) * 1000)
            if isinstance(exc, ApiError):
                raise
            raise ApiError(400 if isinstance(exc, ValueError) else 500, f"prediction failed: {exc}") from exc
        with self._lock:
            stats.record(failed=False, latency_ms=(time.perf_counter() - started) * 1000)
        return {"predictions": predictions, "deployedModelId": version, "model_version": version}

    def health(self, name: str, version: str, since: float = 0.0) -> dict[str, Any]:
        """Requests, errors, error rate and p50/p95 latency of `version` since `since` (epoch seconds)."""
        with self._lock:
            stats = self._stats.get((name, version))
            if stats is None:
                if version not in {d["version"] for d in self._endpoint(name)["deployed"]}:
                    raise ApiError(404, f"version {version} is not deployed on endpoint {name} and has no traffic")
                stats = self._new_stats(name, version)
            return stats.window(version, since, time.time())

    def _route(self, name: str, route_key: str | None) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        weighted = [(d, endpoint["split"].get(d["version"], 0)) for d in endpoint["deployed"]]
        weighted = [(d, pct) for d, pct in weighted if pct > 0]
        if not weighted:
            raise ApiError(404, f"endpoint {name} has no deployed model taking traffic")
        if route_key is not None:
            point = int.from_bytes(hashlib.sha256(route_key.encode()).digest()[:8], "big") % 100
        else:
            point = self._rng.randrange(100)
        for deployed, pct in weighted:
            if point < pct:
                return deployed
            point -= pct
        return weighted[-1][0]

    def _new_stats(self, name: str, version: str) -> Stats:
        """Counting starts when the version was deployed, or when this server started if that was later."""
        return Stats(started_at=max(self._started_at, _deployed_at(self._endpoint(name), version)))

    def _pinned(self, name: str, version: str) -> dict[str, Any]:
        for deployed in self._endpoint(name)["deployed"]:
            if deployed["version"] == version:
                return dict(deployed)
        raise ApiError(404, f"version {version} is not deployed on endpoint {name}")

    def _inject_fault(self, artifact_uri: str) -> None:
        """Slow down and/or fail as the model folder's fault file says (see the module docstring)."""
        fault = self._fault(artifact_uri)
        if fault is None:
            return
        if fault.latency_ms > 0:
            time.sleep(fault.latency_ms / 1000)
        with self._lock:
            draw = self._rng.random()
        if draw < fault.error_rate:
            raise RuntimeError(f"injected fault ({FAULT_FILE}: error_rate {fault.error_rate:g})")

    def _fault(self, artifact_uri: str) -> _Fault | None:
        path = Path(artifact_uri.removeprefix("file://")) / FAULT_FILE
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        cached = self._faults.get(artifact_uri)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            raw = json.loads(path.read_text())
            fault = _Fault(error_rate=float(raw.get("error_rate", 0.0)), latency_ms=float(raw.get("latency_ms", 0.0)))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise ApiError(500, f"unreadable {FAULT_FILE} in {artifact_uri}: {exc}") from exc
        self._faults[artifact_uri] = (mtime, fault)
        return fault

    def _endpoint(self, name: str) -> dict[str, Any]:
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise ApiError(404, f"endpoint {name} not found")
        return endpoint

    def _load(self, artifact_uri: str, environment: str | None, *, on_error: int) -> tuple[Predictor, str]:
        """The predictor with the model in `artifact_uri` loaded (once), and its checked path; a load failure is an
        ApiError with code `on_error`. The path is checked here, before any worker is started or sent it (a restarted
        worker loads it again on its first prediction)."""
        loaded = self._loaded.get((artifact_uri, environment))
        if loaded is not None:
            return loaded
        path = self._model_file(artifact_uri)
        try:
            predictor = self.predictors.for_environment(environment)
            predictor.load(path, artifact_uri)
        except Exception as exc:
            raise ApiError(on_error, f"cannot load {MODEL_FILE} from {artifact_uri}: {exc}") from exc
        self._loaded[(artifact_uri, environment)] = (predictor, path)
        return predictor, path

    def warm(self, *, ahead: bool = True) -> list[str]:
        """Start what the first deploy or prediction would wait for, off any request's path: each deployed version
        loaded in its environment's worker, and (`ahead`) a worker of the environment used last, which the next push
        most likely trains in. The environments warmed, in that order."""
        with self._lock:
            deployed = [
                (d["artifact_uri"], d.get("python_environment"))
                for e in self._endpoints.values()
                for d in e["deployed"]
            ]
        latest, warmed = self.predictors.used_last(), []  # used last before this start: loading below marks use
        for artifact_uri, environment in deployed:
            if self.predictors.stopped:
                break
            try:
                self._load(artifact_uri, environment, on_error=500)
            except ApiError as exc:  # its first prediction will say so again, as an answer
                log.warning("warm-up: %s", exc.message)
                continue
            if environment is not None and environment not in warmed and self.predictors.hello(environment):
                warmed.append(environment)
        if ahead and latest is not None and latest not in warmed and self.predictors.warm(latest):
            warmed.append(latest)
        return warmed

    def close(self) -> None:
        """Stop the predictor workers (the next prediction starts them again)."""
        self._loaded.clear()
        self.predictors.stop()

    def _model_file(self, artifact_uri: str) -> str:
        """The real path of the model file, refused (403) unless it lies in the registry: loading a pickle runs it."""
        path = inside(str(self.registry_dir), artifact_uri, MODEL_FILE)
        if path is None:
            raise ApiError(
                403,
                f"artifact_uri {artifact_uri!r} is not in the registry's folder {self.registry_dir} "
                "(symlinks followed); the endpoint loads models only from there",
            )
        return path

    def _refuse_foreign_models(self) -> None:
        """A state file edited to name a model outside the registry stops the server before anything loads."""
        for name, endpoint in self._endpoints.items():
            for deployed in endpoint["deployed"]:
                if not _is_hash(deployed.get("python_environment", "0" * 16)):
                    raise RuntimeError(
                        f"{self.state_path}: endpoint {name} version {deployed['version']} names a"
                        " python_environment that is not an environment hash; remove that entry"
                    )
                if inside(str(self.registry_dir), deployed["artifact_uri"], MODEL_FILE) is None:
                    raise RuntimeError(  # the stack cannot start: `relaunch up` prints this, no traceback
                        f"{self.state_path}: endpoint {name} version {deployed['version']} is served from "
                        f"{deployed['artifact_uri']!r}, outside the registry {self.registry_dir}; remove that entry"
                    )

    def _save(self) -> None:
        """Write the state atomically: a crash leaves the old file or the new one, never half of one."""
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}.tmp")
        with tmp.open("w") as f:
            json.dump({"endpoints": self._endpoints}, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)


def _deployed_at(endpoint: dict[str, Any], version: str) -> float:
    return next((float(d.get("deployed_at", 0.0)) for d in endpoint["deployed"] if d["version"] == version), 0.0)


def _check_split(split: Any, deployed: list[str]) -> None:
    if not isinstance(split, dict) or not split:
        raise ApiError(400, "'split' must be a non-empty object of version -> percent")
    unknown = sorted(set(split) - set(deployed))
    if unknown:
        raise ApiError(400, f"split names versions that are not deployed: {unknown} (deployed: {deployed})")
    if not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 100 for p in split.values()):
        raise ApiError(400, "split percentages must be integers between 0 and 100")
    if sum(split.values()) != 100:
        raise ApiError(400, f"split must sum to 100, not {sum(split.values())}")


def _instances(instances: Any) -> np.ndarray[Any, Any]:
    """The request's instances as a 2-D float array (ApiError 400 if they are not a non-empty list of rows)."""
    if not isinstance(instances, list) or not instances:
        raise ApiError(400, "'instances' must be a non-empty list of rows")
    if not all(isinstance(row, list) and all(_is_number(x) for x in row) for row in instances):
        raise ApiError(400, "each instance must be a list of numbers")
    if len({len(row) for row in instances}) != 1:
        raise ApiError(400, "all instances must have the same length")
    import numpy as np  # noqa: PLC0415

    return np.asarray(instances, dtype=float)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and is_environment_hash(value)

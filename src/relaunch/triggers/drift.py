"""Drift alerts arriving on Pub/Sub to one typed value; no I/O. Three shapes, told apart by their data:

1. A Cloud Monitoring incident (notification channel of type Pub/Sub, schema version 1.2): `{"incident": {...},
   "version": "1.2"}`. The pipeline comes from the policy's user label `relaunch_pipeline` (or `relaunch-pipeline`,
   also read from `incident.metadata.user_labels`); the endpoint from `incident.resource.labels.endpoint_id`
   (resource type aiplatform.googleapis.com/Endpoint); the feature from the metric label `feature_name`.
2. A Vertex AI Model Monitoring anomaly LogEntry forwarded by a Cloud Logging sink to Pub/Sub (log
   `…/logs/aiplatform.googleapis.com%2Fmodel_monitoring_anomaly`). It names the monitoring job and the deployed model,
   not the endpoint nor a pipeline: `monitoring_job` and `deployed_model_id` carry them for routing. Always "open".
3. The generic schema, for any other monitor:

       {"pipeline"?: str, "endpoint"?: str,            # at least one of the two
        "feature": str, "metric": str, "value": number, "threshold": number,
        "severity": "info" | "warning" | "error" | "critical",
        "state"?: "open" | "closed",                   # default "open"
        "id"?: str,                                    # default: a digest of the data (a resend is the same alert)
        "summary"?: str}

Data with neither `incident` nor `logName` is read as the generic schema, so an unknown shape is a 422 naming the
first generic field it lacks ("metric").
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from relaunch.triggers.errors import Unprocessable, check, lookup, optional, require
from relaunch.triggers.pubsub import PubSubMessage
from relaunch.triggers.scheduler import check_pipeline_name

Severity = Literal["info", "warning", "error", "critical"]
SEVERITY_RANK: dict[Severity, int] = {"info": 0, "warning": 1, "error": 2, "critical": 3}
Source = Literal["monitoring", "model_monitoring", "generic"]
State = Literal["open", "closed"]
PIPELINE_LABELS = ("relaunch_pipeline", "relaunch-pipeline")
ANOMALY_LOG = "model_monitoring_anomaly"
MAX_SUMMARY = 300
# Cloud Logging's LogSeverity names, folded onto ours; DEFAULT means "no severity".
LOG_SEVERITY: dict[str, Severity | None] = {
    "DEFAULT": None,
    "DEBUG": "info",
    "INFO": "info",
    "NOTICE": "info",
    "WARNING": "warning",
    "ERROR": "error",
    "CRITICAL": "critical",
    "ALERT": "critical",
    "EMERGENCY": "critical",
}


@dataclass(frozen=True)
class DriftAlert:
    """A monitor says a model's inputs or outputs drifted (state "open") or recovered ("closed")."""

    source: Source
    alert_id: str
    state: State
    pipeline: str | None
    endpoint: str | None
    feature: str | None
    metric: str | None
    value: float | None
    threshold: float | None
    severity: Severity | None
    summary: str
    monitoring_job: str | None = None  # model monitoring: the ModelDeploymentMonitoringJob resource name
    deployed_model_id: str | None = None
    features: tuple[str, ...] = ()  # every feature reported as anomalous; `feature` is the worst of them


def parse_drift(message: PubSubMessage) -> DriftAlert:
    """Read a drift alert in any of the three shapes; bad input raises a TriggerError."""
    data = message.json()
    if "incident" in data:
        return _incident(data)
    if "logName" in data:
        return _anomaly_log(data)
    return _generic(data)


# --- 1. Cloud Monitoring incident ----------------------------------------------------------------------------------


def _incident(data: dict[str, Any]) -> DriftAlert:
    require(data, "incident", dict)
    state = require(data, "incident.state", str).strip().lower()
    if state not in ("open", "closed"):
        raise Unprocessable(f"incident.state must be open or closed, got {state[:40]!r}", field="incident.state")
    metric = optional(data, "incident.metric.type", str)
    return DriftAlert(
        source="monitoring",
        alert_id=_nonempty(require(data, "incident.incident_id", str), "incident.incident_id"),
        state=cast(State, state),
        pipeline=_labelled_pipeline(data),
        endpoint=optional(data, "incident.resource.labels.endpoint_id", str),
        feature=optional(data, "incident.metric.labels.feature_name", str),
        metric=metric,
        value=_number(lookup(data, "incident.observed_value"), "incident.observed_value", strings=True),
        threshold=_number(lookup(data, "incident.threshold_value"), "incident.threshold_value", strings=True),
        severity=_severity(optional(data, "incident.severity", str), "incident.severity"),
        summary=_one_line(
            optional(data, "incident.summary", str)
            or _documentation_subject(data)
            or f"{optional(data, 'incident.policy_name', str) or 'alert policy'} is {state} ({metric or 'metric'})"
        ),
    )


def _labelled_pipeline(data: Mapping[str, Any]) -> str | None:
    for path in ("incident.policy_user_labels", "incident.metadata.user_labels"):
        labels = optional(data, path, dict) or {}
        for key in PIPELINE_LABELS:
            if labels.get(key) is not None:
                return check_pipeline_name(check(labels[key], str, f"{path}.{key}"), f"{path}.{key}")
    return None


def _documentation_subject(data: Mapping[str, Any]) -> str | None:
    documentation = lookup(data, "incident.documentation")
    if documentation is None or isinstance(documentation, str):  # schema versions before 1.2 sent the content only
        return None
    check(documentation, dict, "incident.documentation")
    return optional(data, "incident.documentation.subject", str)


# --- 2. Vertex AI Model Monitoring anomaly LogEntry ----------------------------------------------------------------


def _anomaly_log(data: dict[str, Any]) -> DriftAlert:
    log_name = require(data, "logName", str)
    if not log_name.endswith(ANOMALY_LOG):
        raise Unprocessable(f"logName {log_name[:120]!r} is not a model monitoring anomaly log", field="logName")
    listed_anomalies = require(data, "jsonPayload.featureAnomalies", list)
    anomalies = [_feature_anomaly(item, i) for i, item in enumerate(listed_anomalies)]
    worst = max(anomalies, key=lambda a: _excess(a[1], a[2]), default=None)
    objective = optional(data, "jsonPayload.anomalyObjective", str)
    job = optional(data, "jsonPayload.modelDeploymentMonitoringJob", str) or optional(
        data, "resource.labels.model_deployment_monitoring_job", str
    )
    listed = ", ".join(f"{name} {value:g} > {threshold:g}" for name, value, threshold in anomalies)
    return DriftAlert(
        source="model_monitoring",
        alert_id=_nonempty(require(data, "insertId", str), "insertId"),
        state="open",
        pipeline=None,
        endpoint=None,
        feature=worst[0] if worst else None,
        metric=objective,
        value=worst[1] if worst else None,
        threshold=worst[2] if worst else None,
        severity=_log_severity(data),
        summary=_one_line(f"Model monitoring {objective or 'anomaly'} on {job or 'unknown job'}: {listed or 'none'}"),
        monitoring_job=job,
        deployed_model_id=optional(data, "jsonPayload.deployedModelId", str),
        features=tuple(name for name, _, _ in anomalies),
    )


def _feature_anomaly(item: Any, i: int) -> tuple[str, float, float]:
    where = f"jsonPayload.featureAnomalies[{i}]"
    anomaly = check(item, dict, where)
    name = anomaly.get("featureDisplayName")
    if name is None:
        raise Unprocessable(f"{where}.featureDisplayName is required", field=f"{where}.featureDisplayName")
    name = _nonempty(check(name, str, f"{where}.featureDisplayName"), f"{where}.featureDisplayName")
    deviation = _number(anomaly.get("deviation"), f"{where}.deviation", strings=True, required=True)
    threshold = _number(anomaly.get("threshold"), f"{where}.threshold", strings=True, required=True)
    return name, cast(float, deviation), cast(float, threshold)


def _excess(deviation: float, threshold: float) -> float:
    return deviation / threshold if threshold > 0 else math.inf if deviation > 0 else 0.0


def _log_severity(data: Mapping[str, Any]) -> Severity | None:
    raw = optional(data, "severity", str)
    if raw is None:
        return None
    if raw.upper() not in LOG_SEVERITY:
        raise Unprocessable(f"severity {raw[:40]!r} is not a LogSeverity", field="severity")
    return LOG_SEVERITY[raw.upper()]


# --- 3. generic schema ---------------------------------------------------------------------------------------------


def _generic(data: dict[str, Any]) -> DriftAlert:
    metric = _nonempty(require(data, "metric", str), "metric")
    feature = _nonempty(require(data, "feature", str), "feature")
    value = _number(data.get("value"), "value", required=True)
    threshold = _number(data.get("threshold"), "threshold", required=True)
    severity = _severity(require(data, "severity", str), "severity", allow_none=False)
    pipeline = optional(data, "pipeline", str) or None
    endpoint = optional(data, "endpoint", str) or None
    if pipeline is None and endpoint is None:
        raise Unprocessable("a generic drift alert must name a pipeline or an endpoint", field="pipeline")
    state = (optional(data, "state", str) or "open").strip().lower()
    if state not in ("open", "closed"):
        raise Unprocessable(f"state must be open or closed, got {state[:40]!r}", field="state")
    alert_id = optional(data, "id", str) or "generic:" + hashlib.sha256(_canonical(data)).hexdigest()[:32]
    return DriftAlert(
        source="generic",
        alert_id=alert_id,
        state=cast(State, state),
        pipeline=check_pipeline_name(pipeline, "pipeline") if pipeline else None,
        endpoint=endpoint,
        feature=feature,
        metric=metric,
        value=value,
        threshold=threshold,
        severity=severity,
        summary=_one_line(
            optional(data, "summary", str) or f"{metric} of {feature} is {value:g} (threshold {threshold:g})"
        ),
    )


def _canonical(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


# --- shared --------------------------------------------------------------------------------------------------------


def _severity(raw: str | None, field: str, *, allow_none: bool = True) -> Severity | None:
    """Cloud Monitoring sends "CRITICAL", "Warning" or "no severity"; any case is fine."""
    name = (raw or "").strip().lower()
    if allow_none and name in ("", "no severity", "severity_unspecified"):
        return None
    if name not in SEVERITY_RANK:
        raise Unprocessable(f"{field} must be one of {', '.join(SEVERITY_RANK)}, got {name[:40]!r}", field=field)
    return cast(Severity, name)


def _number(value: Any, field: str, *, strings: bool = False, required: bool = False) -> float | None:
    """A finite number; `strings` also reads numeric strings (Cloud Monitoring sends "0.9")."""
    if value is None or (strings and isinstance(value, str) and not value.strip()):
        if required:
            raise Unprocessable(f"{field} is required", field=field)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str) or (isinstance(value, str) and not strings):
        raise Unprocessable(f"{field} must be a number", field=field)
    try:
        number = float(value)
    except (ValueError, OverflowError) as exc:
        raise Unprocessable(f"{field} must be a number, got {str(value)[:40]!r}", field=field) from exc
    if not math.isfinite(number):
        raise Unprocessable(f"{field} must be a finite number", field=field)
    return number


def _nonempty(value: str, field: str) -> str:
    if not value.strip():
        raise Unprocessable(f"{field} must not be empty", field=field)
    return value


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_SUMMARY else line[: MAX_SUMMARY - 1] + "…"

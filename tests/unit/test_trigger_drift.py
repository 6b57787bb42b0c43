"""Drift alerts: Google's Cloud Monitoring incident and Model Monitoring log entry samples, and the generic schema."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaunch.triggers.drift import SEVERITY_RANK, DriftAlert, parse_drift
from relaunch.triggers.errors import TriggerError
from relaunch.triggers.pubsub import PubSubMessage, parse_pubsub_push

SAMPLES = Path(__file__).parent.parent / "samples" / "monitoring"
JOB = "projects/677687165274/locations/us-central1/modelDeploymentMonitoringJobs/6680511704087920640"
GENERIC: dict[str, Any] = {
    "pipeline": "churn",
    "feature": "tenure_months",
    "metric": "jensen_shannon_divergence",
    "value": 0.41,
    "threshold": 0.3,
    "severity": "warning",
}


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return data


def message(data: dict[str, Any] | bytes) -> PubSubMessage:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return PubSubMessage("1", raw, attributes={}, publish_time=None, subscription=None, ordering_key=None)


def drift(data: dict[str, Any] | bytes) -> DriftAlert:
    return parse_drift(message(data))


def incident(**changes: Any) -> dict[str, Any]:
    """The documented incident with `changes` applied at dotted paths under `incident` (None deletes)."""
    data = copy.deepcopy(sample("incident.closed.json"))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = data["incident"]
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return data


def vertex_endpoint_incident(**changes: Any) -> dict[str, Any]:
    """The documented incident, reshaped as an open alert on a Vertex AI endpoint's drift metric."""
    base = {
        "state": "OPEN",
        "severity": "CRITICAL",
        "resource": {
            "type": "aiplatform.googleapis.com/Endpoint",
            "labels": {"resource_container": "internal-project", "location": "us-central1", "endpoint_id": "4821"},
        },
        "metric": {"type": "custom.googleapis.com/relaunch/drift", "labels": {"feature_name": "tenure_months"}},
        "policy_user_labels": {"relaunch_pipeline": "churn"},
        "threshold_value": "0.3",
        "observed_value": "0.41",
    }
    return incident(**{**base, **changes})


# --- 1. Cloud Monitoring incidents --------------------------------------------------------------------------------


def test_documented_incident_sample() -> None:
    alert = drift(sample("incident.closed.json"))
    assert alert == DriftAlert(
        source="monitoring",
        alert_id="0.opqiw61fsv7p",
        state="closed",
        pipeline=None,
        endpoint=None,
        feature=None,
        metric="compute.googleapis.com/instance/cpu/utilization",
        value=0.835,
        threshold=0.9,
        severity=None,
        summary=sample("incident.closed.json")["incident"]["summary"],
    )


def test_open_incident_on_a_vertex_endpoint() -> None:
    alert = drift(vertex_endpoint_incident())
    assert (alert.state, alert.severity, alert.pipeline, alert.endpoint) == ("open", "critical", "churn", "4821")
    assert (alert.feature, alert.metric) == ("tenure_months", "custom.googleapis.com/relaunch/drift")
    assert (alert.value, alert.threshold) == (0.41, 0.3)


def test_pipeline_label_spellings_and_places() -> None:
    assert drift(vertex_endpoint_incident(policy_user_labels={"relaunch-pipeline": "fraud"})).pipeline == "fraud"
    moved = vertex_endpoint_incident(policy_user_labels=None, metadata={"user_labels": {"relaunch_pipeline": "ads"}})
    assert drift(moved).pipeline == "ads"


@pytest.mark.parametrize(
    "raw, severity",
    [("CRITICAL", "critical"), ("Error", "error"), ("Warning", "warning"), ("no severity", None), (None, None)],
)
def test_incident_severity_in_any_case(raw: str | None, severity: str | None) -> None:
    assert drift(incident(severity=raw)).severity == severity


def test_numbers_may_be_numbers_strings_or_absent() -> None:
    alert = drift(incident(threshold_value=0.5, observed_value=None))
    assert (alert.value, alert.threshold) == (None, 0.5)
    assert drift(incident(observed_value="")).value is None


def test_summary_falls_back_to_documentation_subject_then_policy() -> None:
    assert drift(incident(summary=None)).summary == "ALERT - No severity"
    as_string = drift(incident(summary=None, documentation="plain content (schema < 1.2)"))
    assert as_string.summary == "Monitor-Project-Cluster is closed (compute.googleapis.com/instance/cpu/utilization)"


def test_summary_is_one_short_line() -> None:
    summary = drift(incident(summary="line one\n\nline   two " + "x" * 400)).summary
    assert summary.startswith("line one line two x") and "\n" not in summary
    assert len(summary) == 300 and summary.endswith("…")


def test_incident_through_a_pubsub_push() -> None:
    data = base64.b64encode(json.dumps(vertex_endpoint_incident()).encode()).decode()
    body = {"message": {"data": data, "messageId": "9"}}
    assert parse_drift(parse_pubsub_push({}, json.dumps(body).encode())).endpoint == "4821"


# --- 2. Model Monitoring anomaly log entries ----------------------------------------------------------------------


def test_documented_model_monitoring_log_entry() -> None:
    alert = drift(sample("model_monitoring_logentry.json"))
    assert alert == DriftAlert(
        source="model_monitoring",
        alert_id="b0e9c0e9-0979-4aff-a5d3-4c0912469f9a@a1",
        state="open",
        pipeline=None,
        endpoint=None,
        # education is twice its threshold, age 1.3 times: the worst anomaly is the one reported.
        feature="education",
        metric="RAW_FEATURE_SKEW",
        value=0.6,
        threshold=0.3,
        severity="warning",
        summary=f"Model monitoring RAW_FEATURE_SKEW on {JOB}: age 0.9 > 0.7, education 0.6 > 0.3",
        monitoring_job=JOB,
        deployed_model_id="1645828169292316672",
        features=("age", "education"),
    )


def log_entry(**payload: Any) -> dict[str, Any]:
    data = sample("model_monitoring_logentry.json")
    data["jsonPayload"].update(payload)
    return data


def test_log_entry_variants() -> None:
    data = log_entry(modelDeploymentMonitoringJob=None, featureAnomalies=[])
    del data["severity"]
    alert = drift(data)
    assert (alert.monitoring_job, alert.severity) == ("6680511704087920640", None)
    assert (alert.feature, alert.value, alert.features) == (None, None, ())
    data["severity"] = "EMERGENCY"
    assert drift(data).severity == "critical"
    one = log_entry(featureAnomalies=[{"featureDisplayName": "age", "deviation": "0.9", "threshold": 0}])
    assert (drift(one).value, drift(one).threshold) == (0.9, 0.0)


# --- 3. generic schema --------------------------------------------------------------------------------------------


def test_generic_alert() -> None:
    alert = drift(GENERIC)
    assert (alert.source, alert.state, alert.pipeline, alert.endpoint) == ("generic", "open", "churn", None)
    assert (alert.feature, alert.metric) == ("tenure_months", "jensen_shannon_divergence")
    assert (alert.value, alert.threshold) == (0.41, 0.3)
    assert alert.severity == "warning"
    assert alert.summary == "jensen_shannon_divergence of tenure_months is 0.41 (threshold 0.3)"


def test_generic_alert_id_is_given_or_a_stable_digest() -> None:
    assert drift({**GENERIC, "id": "alert-7"}).alert_id == "alert-7"
    digest = drift(GENERIC).alert_id
    assert digest.startswith("generic:") and digest == drift(dict(reversed(list(GENERIC.items())))).alert_id
    assert drift({**GENERIC, "value": 0.42}).alert_id != digest


def test_generic_alert_options() -> None:
    alert = drift({**GENERIC, "pipeline": None, "endpoint": "churn-prod", "state": "CLOSED", "summary": "fine now"})
    assert (alert.pipeline, alert.endpoint, alert.state, alert.summary) == (None, "churn-prod", "closed", "fine now")
    assert drift({**GENERIC, "severity": "Critical", "value": 1}).value == 1.0


def test_severity_rank_orders_severities() -> None:
    assert sorted(SEVERITY_RANK, key=SEVERITY_RANK.__getitem__) == ["info", "warning", "error", "critical"]


# --- bad input ----------------------------------------------------------------------------------------------------

BAD: dict[str, tuple[dict[str, Any] | bytes, int, str | None]] = {
    "not JSON": (b"drift!", 400, "message.data"),
    "not UTF-8": (b'{"metric": "\xff"}', 400, "message.data"),
    "JSON array": (b"[]", 400, "message.data"),
    "empty object": ({}, 422, "metric"),
    "incident a list": ({"incident": []}, 422, "incident"),
    "no state": (incident(state=None), 422, "incident.state"),
    "acknowledged": (incident(state="acknowledged"), 422, "incident.state"),
    "incident id a number": (incident(incident_id=7), 422, "incident.incident_id"),
    "empty incident id": (incident(incident_id=" "), 422, "incident.incident_id"),
    "observed n/a": (incident(observed_value="n/a"), 422, "incident.observed_value"),
    "threshold infinite": (incident(threshold_value="inf"), 422, "incident.threshold_value"),
    "threshold a bool": (incident(threshold_value=True), 422, "incident.threshold_value"),
    "severity fatal": (incident(severity="fatal"), 422, "incident.severity"),
    "labels a list": (incident(policy_user_labels=["x"]), 422, "incident.policy_user_labels"),
    "pipeline label a number": (incident(policy_user_labels={"relaunch_pipeline": 3}), 422,
                                "incident.policy_user_labels.relaunch_pipeline"),
    "pipeline label not a name": (incident(policy_user_labels={"relaunch_pipeline": "Churn Model"}), 422,
                                  "incident.policy_user_labels.relaunch_pipeline"),
    "endpoint id a number": (incident(resource={"labels": {"endpoint_id": 4821}}), 422,
                             "incident.resource.labels.endpoint_id"),
    "documentation a number": (incident(summary=None, documentation=5), 422, "incident.documentation"),
    "metric a string": (incident(metric="cpu"), 422, "incident.metric"),
    "other log": ({**sample("model_monitoring_logentry.json"), "logName": "projects/p/logs/syslog"}, 422, "logName"),
    "logName a number": ({"logName": 1}, 422, "logName"),
    "no insertId": ({k: v for k, v in sample("model_monitoring_logentry.json").items() if k != "insertId"}, 422,
                    "insertId"),
    "no anomalies": (log_entry(featureAnomalies=None), 422, "jsonPayload.featureAnomalies"),
    "anomaly a string": (log_entry(featureAnomalies=["age"]), 422, "jsonPayload.featureAnomalies[0]"),
    "anomaly unnamed": (log_entry(featureAnomalies=[{"deviation": 1, "threshold": 0.5}]), 422,
                        "jsonPayload.featureAnomalies[0].featureDisplayName"),
    "deviation missing": (log_entry(featureAnomalies=[{"featureDisplayName": "a", "threshold": 0.5}]), 422,
                          "jsonPayload.featureAnomalies[0].deviation"),
    "log severity loud": ({**sample("model_monitoring_logentry.json"), "severity": "LOUD"}, 422, "severity"),
    "generic no feature": ({**GENERIC, "feature": None}, 422, "feature"),
    "generic value a string": ({**GENERIC, "value": "0.41"}, 422, "value"),
    "generic value NaN": (json.dumps({**GENERIC, "value": float("nan")}).encode(), 422, "value"),
    "generic huge number": (b'{"metric": "m", "feature": "f", "value": 1e999, "threshold": 1}', 422, "value"),
    "generic no threshold": ({**GENERIC, "threshold": None}, 422, "threshold"),
    "generic no severity": ({**GENERIC, "severity": None}, 422, "severity"),
    "generic no severity word": ({**GENERIC, "severity": "no severity"}, 422, "severity"),
    "generic names nothing": ({**GENERIC, "pipeline": None}, 422, "pipeline"),
    "generic empty names": ({**GENERIC, "pipeline": "", "endpoint": ""}, 422, "pipeline"),
    "generic bad pipeline": ({**GENERIC, "pipeline": "../etc"}, 422, "pipeline"),
    "generic endpoint a list": ({**GENERIC, "endpoint": []}, 422, "endpoint"),
    "generic resolved": ({**GENERIC, "state": "resolved"}, 422, "state"),
    "generic id a number": ({**GENERIC, "id": 4}, 422, "id"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_maps_to_its_status(case: str) -> None:
    data, status, field = BAD[case]
    with pytest.raises(TriggerError) as raised:
        drift(data)
    assert (raised.value.status, raised.value.field) == (status, field), raised.value


# --- fuzzing: nothing but TriggerError escapes --------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
SHAPES = {
    "incident": (sample("incident.closed.json")["incident"], lambda inner: {"incident": inner, "version": "1.2"}),
    "log": (sample("model_monitoring_logentry.json")["jsonPayload"], lambda inner: log_entry(**inner)),
    "generic": (GENERIC, lambda inner: inner),
}


def parse_or_error(data: bytes) -> None:
    try:
        parse_drift(message(data))
    except TriggerError as exc:
        assert 400 <= exc.status < 500


@given(data=st.binary(max_size=256))
def test_fuzz_bytes(data: bytes) -> None:
    parse_or_error(data)


@given(data=st.data(), value=json_values)
def test_fuzz_fields_of_each_shape(data: st.DataObject, value: Any) -> None:
    shape = data.draw(st.sampled_from(sorted(SHAPES)))
    inner, wrap = SHAPES[shape]
    changed = {**copy.deepcopy(inner), data.draw(st.sampled_from(sorted(inner))): value}
    parse_or_error(json.dumps(wrap(changed)).encode())


@given(anomalies=st.lists(st.dictionaries(st.sampled_from(["featureDisplayName", "deviation", "threshold"]),
                                          json_values), max_size=4))  # fmt: skip
def test_fuzz_feature_anomalies(anomalies: list[Any]) -> None:
    parse_or_error(json.dumps(log_entry(featureAnomalies=anomalies)).encode())

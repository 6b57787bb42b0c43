"""The orchestrator's first event in the gcp profile, against local stand-ins of every Google service it reaches.

Firestore and Pub/Sub run as Google's emulators (tests/emulators.py), Cloud Build and Vertex AI as the fakes in
tests/. Before each start a real `received` run of the `digits` pipeline is written to Firestore; the timed event is
the StartRun command for it (load the run, ask Cloud Build to build, save the run), and the run must have moved to
`building` with a build id afterwards, so the figure is for real work.

Credentials: the Firestore and Pub/Sub clients go anonymous on their own when *_EMULATOR_HOST is set; the Cloud Build
client is built with `credentials=None` by the composition root, so it asks google.auth.default() for ADC. Until the
composition root passes anonymous credentials when an api_endpoint override is set, the child gets an
`authorized_user` ADC file holding an unexpired bearer token (google-auth forces its token_uri to Google's, so it must
never refresh): no token exchange, where a deployed function pays one token fetch from the metadata server.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for entry in (os.environ.get("RELAUNCH_SRC") or str(ROOT / "src"), str(ROOT)):  # cold_start.py's --src
    if entry not in sys.path:
        sys.path.insert(0, entry)

from relaunch.domain.model import Delivery, PipelineRun, RunState, Trigger  # noqa: E402

PROJECT = "bench"
TARGET_S = 1.6


@contextmanager
def gcp_stack(tmp: Path) -> Iterator[tuple[dict[str, str], Any]]:
    """Emulators and fakes running; yields the child's environment and the fake Cloud Build."""
    from tests import emulators
    from tests.vertex_server import VertexServer

    from relaunch.emulated.cloudbuild import serve

    with ExitStack() as stack:
        firestore = emulators.start("firestore", project=PROJECT)
        stack.callback(firestore.stop)
        pubsub = emulators.start("pubsub", project=PROJECT)
        stack.callback(pubsub.stop)
        cloudbuild = stack.enter_context(serve())
        vertex = stack.enter_context(VertexServer())
        adc = tmp / "adc.json"
        adc.write_text(
            json.dumps(
                {
                    "type": "authorized_user",
                    "client_id": "bench",
                    "client_secret": "bench",
                    "refresh_token": "bench",
                    "token": "bench-token",
                    "expiry": "2099-01-01T00:00:00Z",
                }
            )
        )
        (tmp / "gcloud").mkdir(exist_ok=True)
        env = {
            **firestore.env,
            **pubsub.env,
            "RELAUNCH_PROFILE": "gcp",
            "RELAUNCH_GCP_PROJECT": PROJECT,
            "RELAUNCH_CLOUDBUILD_API_ENDPOINT": cloudbuild.url,
            "RELAUNCH_IMAGE_REPOSITORY": f"us-docker.pkg.dev/{PROJECT}/relaunch",
            "RELAUNCH_VERTEX_API_ENDPOINT": vertex.url,
            "RELAUNCH_ARTIFACT_ROOT": f"gs://{PROJECT}/artifacts",
            "RELAUNCH_ARTIFACTS": "local",
            "GOOGLE_APPLICATION_CREDENTIALS": str(adc),
            "CLOUDSDK_CONFIG": str(tmp / "gcloud"),  # never the machine's own gcloud configuration
            "GOOGLE_CLOUD_PROJECT": PROJECT,
        }
        yield env, cloudbuild


def seed_run(store: Any) -> str:
    """A `received` digits run from a push, written as the webhook writes it; returns its id."""
    key = f"bench-{uuid.uuid4()}"
    sha = uuid.uuid4().hex + uuid.uuid4().hex[:8]
    trigger = Trigger(
        kind="push",
        delivery_key=key,
        repo="relaunch-demo/digits",
        ref="refs/heads/main",
        sha=sha,
        clone_url="https://github.com/relaunch-demo/digits.git",
        actor="bench",
        reason="push to main",
    )
    run = PipelineRun(id=f"run-{uuid.uuid4().hex[:12]}", pipeline="digits", trigger=trigger)
    store.record_delivery(Delivery(key=key, source="github", run_ids=[run.id]), [run])
    return run.id


def first_event_samples(
    n: int,
    base_env: dict[str, str],
    source: Path,
    tmp: Path,
    timed: Callable[..., float],
    command_request: Callable[[str], tuple[str, str, bytes, dict[str, str]]],
) -> list[float]:
    """`n` cold starts of the orchestrator, each timed to its first 2xx on a StartRun of a fresh run."""
    from relaunch.adapters.gcp.firestore_store import FirestoreRunStore

    with gcp_stack(tmp) as (gcp_env, cloudbuild):
        os.environ.update({k: v for k, v in gcp_env.items() if k.endswith("_EMULATOR_HOST")})
        store = FirestoreRunStore(PROJECT)
        env = {**base_env, **gcp_env}
        samples = []
        try:
            for _ in range(n):
                run_id = seed_run(store)
                builds_before = len(cloudbuild.builds)
                log_path = tmp / "orchestrator.log"
                try:
                    samples.append(timed("orchestrator", source, command_request(run_id), env, log_path))
                except (RuntimeError, TimeoutError) as exc:
                    raise RuntimeError(f"{exc}\n{log_path.read_text(errors='replace')[-3000:]}") from exc
                run = store.get_run(run_id)
                if run is None or run.state != RunState.BUILDING or not run.build_id:
                    state = None if run is None else (run.state, run.build_id)
                    log = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"run {run_id} did not move to building with a build id: {state}\n{log}")
                if len(cloudbuild.builds) != builds_before + 1:
                    raise RuntimeError(f"expected one new Cloud Build build, fake holds {len(cloudbuild.builds)}")
        finally:
            store.close()
    return samples

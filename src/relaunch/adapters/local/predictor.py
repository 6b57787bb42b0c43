"""Load + predict for the local endpoint: in relaunch's own process, or in a worker of the model's training environment.

A model pickled by its commit's scikit-learn (1.6 for the example, as Vertex serves it) is unpickled by that same
version: each Python environment a deployed version names gets one worker process (predictor_worker.py, run with the
environment's interpreter), started on first use, restarted when it died, stopped with the server. A version that
names no environment (none declared, or registered before versions named one) is served in-process, as is one whose
environment is gone or cannot import joblib (said once in the log). Callers pass only model paths they checked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import subprocess
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # loaded with the first model: a process that only reads the endpoint's state never pays
    import numpy as np

from relaunch.adapters.local.environment import BASE_NAMES, BASE_PREFIXES, JOB_NAMES, JOB_PREFIXES, allowed
from relaunch.adapters.local.pyenv import RECORD
from relaunch.domain.dependencies import is_environment_hash

log = logging.getLogger(__name__)
WORKER = Path(__file__).with_name("predictor_worker.py")
HELLO_TIMEOUT_S = 120.0  # the worker imports scikit-learn before it says hello
ANSWER_TIMEOUT_S = 300.0  # a model that answers in no time is dead: the worker is killed, the next call starts one
MAX_LINE_BYTES = 64 * 1024 * 1024


class Predictor(Protocol):
    """Loads a model file once and predicts with it; a model's own failures raise (ValueError: the request's fault)."""

    def load(self, path: str, artifact_uri: str) -> None: ...

    def predict(self, path: str, artifact_uri: str, rows: np.ndarray[Any, Any]) -> list[Any]: ...


class InProcess:
    """Models unpickled by relaunch's own packages, cached by path."""

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}

    def load(self, path: str, artifact_uri: str) -> None:
        if path not in self._models:
            self._models[path] = _load(path, artifact_uri)

    def predict(self, path: str, artifact_uri: str, rows: np.ndarray[Any, Any]) -> list[Any]:
        import numpy as np  # noqa: PLC0415

        self.load(path, artifact_uri)
        predictions: list[Any] = np.asarray(self._models[path].predict(rows)).tolist()
        return predictions


class WorkerGone(Exception):
    """The worker died or stopped answering (or never said hello): it is killed, and the next call starts another."""


class Worker:
    """One predictor worker process of environment `env` (a folder with bin/python), one request at a time."""

    def __init__(self, env: Path) -> None:
        self.env = env
        self.hello: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    def load(self, path: str, artifact_uri: str) -> None:
        with contextlib.suppress(OSError):
            os.utime(self.env / RECORD)  # in use: housekeeping keeps environments used recently (a warm start is not)
        self._ask({"model": path}, artifact_uri)

    def predict(self, path: str, artifact_uri: str, rows: np.ndarray[Any, Any]) -> list[Any]:
        predictions: list[Any] = self._ask({"model": path, "instances": rows.tolist()}, artifact_uri)["predictions"]
        return predictions

    def start(self) -> dict[str, Any]:
        """Start the process unless it runs; its hello (joblib None: the environment cannot load models)."""
        with self._lock:
            return self._started()

    def stop(self) -> None:
        with self._lock:
            self._kill()

    def _ask(self, request: dict[str, Any], artifact_uri: str) -> dict[str, Any]:
        """Send one request; a worker found dead is restarted and asked once more (a request is never half done)."""
        with self._lock:
            for attempt in (1, 2):
                self._started()
                try:
                    answer = self._exchange(request)
                    break
                except WorkerGone as exc:
                    self._kill()
                    if attempt == 2:
                        raise RuntimeError(f"the predictor worker of environment {self.env.name} {exc}") from None
        for warning in answer.get("warnings", []):
            log.warning("%s: %s", artifact_uri, warning)
        if "error" in answer:
            error = ValueError if answer.get("value_error") is True else RuntimeError
            raise error(str(answer["error"]))
        return answer

    def _started(self) -> dict[str, Any]:
        if self._proc is not None and self._proc.poll() is None and self.hello is not None:
            return self.hello
        self._kill()
        env = allowed(os.environ, BASE_NAMES + JOB_NAMES, BASE_PREFIXES + JOB_PREFIXES)  # never a secret of relaunch
        argv = [str(self.env / "bin" / "python"), "-I", str(WORKER)]
        self._proc = subprocess.Popen(  # noqa: S603 (an environment this stack built, checked by name)
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd="/"
        )
        try:
            hello = self._line(HELLO_TIMEOUT_S).get("hello")
        except WorkerGone as exc:
            hello = str(exc)
        if not isinstance(hello, dict):
            self._kill()
            why = f": it {hello}" if isinstance(hello, str) else ""
            raise RuntimeError(f"the predictor worker of environment {self.env.name} did not say hello{why}")
        self.hello = hello
        return hello

    def _exchange(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(request).encode() + b"\n")
            self._proc.stdin.flush()
        except OSError:
            raise WorkerGone("died before the request was sent") from None
        return self._line(ANSWER_TIMEOUT_S)

    def _line(self, timeout: float) -> dict[str, Any]:
        """The next JSON line from the worker, within `timeout` seconds (WorkerGone otherwise)."""
        assert self._proc is not None and self._proc.stdout is not None
        fd, deadline = self._proc.stdout.fileno(), time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WorkerGone(f"did not answer within {timeout:.0f} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerGone(f"exited (code {self._proc.wait()})")
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE_BYTES:
                raise WorkerGone(f"answered more than {MAX_LINE_BYTES} bytes")
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            answer = json.loads(line)
        except ValueError:
            raise WorkerGone("answered something that is not JSON") from None
        if not isinstance(answer, dict):
            raise WorkerGone("answered something that is not a JSON object")
        return answer

    def _kill(self) -> None:
        proc, self._proc, self.hello, self._buffer = self._proc, None, None, b""
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a dead worker's stdin cannot flush
                    pipe.close()
        try:
            proc.wait(timeout=2)  # stdin closed: a live worker ends its loop
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Predictors:
    """The predictor of each environment hash: a worker of `envs_dir/<hash>`, or in-process."""

    def __init__(self, envs_dir: Path | None) -> None:
        self.envs_dir = envs_dir
        self.in_process = InProcess()
        self._workers: dict[str, Worker] = {}
        self._fallbacks: set[str] = set()
        self._lock = threading.Lock()
        self.stopped = False  # warm-ups start nothing once the server stops

    def for_environment(self, digest: str | None) -> Predictor:
        """The worker serving environment `digest` (started now if need be), or in-process (None, or unusable)."""
        if digest is None or digest in self._fallbacks:
            return self.in_process
        with self._lock:
            worker = self._workers.get(digest)
            if worker is None:
                env = self.envs_dir / digest if self.envs_dir is not None else None
                if env is None or not (env / RECORD).is_file():
                    return self._fall_back(digest, f"python environment {digest} is not in {self.envs_dir}")
                worker = self._workers[digest] = Worker(env)
        if worker.start().get("joblib") is None:
            worker.stop()
            return self._fall_back(digest, f"python environment {digest} cannot import joblib")
        return worker

    def hello(self, digest: str) -> dict[str, Any] | None:
        """What the running worker of `digest` said on starting (pid, python, joblib, sklearn); None if none runs."""
        worker = self._workers.get(digest)
        return None if worker is None else worker.hello

    def warm(self, digest: str) -> bool:
        """Start the worker of environment `digest` now, off any request's path (its interpreter imports scikit-learn
        in a second or two); True if it runs and can load models. Starting one is no use of the environment."""
        with self._lock:  # registered under the lock `stop` takes: a worker started after it would be left running
            env = self.envs_dir / digest if self.envs_dir is not None else None
            if self.stopped or env is None or digest in self._workers or not (env / RECORD).is_file():
                return False
            worker = self._workers[digest] = Worker(env)
        try:
            return worker.start().get("joblib") is not None
        except RuntimeError as exc:  # the first deploy will start it again and say why it cannot serve
            log.warning("%s", exc)
            return False

    def used_last(self) -> str | None:
        """The complete environment under envs_dir used last (its record's mtime); None if there is none."""
        found: list[tuple[float, str]] = []
        try:
            entries = list(os.scandir(self.envs_dir)) if self.envs_dir is not None else []
        except OSError:
            return None
        for entry in entries:
            if is_environment_hash(entry.name):
                with contextlib.suppress(OSError):  # no record: being built, or being deleted
                    found.append((os.stat(Path(entry.path) / RECORD).st_mtime, entry.name))
        return max(found)[1] if found else None

    def stop(self) -> None:
        """Stop every worker (a later call starts them again; a warm-up does not)."""
        with self._lock:
            self.stopped = True
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.stop()

    def _fall_back(self, digest: str, why: str) -> Predictor:
        if digest not in self._fallbacks:
            self._fallbacks.add(digest)
            log.warning("%s: its models are served in-process", why)
        return self.in_process


def _load(path: str, artifact_uri: str) -> Any:
    """joblib.load, with what unpickling warned about said once in the log instead of on the stack's terminal.

    A version served in-process by a scikit-learn other than the one that pickled it (it named no environment, or
    its environment is unusable) is a fact worth one log line per model, not three tracebacks.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import joblib  # noqa: PLC0415

        model = joblib.load(path)
    found = [(w, _sklearn_versions(w.message)) for w in caught]
    for trained, served in sorted({pair for _, pair in found if pair is not None}):
        log.warning(
            "%s: pickled by scikit-learn %s, served in-process by %s (the version names no usable training"
            " environment)",
            artifact_uri,
            trained,
            served,
        )
    for w, pair in found:
        if pair is None:
            log.warning("%s: %s: %s", artifact_uri, w.category.__name__, w.message)
    return model


def _sklearn_versions(message: object) -> tuple[str, str] | None:
    """(trained with, served by) of scikit-learn's InconsistentVersionWarning; None for any other warning."""
    trained = getattr(message, "original_sklearn_version", None)
    return None if trained is None else (str(trained), str(getattr(message, "current_sklearn_version", "?")))

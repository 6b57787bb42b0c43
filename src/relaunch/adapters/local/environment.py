"""What the local agent and its jobs may take from the environment they start in: an allowlist, never a secret.

An environment is readable by anything of the same user for the process's whole life, and a job runs code that any
push brought; so both get only what a program needs to run (where things are, the locale, the time zone, thread
counts), and the job its own request's variables on top.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from relaunch.domain.jobs import check_env, output_environment

# Both the agent and its jobs: where programs and temporary files are, who and where the user is, the locale.
BASE_NAMES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR")
BASE_PREFIXES = ("LC_",)
# Jobs only: how many threads numeric libraries start.
JOB_NAMES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
JOB_PREFIXES = ("OPENBLAS_",)
# The agent only: how its own interpreter finds relaunch when it is not installed.
AGENT_NAMES = ("PYTHONPATH",)
# The installer only (uv, run by the local builder): its settings, the user's cache folder, proxies, certificates.
INSTALLER_NAMES = ("XDG_CACHE_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR", "NO_COLOR")
INSTALLER_PREFIXES = ("UV_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
INSTALLER_PREFIXES_LOWER = tuple(name.lower() for name in INSTALLER_PREFIXES[1:])  # curl's spelling, which uv reads


def allowed(environ: Mapping[str, str], names: tuple[str, ...], prefixes: tuple[str, ...]) -> dict[str, str]:
    """The variables of `environ` named in `names` or starting with one of `prefixes`."""
    return {key: value for key, value in environ.items() if key in names or key.startswith(prefixes)}


def agent_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The local agent's whole environment."""
    env = allowed(environ, BASE_NAMES + AGENT_NAMES, BASE_PREFIXES)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def installer_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment the local builder runs uv in: where things are, how to reach the index, no secret."""
    return allowed(environ, BASE_NAMES + INSTALLER_NAMES, BASE_PREFIXES + INSTALLER_PREFIXES + INSTALLER_PREFIXES_LOWER)


def job_environment(
    request_env: Mapping[str, str], max_concurrent: int, output_dir: str | None, python_env: Path | None = None
) -> dict[str, str]:
    """A job's whole environment: the allowlist from this process's, the request's variables, and Vertex's AIP_*.

    With `python_env` (the checkout's virtual environment) its bin folder comes first on PATH, so `python` in a
    command is the environment's, with the commit's packages; without, relaunch's own interpreter's folder does.

    The AIP_* variables are exactly those Vertex AI derives from the output base, so a job finds its folders here as
    it would on Vertex. A request that sets one itself is a ValueError, as the Vertex adapter refuses it.
    """
    check_env(request_env)
    env = {**allowed(os.environ, BASE_NAMES + JOB_NAMES, BASE_PREFIXES + JOB_PREFIXES), **request_env}
    if output_dir is not None:
        env.update(output_environment(output_dir))
    if python_env is not None:
        env["VIRTUAL_ENV"] = str(python_env)
        env["PATH"] = os.pathsep.join([str(python_env / "bin"), env.get("PATH", "")])
    else:  # the interpreter relaunch runs on comes first, so `python` in a command finds the same packages
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    # Concurrent jobs would each start a BLAS/OpenMP thread per core and fight; give each its share.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max_concurrent)))
    return env

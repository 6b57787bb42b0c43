"""Make functions/ a self-contained Cloud Functions source: the relaunch wheel, its requirements, the pipeline specs.

Cloud Functions builds each function from its source folder alone: it runs `pip install -r requirements.txt` in
that folder, and the function runs with the folder as its working directory. So the folder must carry relaunch
itself (relaunch is installed from the wheel built here, not from an index) and the pipeline specs the functions
read (RELAUNCH_PIPELINES_DIR defaults to `pipelines`, relative to that working directory).

    python cloudbuild/package_functions.py [--repo .] [--functions functions] [--pipelines pipelines]
                                           [--extras gcp,wandb,github]

writes FUNCTIONS/wheels/relaunch-<version>-py3-none-any.whl, rewrites FUNCTIONS/requirements.txt to install it with
the extras, and replaces FUNCTIONS/pipelines/ with a copy of the specs. cloudbuild/deploy.yaml runs it before
`relaunch deploy`; it changes files in place, so by hand run it on a scratch checkout. Stdlib only: it runs in a bare
Python image before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_EXTRAS = "gcp,wandb,github"  # what the gcp profile's adapters import
_EXTRAS = re.compile(r"^[a-z0-9][a-z0-9_-]*(,[a-z0-9][a-z0-9_-]*)*$")
# What building the wheel reads; everything else in the repository stays out of the build.
_BUILD_INPUTS = ("pyproject.toml", "README.md", "src")
_HEADER = """\
# Written by cloudbuild/package_functions.py: Cloud Functions runs `pip install -r requirements.txt` in this folder,
# and the path below is relative to it. The committed file installs relaunch from an index instead.
"""


class PackagingError(Exception):
    """A packaging step failed; the message says which and why."""


def build_wheel(repo: Path, wheels: Path) -> Path:
    """Build relaunch's wheel from a clean copy of the repository into `wheels` (emptied first); its path."""
    if not (repo / "pyproject.toml").is_file():
        raise PackagingError(f"--repo {repo}: no pyproject.toml there")
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="relaunch-wheel-") as scratch:
        # A copy, because an in-tree build leaves build/ behind, and a stale build/lib ships deleted modules.
        source = Path(scratch) / "src-tree"
        _copy_build_inputs(repo, source)
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels)]
        done = subprocess.run([*command, str(source)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PackagingError(f"pip wheel failed ({done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}")
    built = sorted(wheels.glob("relaunch-*.whl"))
    if len(built) != 1:
        raise PackagingError(f"expected one relaunch wheel in {wheels}, found {[p.name for p in built]}")
    return built[0]


def _copy_build_inputs(repo: Path, into: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    into.mkdir()
    for name in _BUILD_INPUTS:
        path = repo / name
        if path.is_dir():
            # symlinks=False copies what a link points to: the packaged cloudbuild/train-image.yaml link included.
            shutil.copytree(path, into / name, symlinks=False, ignore=ignore)
        elif path.is_file():
            shutil.copy2(path, into / name)
        else:
            raise PackagingError(f"--repo {repo}: {name} is missing, the wheel cannot be built without it")


def check_extras(extras: str) -> str:
    """`extras` if it is a comma-separated list of extra names."""
    if not _EXTRAS.match(extras):
        raise PackagingError(f"--extras {extras!r}: expected comma-separated extra names, e.g. {DEFAULT_EXTRAS}")
    return extras


def requirements_text(wheel_name: str, extras: str) -> str:
    """requirements.txt installing the wheel (in ./wheels beside it) with `extras`."""
    return f"{_HEADER}./wheels/{wheel_name}[{check_extras(extras)}]\n"


def copy_specs(pipelines: Path, into: Path) -> list[str]:
    """Replace `into` with the pipeline specs (*.yaml, *.yml) of `pipelines`; their names."""
    specs = sorted(p for p in pipelines.glob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())
    if not specs:
        raise PackagingError(f"--pipelines {pipelines}: no *.yaml specs there (the functions would start no run)")
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    for spec in specs:
        shutil.copy2(spec, into / spec.name)
    return [s.name for s in specs]


def package(repo: Path, functions: Path, pipelines: Path | None, extras: str) -> list[str]:
    """Do every step; one line per thing written."""
    if not (functions / "main.py").is_file():
        raise PackagingError(f"--functions {functions}: no main.py there (not a functions source folder)")
    check_extras(extras)  # before the slow build
    wheel = build_wheel(repo, functions / "wheels")
    (functions / "requirements.txt").write_text(requirements_text(wheel.name, extras), encoding="utf-8")
    written = [str(wheel), f"{functions / 'requirements.txt'} -> ./wheels/{wheel.name}[{extras}]"]
    if pipelines is not None:
        names = copy_specs(pipelines, functions / "pipelines")
        written.append(f"{functions / 'pipelines'}/: {', '.join(names)}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("."), help="relaunch's repository (default: .)")
    parser.add_argument("--functions", type=Path, default=Path("functions"), help="the functions' source folder")
    parser.add_argument("--pipelines", default="pipelines", help="pipeline specs to ship ('' to ship none)")
    parser.add_argument("--extras", default=DEFAULT_EXTRAS, help=f"relaunch extras to install ({DEFAULT_EXTRAS})")
    args = parser.parse_args(argv)
    try:
        pipelines = Path(args.pipelines).resolve() if args.pipelines else None
        written = package(args.repo.resolve(), args.functions.resolve(), pipelines, args.extras)
    except (PackagingError, OSError) as exc:
        print(f"package_functions: {exc}", file=sys.stderr)
        return 1
    print("\n".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())

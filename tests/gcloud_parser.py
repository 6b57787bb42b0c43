"""Run argv lists through the installed gcloud's own argument parsing, in one process, offline.

Started as a script (`python3 tests/gcloud_parser.py < commands.json`; `... print FORMAT < resource.json` prints a
resource with gcloud's own formatter instead) with the SDK's lib folders on sys.path, a
fresh, empty gcloud configuration and no account: each command runs until gcloud wants credentials ("You do not
currently have an active account selected"), which it only asks for once every flag and resource argument has
parsed, and before any request. Prints, per command, "parsed" or "refused: <gcloud's error>". The CLI is loaded once,
so a whole deploy plan takes seconds, not a gcloud start per command.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

NO_ACCOUNT = "You do not currently have an active account selected"


def sdk_lib() -> Path | None:
    """The installed Cloud SDK's lib folder, or None when gcloud is not installed here."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    lib = Path(os.path.realpath(gcloud)).parent.parent / "lib"
    return lib if (lib / "googlecloudsdk" / "gcloud_main.py").is_file() else None


def verdicts(commands: list[list[str]], lib: Path) -> list[str]:
    sys.path[:0] = [str(lib), str(lib / "third_party")]
    from googlecloudsdk import gcloud_main  # noqa: PLC0415 (only importable once the SDK's lib is on the path)

    cli = gcloud_main.CreateCLI([])
    out: list[str] = []
    for argv in commands:
        with tempfile.TemporaryFile() as err:
            saved = os.dup(2)
            os.dup2(err.fileno(), 2)
            try:
                cli.Execute(argv[1:])  # argv[0] is "gcloud"
                code: object = 0
            except SystemExit as exc:
                code = exc.code
            except Exception as exc:  # noqa: BLE001 (anything else gcloud raises is a refusal to report)
                code = f"{type(exc).__name__}: {exc}"
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
            err.seek(0)
            said = err.read().decode("utf-8", "replace")
        out.append("parsed" if NO_ACCOUNT in said else f"refused ({code}): {' '.join(said.split())[-300:]}")
    return out


def printed(fmt: str, resource: object, lib: Path) -> str:
    """What `--format=<fmt>` prints for `resource`, through gcloud's own resource printer."""
    import io  # noqa: PLC0415

    sys.path[:0] = [str(lib), str(lib / "third_party")]
    from googlecloudsdk.core.resource import resource_printer  # noqa: PLC0415

    out = io.StringIO()
    resource_printer.Print([resource], fmt, out=out)
    return out.getvalue()


if __name__ == "__main__":
    found = sdk_lib()
    if found is None:
        sys.exit("gcloud is not installed")
    if sys.argv[1:2] == ["print"]:  # `print FORMAT`: the resource (JSON) on stdin, printed as gcloud would
        print(printed(sys.argv[2], json.load(sys.stdin), found), end="")
        sys.exit(0)
    with tempfile.TemporaryDirectory() as config:
        os.environ.update(
            CLOUDSDK_CONFIG=config, CLOUDSDK_CORE_DISABLE_PROMPTS="1", CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="1"
        )
        print(json.dumps(verdicts(json.load(sys.stdin), found)))

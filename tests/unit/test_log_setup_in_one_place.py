"""Log lines are shaped in one module (relaunch/logs.py); every other module only calls log.info("...", args)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "src" / "relaunch"
OWNER = PKG / "logs.py"
# What configures where and how lines are written: only the owner may call these.
SETUP = {"basicConfig", "dictConfig", "fileConfig", "addHandler", "setFormatter", "Formatter", "StreamHandler"}
LEVELS = {"debug", "info", "warning", "error", "exception", "critical", "log"}


def calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(node, ast.Call)]


def called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def is_log_call(call: ast.Call) -> bool:
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr in LEVELS
        and isinstance(func.value, ast.Name)
        and func.value.id in {"log", "logger", "logging"}
    )


def test_only_the_logs_module_configures_handlers_and_formats() -> None:
    found = [
        f"{path.relative_to(PKG)}:{call.lineno} {called_name(call)}"
        for path in sorted(PKG.rglob("*.py"))
        if path != OWNER
        for call in calls(path)
        if called_name(call) in SETUP
    ]
    assert found == []


def test_no_module_builds_a_structured_record_itself() -> None:
    """Fields come from the log context (logs.bind), never from a dict or an `extra=` a module builds per call."""
    found = [
        f"{path.relative_to(PKG)}:{call.lineno}"
        for path in sorted(PKG.rglob("*.py"))
        for call in calls(path)
        if is_log_call(call)
        and (
            any(keyword.arg == "extra" for keyword in call.keywords)
            or any(isinstance(arg, ast.Dict | ast.DictComp) for arg in call.args)
            or any(isinstance(arg, ast.Call) and called_name(arg) == "dumps" for arg in call.args)
        )
    ]
    assert found == []

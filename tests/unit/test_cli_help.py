"""Every command, argument and option of the CLI says what it is for in `-h` (issue 17: many had no help)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import get_args

import pytest

from relaunch.cli import _parser, main
from relaunch.triggers import drift


def walk(parser: argparse.ArgumentParser, path: str = "relaunch") -> Iterator[tuple[str, argparse.Action]]:
    """(command path, action) for every action of the parser and of every subcommand under it, at any depth."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from ((f"{path} {choice.dest}", choice) for choice in action._choices_actions)
            for name, child in action.choices.items():
                yield from walk(child, f"{path} {name}")
        yield path, action


def undocumented(parser: argparse.ArgumentParser) -> list[str]:
    """The arguments, options and subcommands that `-h` would list without a word on them."""
    return [
        f"{path}: {'/'.join(action.option_strings) or action.dest}"
        for path, action in walk(parser)
        if not (action.help or "").strip() and action.help != argparse.SUPPRESS
    ]


def test_every_argument_option_and_command_has_help() -> None:
    assert undocumented(_parser()) == []


def test_the_walk_finds_a_new_flag_without_help() -> None:
    """The check is real: a flag added anywhere without help is caught, subcommands of subcommands included."""
    parser = _parser()
    (kinds,) = [a for a in walk(parser) if a[0] == "relaunch simulate" and isinstance(a[1], argparse._SubParsersAction)]
    assert isinstance(kinds[1], argparse._SubParsersAction)
    kinds[1].choices["drift"].add_argument("--new-flag")
    assert undocumented(parser) == ["relaunch simulate drift: --new-flag"]
    assert len([a for a in walk(parser) if a[0].startswith("relaunch simulate ")]) > 30  # the walk went deep


def test_simulate_drift_help_names_every_format_the_trigger_reads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "drift", "-h"])
    shown = capsys.readouterr().out
    formats = get_args(drift.Source)  # the shapes relaunch.triggers.drift tells apart
    assert len(formats) == 3 and all(f"\n  {name} " in shown for name in formats), shown
    assert "Cloud Monitoring incident" in shown and "simulate sends the first" in shown


def test_an_unknown_simulate_kind_suggests_the_source_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["simulate", "build", "--run", "r1"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "did you mean 'cloudbuild'?" in err.splitlines()[-1], err

"""The README walkthrough's parser: what a block means, and that a changed output is caught."""

from __future__ import annotations

import pytest

from tests.walkthrough import parse

README = """intro
<!-- walkthrough -->
text
<!-- walkthrough: background -->
```console
$ relaunch up
relaunch embedded stack, state in ...
```
<!-- walkthrough: until 30 -->
```console
$ relaunch runs
RUN ... promoted ...
$ echo done
done
```
<!-- /walkthrough -->
```console
$ not part of it
```
"""


def test_blocks_become_steps_with_their_modes() -> None:
    steps = parse(README).steps
    assert [s.command for s in steps] == ["relaunch up", "relaunch runs", "echo done"]
    assert [s.background for s in steps] == [True, False, False]
    assert [s.until_s for s in steps] == [0.0, 30.0, 30.0]


def test_ellipsis_matches_variable_text_but_not_a_changed_word() -> None:
    step = parse(README).steps[1]
    assert step.matches("RUN   r-abc  digits promoted  v1\n")
    assert not step.matches("RUN   r-abc  digits rejected  v1\n")


@pytest.mark.parametrize(
    "text",
    [
        "no section",
        "<!-- walkthrough -->\n<!-- /walkthrough -->",
        "<!-- walkthrough -->\n```console\nout\n```\n<!-- /walkthrough -->",
    ],
)
def test_a_malformed_walkthrough_is_an_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)

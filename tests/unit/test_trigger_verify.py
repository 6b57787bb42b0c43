"""Verification as its own step: it fails closed, and a skipped check is named, never forged with a signature."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from relaunch.domain.model import Delivery
from relaunch.service.ingest_replay import reparse
from relaunch.simulate import github_headers, wandb_payload
from relaunch.triggers import signing
from relaunch.triggers.errors import PayloadTooLarge, TriggerError, Unauthorized, UnsupportedMediaType
from relaunch.triggers.github import PingEvent, parse_verified_github, redact_headers
from relaunch.triggers.verify import AT_RECEIPT, DEV_MODE, skip_verification, verify_github, verify_wandb
from relaunch.triggers.wandb import WandbEvent, parse_verified_wandb

SRC = Path(__file__).resolve().parents[2] / "src" / "relaunch"
PING = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
WANDB = json.dumps(wandb_payload("CREATE_ARTIFACT", "acme/digits/digits-model:v1")).encode()
LIMIT = 1 << 20


def test_a_signed_delivery_is_verified_and_parsed_from_what_verification_returned() -> None:
    delivery = verify_github(github_headers("ping", PING, "s", "d-1"), PING, "s", max_body=LIMIT)
    assert delivery.verification == "authenticated" and delivery.headers["x-github-event"] == "ping"
    assert isinstance(parse_verified_github(delivery), PingEvent)


@pytest.mark.parametrize("secret", [None, "", "other"])
def test_verification_fails_closed_without_the_right_secret(secret: str | None) -> None:
    with pytest.raises(Unauthorized):
        verify_github(github_headers("ping", PING, "s", "d-1"), PING, secret, max_body=LIMIT)
    with pytest.raises(Unauthorized):
        verify_wandb({"Content-Type": "application/json"}, WANDB, token=secret, secret=secret, max_body=LIMIT)


def test_a_skipped_check_is_named_and_still_bounds_the_size_and_the_media_type() -> None:
    unsigned = {k: v for k, v in github_headers("ping", PING, "s", "d-2").items() if k != "X-Hub-Signature-256"}
    delivery = skip_verification("github", unsigned, PING, DEV_MODE, max_body=LIMIT)
    assert delivery.verification == "unsigned (development mode)"
    assert isinstance(parse_verified_github(delivery), PingEvent)
    with pytest.raises(PayloadTooLarge):
        skip_verification("github", unsigned, PING, DEV_MODE, max_body=len(PING) - 1)
    with pytest.raises(UnsupportedMediaType):
        skip_verification("wandb", {"Content-Type": "text/plain"}, WANDB, DEV_MODE, max_body=LIMIT)


def test_a_replay_reads_the_stored_body_as_verified_at_receipt_and_computes_no_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def forbidden(*_: object) -> str:
        raise AssertionError("a replay computed a signature")

    monkeypatch.setattr(signing, "github_signature", forbidden)
    monkeypatch.setattr(signing, "wandb_signature", forbidden)
    stored = redact_headers(github_headers("ping", PING, "s", "d-3"))
    assert isinstance(
        reparse(Delivery(key="github:d-3", source="github", headers=stored, body=PING.decode())), PingEvent
    )
    stored = redact_headers({"Content-Type": "application/json", "Authorization": "Bearer t"})
    assert isinstance(reparse(Delivery(key="wandb:x", source="wandb", headers=stored, body=WANDB.decode())), WandbEvent)


def test_a_replayed_delivery_is_still_parsed_in_full() -> None:
    stored = {"Content-Type": "application/json", "X-GitHub-Event": "ping"}  # no delivery id: never parseable
    with pytest.raises(TriggerError, match="X-GitHub-Delivery"):
        reparse(Delivery(key="github:d-4", source="github", headers=stored, body=PING.decode()))
    verified = skip_verification("wandb", {"Content-Type": "application/json"}, b"{}", AT_RECEIPT, max_body=LIMIT)
    with pytest.raises(TriggerError, match="event_type"):
        parse_verified_wandb(verified)


def test_only_the_sending_side_computes_a_signature() -> None:
    # A receiver that signs a body to get it past its own check has no check at all.
    computes = re.compile(r"\b(github|wandb)_signature\(")
    found = {
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if computes.search(path.read_text(encoding="utf-8"))
    }
    assert found <= {"triggers/signing.py", "simulate.py"}

"""The Bus on Cloud Pub/Sub: JSON messages on short-named topics, plus the idempotent admin calls deploy needs.

Publishing waits for the server's message id (bounded by a timeout), so a caller that answers 2xx knows the command
is durable. A failed or timed-out publish raises TransientError: the webhook answers 5xx and its sender retries.

Pub/Sub has no delayed delivery: a message published with `not_before` is delivered at once, carrying the time in
the attribute `relaunch-not-before`; its publisher sends it only when that time is near, and its receiver holds it
until then (a look at a rollout: domain/commands.py).
"""

from __future__ import annotations

import json
import re
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from relaunch.adapters.gcp import google_errors
from relaunch.domain.ports import TransientError

PUBLISH_TIMEOUT_S = 10.0
FUTURE_GRACE_S = 5.0
# Pub/Sub's rule for topic and subscription ids.
_RESOURCE_ID = re.compile(r"[A-Za-z][-A-Za-z0-9._~%+]{2,254}")
DEAD_LETTER_ATTEMPTS = range(5, 101)  # what Pub/Sub accepts for max_delivery_attempts
NOT_BEFORE = "relaunch-not-before"  # the attribute saying when a message is due (UNIX seconds)


def resource_id(value: str, field: str) -> str:
    """A topic or subscription id as Pub/Sub accepts it, else ValueError naming the field."""
    if not _RESOURCE_ID.fullmatch(value) or value.lower().startswith("goog"):
        raise ValueError(f"{field}: {value!r} is not a Pub/Sub id (3-255 of [A-Za-z0-9-._~%+], starting with a letter)")
    return value


class PubSubBus:
    """Bus on Pub/Sub; `client` is a google.cloud.pubsub_v1.PublisherClient (one is made if not given)."""

    def __init__(self, project: str, *, client: Any | None = None, timeout_s: float = PUBLISH_TIMEOUT_S) -> None:
        self._owns_publisher = client is None
        if client is None:
            from google.cloud.pubsub_v1 import PublisherClient

            client = PublisherClient()
        self.project = project
        self.timeout_s = timeout_s
        self._publisher = client
        self._subscriber: Any | None = None

    def close(self) -> None:
        """Close the clients this bus made (a publisher passed in stays open: it belongs to the caller)."""
        if self._subscriber is not None:
            self._subscriber.close()
            self._subscriber = None
        if self._owns_publisher:
            self._owns_publisher = False
            self._publisher.stop()  # sends what is still batched, without waiting
            self._publisher.transport.close()

    def topic_path(self, topic: str) -> str:
        return str(self._publisher.topic_path(self.project, resource_id(topic, "topic")))

    def publish(
        self,
        topic: str,
        data: dict[str, Any],
        attributes: dict[str, str] | None = None,
        *,
        not_before: float | None = None,
    ) -> str:
        """Publish `data` as JSON; returns the server's message id once the message is stored. Delivered at once:
        `not_before` only travels as the attribute NOT_BEFORE."""
        path = self.topic_path(topic)
        try:
            payload = json.dumps(data, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"data: not JSON-serialisable: {exc}") from exc
        attributes = dict(attributes or {})
        if not_before is not None:
            attributes[NOT_BEFORE] = f"{not_before:.3f}"
        for name, value in attributes.items():
            if not isinstance(value, str):
                raise ValueError(f"attributes.{name}: must be a string, got {type(value).__name__}")
        try:
            # The SDK retries for up to 600 s by default: bound its retries, so its thread gives up when we do.
            retry = _publish_retry(self.timeout_s)
            future = self._publisher.publish(path, payload, retry=retry, timeout=self.timeout_s, **attributes)
            return str(future.result(timeout=self.timeout_s + FUTURE_GRACE_S))
        except FutureTimeout as exc:
            raise TransientError(f"publishing to {topic}: no answer within {self.timeout_s}s") from exc
        except Exception as exc:  # the future fails with the RPC's error
            error = _publish_error(topic, exc)
            if error is exc:
                raise
            raise error from exc

    def ensure_topic(self, topic: str) -> str:
        """Create the topic unless it exists; returns its full path."""
        from google.api_core.exceptions import AlreadyExists

        path = self.topic_path(topic)
        with google_errors(f"creating topic {topic}"):
            try:
                self._publisher.create_topic(name=path)
            except AlreadyExists:
                pass
        return path

    def ensure_push_subscription(
        self,
        name: str,
        topic: str,
        push_endpoint: str,
        *,
        max_attempts: int = 8,
        dead_letter_topic: str | None = None,
        ack_deadline_s: int = 60,
        oidc_service_account: str | None = None,
    ) -> str:
        """Create the push subscription, or bring an existing one to this configuration; returns its full path.

        `max_attempts` bounds deliveries before the message goes to `dead_letter_topic` (Pub/Sub counts attempts
        only when a dead-letter topic is set; without one it redelivers until retention ends). With
        `oidc_service_account`, pushes carry an OIDC token of that account (for endpoints that require auth).
        """
        from google.api_core.exceptions import AlreadyExists

        request = self._subscription(name, topic, push_endpoint, max_attempts, dead_letter_topic, ack_deadline_s)
        if oidc_service_account is not None:
            request["push_config"]["oidc_token"] = {"service_account_email": oidc_service_account}
        subscriber = self._subscriber_client()
        with google_errors(f"creating subscription {name}"):
            try:
                subscriber.create_subscription(request=request)
            except AlreadyExists:
                existing = subscriber.get_subscription(request={"subscription": request["name"]})
                if existing.topic != request["topic"]:
                    raise ValueError(
                        f"topic: subscription {name} exists on {existing.topic}; Pub/Sub cannot move a subscription"
                        " to another topic (delete it first)"
                    ) from None
                mask = {"paths": ["push_config", "ack_deadline_seconds", "dead_letter_policy"]}
                subscriber.update_subscription(request={"subscription": request, "update_mask": mask})
        return str(request["name"])

    def _subscription(
        self, name: str, topic: str, endpoint: str, attempts: int, dead_letter_topic: str | None, ack_deadline_s: int
    ) -> dict[str, Any]:
        """A Subscription resource (as a dict), checked against Pub/Sub's limits before any call."""
        if dead_letter_topic is not None and attempts not in DEAD_LETTER_ATTEMPTS:
            raise ValueError(f"max_attempts: Pub/Sub accepts 5 to 100 with a dead-letter topic, got {attempts}")
        if not 10 <= ack_deadline_s <= 600:
            raise ValueError(f"ack_deadline_s: Pub/Sub accepts 10 to 600 seconds, got {ack_deadline_s}")
        if not endpoint.startswith(("https://", "http://")):
            raise ValueError(f"push_endpoint: must be an http(s) URL, got {endpoint!r}")
        subscription: dict[str, Any] = {
            "name": f"projects/{self.project}/subscriptions/{resource_id(name, 'name')}",
            "topic": self.topic_path(topic),
            "push_config": {"push_endpoint": endpoint},
            "ack_deadline_seconds": ack_deadline_s,
        }
        if dead_letter_topic is not None:
            dead_letters = self.topic_path(dead_letter_topic)
            subscription["dead_letter_policy"] = {"dead_letter_topic": dead_letters, "max_delivery_attempts": attempts}
        return subscription

    def _subscriber_client(self) -> Any:
        if self._subscriber is None:
            from google.cloud.pubsub_v1 import SubscriberClient

            self._subscriber = SubscriberClient()
        return self._subscriber


def _publish_retry(timeout_s: float) -> Any:
    """Pub/Sub's own retry policy for Publish (the codes of its client config), within `timeout_s` in all."""
    from google.api_core import exceptions as e
    from google.api_core.retry import Retry, if_exception_type

    retryable = (e.Aborted, e.Cancelled, e.DeadlineExceeded, e.InternalServerError, e.ResourceExhausted)
    predicate = if_exception_type(*retryable, e.ServiceUnavailable, e.Unknown)
    return Retry(predicate=predicate, initial=0.1, maximum=2.0, multiplier=2.0, timeout=timeout_s)


def _publish_error(topic: str, exc: Exception) -> Exception:
    """A refused message (InvalidArgument: too large, bad attributes) is permanent; any other RPC error transient."""
    from google.api_core.exceptions import GoogleAPICallError, InvalidArgument, RetryError

    if isinstance(exc, InvalidArgument):
        return ValueError(f"publishing to {topic}: {exc}")
    if isinstance(exc, GoogleAPICallError | RetryError):
        return TransientError(f"publishing to {topic}: {exc}")
    return exc

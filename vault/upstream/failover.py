"""The failover loop: try keys until one answers, before any byte reaches the client.

A key-attributable failure, a 5xx, a timeout, a refused connection or an empty 200 moves
on to the next usable key (at most `max_retries` more). A client error is returned as it
is. Once a 200 with a first byte is in hand the choice is final: a stream that breaks later
is reported in-band by the relay, never restarted on another key.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from vault.errors import NoUpstream, RateLimited, UpstreamFailed, UpstreamTimeout, VaultError
from vault.rotator import NoUsableKey, PoolKey
from vault.upstream.classify import Classification, Verdict, classify_response, transport_failure
from vault.upstream.client import UpstreamClient, UpstreamRequest, iter_body, read_limited
from vault.upstream.health import PoolHealth

log = logging.getLogger(__name__)


@dataclass
class Answer:
    """The upstream answer the client will get: a success or a client error, from one key.

    For a stream, `first_chunk` is already read and `response` holds the rest; otherwise
    `body` is complete and `response` is closed.
    """

    key: PoolKey
    status: int
    headers: dict
    response: requests.Response | None = None
    first_chunk: bytes = b""
    body: bytes = b""
    attempts: list[Classification] = field(default_factory=list)


def forward(request: UpstreamRequest, client: UpstreamClient, health: PoolHealth, max_retries: int) -> Answer:
    """Send `request` through the pool; raise a `VaultError` if no key could serve it."""
    tried: set[int] = set()
    failures: list[Classification] = []
    for attempt in range(1 + max_retries):
        if attempt:
            health.note_failover()
        try:
            key = health.pick(request.model, tried)
        except NoUsableKey as exc:
            raise give_up(failures, exc.retry_after, none_left=True) from None
        tried.add(key.id)
        answer, outcome = try_key(request, client, key)
        health.record(key, request.model, outcome)
        if answer is not None:
            answer.attempts = failures
            return answer
        failures.append(outcome)
    raise give_up(failures, retry_after=None, none_left=False)


def try_key(request: UpstreamRequest, client: UpstreamClient, key: PoolKey) -> tuple[Answer | None, Classification]:
    """One attempt: the answer to relay (or None to try another key) and its verdict."""
    try:
        response = client.send(request, key.secret)
    except requests.Timeout:
        return None, transport_failure("upstream timed out", timed_out=True)
    except requests.RequestException as exc:
        return None, transport_failure(f"upstream unreachable ({type(exc).__name__})")
    try:
        if response.status_code == 200:
            return accept(request, response, key)
        body = read_limited(response)
    except requests.RequestException as exc:
        response.close()
        return None, transport_failure(f"upstream broke off ({type(exc).__name__})",
                                       timed_out=isinstance(exc, requests.Timeout))
    response.close()
    outcome = classify_response(response.status_code, body, request.path, response.headers.get("Retry-After"),
                                datetime.now(UTC))
    if outcome.verdict is Verdict.CLIENT_ERROR:
        return Answer(key, response.status_code, dict(response.headers), body=body), outcome
    return None, outcome


def accept(request: UpstreamRequest, response: requests.Response, key: PoolKey) -> tuple[Answer | None, Classification]:
    """A 200: read its first byte(s); an empty body is a failure, not an empty answer."""
    headers = dict(response.headers)
    if request.streaming:
        first = next(iter_body(response), b"")
        if not first:
            response.close()
            return None, transport_failure("empty 200 from the upstream")
        return Answer(key, 200, headers, response=response, first_chunk=first), Classification(Verdict.OK, "ok", 200)
    body = response.content
    response.close()
    if not body.strip():
        return None, transport_failure("empty 200 from the upstream")
    return Answer(key, 200, headers, body=body), Classification(Verdict.OK, "ok", 200)


def give_up(failures: list[Classification], retry_after: float | None, none_left: bool) -> VaultError:
    """The error for a request no key could serve.

    Every usable key cooling after 429s → 429 with `Retry-After`; no key at all → 503;
    otherwise the upstream failed → 504 if it timed out, else 502.
    """
    only_rate_limits = all(failure.verdict is Verdict.RATE_LIMITED for failure in failures)
    if none_left and retry_after is not None and only_rate_limits:
        return RateLimited("Every upstream key is rate-limited for this model; retry later.",
                           retry_after=max(1, int(retry_after + 0.999)))
    if not failures:
        return NoUpstream("No upstream key is configured or enabled.")
    log.warning("upstream failed after %d attempt(s): %s", len(failures), "; ".join(f.summary for f in failures))
    last = failures[-1]
    if only_rate_limits:
        return RateLimited("The upstream is rate-limiting every key tried; retry later.",
                           retry_after=max(1, int((last.retry_after or 1) + 0.999)))
    if last.timed_out:
        return UpstreamTimeout("The upstream did not answer in time.")
    return UpstreamFailed("The upstream failed on every key tried.")


def check_key(key: PoolKey, client: UpstreamClient, health: PoolHealth) -> Classification:
    """One cheap upstream call with `key` (list one model), recorded like any other."""
    probe = UpstreamRequest(method="GET", path="/v1beta/models", query=[("pageSize", "1")], headers={}, body=b"",
                            bearer_auth=False, model="", streaming=False, dialect="google")
    _answer, outcome = try_key(probe, client, key)
    health.record(key, "", outcome)
    return outcome

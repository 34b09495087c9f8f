"""The failover loop: try keys until one answers, before any byte reaches the client.

A key-attributable failure, a 5xx, a timeout, a refused connection or an empty 200 moves
on to the next usable key (at most `max_retries` more). A client error is returned as it
is, once. A redirect is never followed nor relayed: it is a 502 at once. Once a 200 with a
first byte is in hand the choice is final: a stream that breaks later is reported in-band
by the relay, never restarted on another key.

What each answer means for the key is decided in `vault.pool`; this loop adds the rules
that need the whole request in view: one request blames at most one key (one disable, one
breaker strike).
"""

import logging
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import requests

from vault.errors import NoUpstream, RateLimited, ResourceUnavailable, UpstreamFailed, UpstreamTimeout, VaultError
from vault.pool.classify import KEY_FAULTS, Classification, Verdict, classify_response, transport_failure
from vault.pool.health import PoolHealth
from vault.pool.rotator import NoUsableKey, PoolKey
from vault.upstream.client import UpstreamClient, UpstreamRequest, iter_body, read_limited

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
            raise give_up(failures, exc) from None
        tried.add(key.id)
        answer, outcome = try_key(request, client, key)
        outcome = limit_blame(outcome, failures)
        health.record(key, request.model, outcome)
        if answer is not None:
            answer.attempts = failures
            return answer
        failures.append(outcome)
        if outcome.verdict in (Verdict.REDIRECTED, Verdict.SUSPECT):
            raise stop(outcome, failures)
    rate_limited = all(failure.verdict is Verdict.RATE_LIMITED for failure in failures)
    raise give_up(failures, NoUsableKey(health.retry_after(request.model)) if rate_limited else None,
                  retries_spent=True)


def forward_pinned(request: UpstreamRequest, client: UpstreamClient, health: PoolHealth, key_id: int,
                   unavailable: str) -> Answer:
    """Send `request` with key `key_id` only: the files or cache it names live in that key's project.

    No failover: another key would get a 403. A cooling key gives 429 with its own
    `Retry-After`; a key disabled until an admin acts, or deleted, gives 409 (`unavailable`).
    """
    try:
        key = health.pick_key(key_id, request.model)
    except NoUsableKey as exc:
        raise pinned_wait(exc, unavailable) from None
    answer, outcome = try_key(request, client, key)
    health.record(key, request.model, outcome)
    if answer is not None:
        return answer
    if outcome.verdict in (Verdict.RATE_LIMITED, Verdict.KEY_REJECTED, Verdict.KEY_FAILURE):
        try:
            health.pick_key(key_id, request.model)
        except NoUsableKey as exc:
            raise pinned_wait(exc, unavailable) from None
    raise give_up([outcome])


def pinned_wait(exc: NoUsableKey, unavailable: str) -> VaultError:
    """The answer when the one key a call must use cannot serve it now."""
    if exc.retry_after is None:
        return ResourceUnavailable(unavailable)
    retry_after = max(1, math.ceil(exc.retry_after))
    if exc.resting:
        return NoUpstream("The upstream key holding this resource is resting after upstream failures; retry later.",
                          retry_after=retry_after)
    return RateLimited("The upstream key holding this resource is rate-limited for this model; retry later.",
                       retry_after=retry_after)


def limit_blame(outcome: Classification, failures: list[Classification]) -> Classification:
    """The verdict on this attempt, given what earlier keys already answered to the same request.

    A key is blamed for what Google says about it, but Google can be made to say it: a
    request carrying a smuggled credential, or some request shape we have not foreseen, can
    draw a key-rejection from every key in turn, and each would be disabled until an admin
    acts -- one request could empty the pool. One key rejecting a request is plausibly that
    key's fault; a second one rejecting the *same* request is more likely the request. So the
    first key fault is acted on, and a second one ends the request (502) without touching
    the second key. For the same reason only the first 5xx/timeout of a request is a strike
    toward a key's breaker: when the next key fails the same request too, the request or
    Google is the likelier cause, and benching every key it touched would help no one.
    """
    if outcome.verdict in KEY_FAULTS and any(failure.verdict in KEY_FAULTS for failure in failures):
        return replace(outcome, verdict=Verdict.SUSPECT, summary=f"{outcome.summary} (second key fault in a request)")
    if outcome.strike and any(failure.strike for failure in failures):
        return replace(outcome, strike=False)
    return outcome


def stop(outcome: Classification, failures: list[Classification]) -> VaultError:
    """The 502 for an answer that ends the request at once: a redirect, or a suspect request."""
    log.warning("upstream failed after %d attempt(s), not retried: %s", len(failures),
                "; ".join(failure.summary for failure in failures))
    if outcome.verdict is Verdict.REDIRECTED:
        return UpstreamFailed("The upstream answered with a redirect, which is not followed.")
    return UpstreamFailed("The upstream refused this request with more than one key; it was not retried.")


def try_key(request: UpstreamRequest, client: UpstreamClient, key: PoolKey) -> tuple[Answer | None, Classification]:
    """One attempt: the answer to relay (or None to try another key) and its verdict."""
    try:
        response = client.send(request, key.secret, key.proxy_url)
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
    outcome = classify_response(response.status_code, body, response.headers.get("Retry-After"), datetime.now(UTC))
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
    if not body.strip() and not request.extras.get("empty_ok"):
        return None, transport_failure("empty 200 from the upstream")
    return Answer(key, 200, headers, body=body), Classification(Verdict.OK, "ok", 200)


def give_up(failures: list[Classification], none_left: NoUsableKey | None = None,
            retries_spent: bool = False) -> VaultError:
    """The error for a request no key could serve.

    Only 429s met (or none at all) and a key will be back: 429 with `Retry-After`, or 503
    with `Retry-After` when keys rest after their breaker tripped or only keys disabled for
    a while are left. `Retry-After` is always the time until the soonest key of the pool can
    serve this model -- keys this request tried included, disabled-for-good and deleted keys
    not -- as the pool reports it (capped at `VAULT_RETRY_AFTER_MAX_SECONDS`); at least 1.
    No key at all → 503; otherwise the upstream failed → 504 if it timed out, else 502.
    """
    only_rate_limits = all(failure.verdict is Verdict.RATE_LIMITED for failure in failures)
    waiting = none_left is not None and none_left.retry_after is not None
    if waiting and only_rate_limits:
        retry_after = max(1, math.ceil(none_left.retry_after))
        if retries_spent:
            return RateLimited("The upstream is rate-limiting every key tried; retry later.", retry_after=retry_after)
        if none_left.resting:
            return NoUpstream("Every usable upstream key is cooling down or resting after upstream failures; "
                              "retry later.", retry_after=retry_after)
        return RateLimited("Every upstream key is rate-limited for this model; retry later.", retry_after=retry_after)
    if not failures:
        return NoUpstream("No upstream key is configured or enabled.")
    log.warning("upstream failed after %d attempt(s): %s", len(failures), "; ".join(f.summary for f in failures))
    last = failures[-1]
    if only_rate_limits:
        return RateLimited("The upstream is rate-limiting every key tried; retry later.",
                           retry_after=max(1, math.ceil(last.retry_after or 1)))
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

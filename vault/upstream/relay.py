"""Relaying a streamed answer chunk by chunk, and noticing how the stream ended."""

import logging
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Protocol

import requests
import urllib3

from vault.upstream.client import iter_body
from vault.upstream.failover import Answer

log = logging.getLogger(__name__)

COMPLETED = "completed"
CLIENT_DISCONNECTED = "client_disconnected"
UPSTREAM_BROKE = "upstream_broke"
CUT_OFF = "cut_off"


class CutOff(Exception):
    """Raised by `observe` to end the stream before the piece it saw (e.g. it passed its hold)."""


class Rewriter(Protocol):
    """Changes a stream on its way to the client (e.g. dropping usage the client did not ask for)."""

    def feed(self, chunk: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


def relay_stream(answer: Answer, error_event: Callable[[str], bytes | None], on_finish: Callable[[str], None],
                 observe: Callable[[bytes], None] | None = None, rewrite: Rewriter | None = None) -> Iterator[bytes]:
    """Yield the upstream's bytes as they arrive; always close the upstream and report the end.

    `observe` sees every upstream chunk before it is relayed (for usage) and may raise
    `CutOff` to end the stream there; `rewrite` may change what the client gets. A client that
    goes away closes this generator (GeneratorExit), which closes the upstream connection. An
    upstream that breaks off, or a cut-off, ends the client's stream with `error_event(ending)`
    in the caller's dialect; where the format has no error event, the connection is cut so
    the client sees an incomplete body, not a short answer that looks whole.
    """
    ending = COMPLETED
    try:
        for piece in chain((answer.first_chunk,), iter_body(answer.response)):
            if observe is not None:
                observe(piece)
            out = rewrite.feed(piece) if rewrite is not None else piece
            if out:
                yield out
        if rewrite is not None and (rest := rewrite.flush()):
            yield rest
    except GeneratorExit:
        ending = CLIENT_DISCONNECTED
        raise
    except CutOff:
        ending = CUT_OFF
        event = error_event(CUT_OFF)
        if event is None:
            raise ConnectionAbortedError("stream cut off") from None
        yield event
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        ending = UPSTREAM_BROKE
        log.warning("upstream stream broke off (%s) on key %s", type(exc).__name__, answer.key.masked)
        event = error_event(UPSTREAM_BROKE)
        if event is None:
            raise ConnectionAbortedError("upstream stream broke off") from None
        yield event
    finally:
        answer.response.close()
        on_finish(ending)

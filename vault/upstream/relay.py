"""Relaying a streamed answer chunk by chunk, and noticing how the stream ended."""

import logging
from collections.abc import Callable, Iterator

import requests
import urllib3

from vault.upstream.client import iter_body
from vault.upstream.failover import Answer

log = logging.getLogger(__name__)

COMPLETED = "completed"
CLIENT_DISCONNECTED = "client_disconnected"
UPSTREAM_BROKE = "upstream_broke"


def relay_stream(answer: Answer, error_event: Callable[[], bytes | None],
                 on_finish: Callable[[str], None]) -> Iterator[bytes]:
    """Yield the upstream's bytes as they arrive; always close the upstream and report the end.

    A client that goes away closes this generator (GeneratorExit), which closes the upstream
    connection. An upstream that breaks off ends the client's stream with `error_event()`
    in the caller's dialect; where the format has no error event, the connection is cut so
    the client sees an incomplete body instead of a truncated answer that looks complete.
    """
    ending = COMPLETED
    try:
        yield answer.first_chunk
        yield from iter_body(answer.response)
    except GeneratorExit:
        ending = CLIENT_DISCONNECTED
        raise
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        ending = UPSTREAM_BROKE
        log.warning("upstream stream broke off (%s) on key %s", type(exc).__name__, answer.key.masked)
        event = error_event()
        if event is None:
            raise ConnectionAbortedError("upstream stream broke off") from None
        yield event
    finally:
        answer.response.close()
        on_finish(ending)

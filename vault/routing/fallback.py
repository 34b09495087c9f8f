"""Fallback chains: when every key is cooling for a model, the next model of its chain serves the call.

Off unless an admin sets a chain for the model. Only a 429 from the failover loop (every key
rate-limited or cooling for this model) moves on; any other failure is the answer. Each
fallback is a new call for the pool (`forward` with its own retries) and is priced anew for
its own model: `reroute` gives the first hold back and holds again at the fallback's price,
so the hold always covers the model that really answers, and the record names the model
first routed to in `fallback_from`. When the whole chain is cooling, the caller gets the 429
of the model it asked for.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from vault.errors import RateLimited
from vault.upstream.client import UpstreamRequest
from vault.upstream.failover import Answer

if TYPE_CHECKING:  # the proxy imports this module while vault.routing.route may be importing the proxy
    from vault.routing.route import Route

Send = Callable[[UpstreamRequest], Answer]
Reroute = Callable[["Route"], UpstreamRequest]


def forward_with_fallback(route: "Route", upstream: UpstreamRequest, send: Send,
                          reroute: Reroute) -> tuple[Answer, UpstreamRequest]:
    """`send(upstream)`, then each model of `route.fallback` in turn while the pool answers 429.

    `reroute(next_route)` re-prices and re-holds the call for the next model and returns its request.
    """
    try:
        return send(upstream), upstream
    except RateLimited as exc:
        if not route.fallback:
            raise
        first = exc
    for model in route.fallback:
        upstream = reroute(route.to(model))
        try:
            return send(upstream), upstream
        except RateLimited:
            continue
    raise first

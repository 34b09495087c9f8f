"""Model routing an admin sets: aliases and virtual models, hidden models, fallback chains.

Plain logic, no Flask request. The proxy calls, per request:

- `vault.routing.route.route(table, inbound)` → `Route`: the name the caller used (`requested`),
  the model that serves it (`target`), the request rewritten for the target (alias resolved,
  a virtual model's defaults merged), `hidden`, `fallback`; `Route.names` is
  `(requested, target)`, for checks that must allow either;
- `Route.upstream_request(cap)`: the upstream request, `model` = target and
  `extras["requested_model"]` = the name the caller used;
- `Route.stale(stamps.prices)`: the table is older than the stamp the hold read;
- `Route.refuse_hidden()`: 404 for a hidden model;
- `fallback.forward_with_fallback(...)` and `listing.rewritten(...)` for fallbacks and models.list/get.

The table is cached per worker (`RoutingBook`, in the runtime as `routing`) and reloads when
the `prices` stamp moves; every change (`vault.routing.changes`) bumps it.

Import the modules themselves (`from vault.routing import route`): the proxy imports this
package while `vault.routing.route` may still be importing the proxy.
"""

"""The routing table an admin sets (aliases, hidden models, fallback chains), cached per worker.

Like the price book, every worker keeps the table in memory and reloads it when the `prices`
version stamp moves: every routing change bumps that stamp in its own transaction, and the
proxy reads the stamp with the hold it takes anyway, so a change applies to the next request
on every worker with no extra round trip. A timed re-read remains as a fallback.
"""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.billing.prices import PRICE_VERSION
from vault.models import ModelAlias, ModelSetting


@dataclass(frozen=True)
class Alias:
    """A name callers may use for `target`, with request defaults (a native fragment) when virtual."""

    name: str
    target: str
    defaults: MappingProxyType | None = None


@dataclass(frozen=True)
class RoutingTable:
    """One consistent read of the routing tables, at price version `version`."""

    aliases: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    hidden: frozenset[str] = frozenset()
    fallbacks: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    version: int | None = None

    def alias(self, name: str) -> Alias | None:
        """The alias called `name`, if there is one."""
        return self.aliases.get(name)

    def is_hidden(self, name: str) -> bool:
        return name in self.hidden

    def fallback(self, model: str) -> tuple[str, ...]:
        """The models tried, in order, when every key is cooling for `model` (empty: none)."""
        return self.fallbacks.get(model, ())


EMPTY = RoutingTable()


def frozen(value):
    """`value` (parsed JSON) as read-only mappings and tuples, so a cached table cannot be changed by a caller."""
    if isinstance(value, dict):
        return MappingProxyType({key: frozen(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(frozen(item) for item in value)
    return value


def thawed(value):
    """A frozen value as plain dicts and lists again (a fresh copy, safe to merge into a body)."""
    if isinstance(value, MappingProxyType | dict):
        return {key: thawed(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [thawed(item) for item in value]
    return value


def load_table(session: Session) -> RoutingTable:
    """Read the routing tables (the stamp first: a change committed meanwhile makes the next request reload)."""
    version = session.scalar(select(PRICE_VERSION))
    aliases = {row.alias: Alias(row.alias, row.target, frozen(row.defaults) if row.defaults else None)
               for row in session.scalars(select(ModelAlias))}
    settings = list(session.scalars(select(ModelSetting)))
    return RoutingTable(
        aliases=MappingProxyType(aliases),
        hidden=frozenset(row.model for row in settings if row.hidden),
        fallbacks=MappingProxyType({row.model: tuple(row.fallback) for row in settings if row.fallback}),
        version=version,
    )


class RoutingBook:
    """The routing table, cached in memory: reloaded when a caller presents another price
    version than the one loaded, and every `refresh_seconds` in any case."""

    def __init__(self, session_factory: Callable[[], Session], refresh_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self._sessions = session_factory
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._table = EMPTY
        self._loaded_at = -math.inf
        self._lock = threading.Lock()

    def table(self, version: int | None = None) -> RoutingTable:
        """The current table; `version` is the price version the caller read (None: the cached one)."""
        table = self._table
        if self._expired() or (version is not None and version != table.version):
            table = self.refresh(version)
        return table

    def refresh(self, version: int | None = None) -> RoutingTable:
        """Re-read the tables now (unless another caller just loaded `version`)."""
        with self._lock:
            if version is not None and version == self._table.version and not self._expired():
                return self._table
            with self._sessions() as session:
                self._table = load_table(session)
            self._loaded_at = self._clock()
            return self._table

    def _expired(self) -> bool:
        return self._clock() - self._loaded_at >= self._refresh_seconds

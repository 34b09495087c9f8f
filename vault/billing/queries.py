"""Reading the usage ledger: filtered pages of records and totals per day and model."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from vault.billing.money import nano_to_json
from vault.clock import isoformat
from vault.models import UsageRecord


@dataclass(frozen=True)
class Filters:
    """Which records to read; None means any."""

    user_id: int | None = None
    api_key_id: int | None = None
    model: str | None = None
    status: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select) -> Select:
        """`query` narrowed to these filters."""
        conditions = [
            UsageRecord.user_id == self.user_id if self.user_id is not None else None,
            UsageRecord.api_key_id == self.api_key_id if self.api_key_id is not None else None,
            UsageRecord.model == self.model.removeprefix("models/") if self.model else None,
            UsageRecord.status == self.status if self.status is not None else None,
            UsageRecord.started_at >= self.since if self.since is not None else None,
            UsageRecord.started_at < self.until if self.until is not None else None,
        ]
        return query.where(*[condition for condition in conditions if condition is not None])


def page(session: Session, filters: Filters, number: int, size: int) -> tuple[list[UsageRecord], int]:
    """One page of records, newest first, and how many match in all."""
    total = session.scalar(filters.apply(select(func.count(UsageRecord.id))))
    query = filters.apply(select(UsageRecord)).order_by(UsageRecord.started_at.desc(), UsageRecord.id.desc())
    return list(session.scalars(query.limit(size).offset((number - 1) * size))), int(total or 0)


def every_record(session_factory: Callable[[], Session], filters: Filters,
                 batch: int = 1000) -> Iterator[UsageRecord]:
    """Every matching record, newest first, read in keyset batches each in its own short session.

    For exports of any size: nothing is capped, memory holds one batch, and no transaction
    stays open while the client reads.
    """
    order = (UsageRecord.started_at.desc(), UsageRecord.id.desc())
    after: tuple[datetime, int] | None = None
    while True:
        query = filters.apply(select(UsageRecord)).order_by(*order).limit(batch)
        if after is not None:
            query = query.where(or_(UsageRecord.started_at < after[0],
                                    and_(UsageRecord.started_at == after[0], UsageRecord.id < after[1])))
        with session_factory() as session:
            rows = list(session.scalars(query))
        yield from rows
        if len(rows) < batch:
            return
        after = (rows[-1].started_at, rows[-1].id)


def day_of(session: Session, column):
    """The UTC calendar day of a timestamp column, as text, on SQLite and PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def by_day_and_model(session: Session, filters: Filters) -> list[dict[str, Any]]:
    """Requests, tokens and cost per UTC day and model."""
    day = day_of(session, UsageRecord.started_at).label("day")
    query = filters.apply(select(
        day, UsageRecord.model, func.count(UsageRecord.id), func.sum(UsageRecord.prompt_tokens),
        func.sum(UsageRecord.output_tokens), func.sum(UsageRecord.total_tokens), func.sum(UsageRecord.cost_nano),
    )).group_by(day, UsageRecord.model).order_by(day, UsageRecord.model)
    return [
        {"day": row[0], "model": row[1], "requests": row[2], "prompt_tokens": int(row[3] or 0),
         "output_tokens": int(row[4] or 0), "total_tokens": int(row[5] or 0), "cost": nano_to_json(int(row[6] or 0))}
        for row in session.execute(query)
    ]


def record_json(record: UsageRecord) -> dict[str, Any]:
    """The public form of a usage record (no secrets: key ids only)."""
    return {
        "id": record.id, "settlement_id": record.settlement_id, "client_request_id": record.client_request_id,
        "user_id": record.user_id,
        "api_key_id": record.api_key_id, "upstream_key_id": record.upstream_key_id, "endpoint": record.endpoint,
        "model": record.model, "priced_model": record.priced_model, "status": record.status,
        "streamed": record.streamed, "ending": record.ending, "usage_source": record.usage_source,
        "prompt_tokens": record.prompt_tokens,
        "cached_tokens": record.cached_tokens, "tool_prompt_tokens": record.tool_prompt_tokens,
        "candidates_tokens": record.candidates_tokens, "thoughts_tokens": record.thoughts_tokens,
        "output_tokens": record.output_tokens, "total_tokens": record.total_tokens, "image_count": record.image_count,
        "price": {"input": nano_to_json(record.price_input_nano), "output": nano_to_json(record.price_output_nano),
                  "cached_input": nano_to_json(record.price_cached_nano)},
        "cost": nano_to_json(record.cost_nano), "cost_nano_usd": record.cost_nano,
        "hold": nano_to_json(record.hold_nano),
        "first_byte_ms": record.first_byte_ms, "total_ms": record.total_ms,
        "started_at": isoformat(record.started_at), "finished_at": isoformat(record.finished_at),
        "error": record.error, "fallback_from": record.fallback_from,
    }


def totals(session: Session, filters: Filters) -> dict[str, int]:
    """Requests, errors (status >= 400), tokens and cost of the matching records."""
    row = session.execute(filters.apply(select(
        func.count(UsageRecord.id), func.count(UsageRecord.id).filter(UsageRecord.status >= 400),
        func.coalesce(func.sum(UsageRecord.total_tokens), 0), func.coalesce(func.sum(UsageRecord.cost_nano), 0),
    ))).one()
    return {"requests": row[0], "errors": row[1], "tokens": int(row[2]), "cost_nano": int(row[3])}


def by_upstream_key(session: Session, since: datetime, limit: int = 25) -> tuple[list[dict[str, Any]], int]:
    """Requests and failures (status >= 400, or never settled) per upstream key since `since`, with
    the key's masked form and state: the keys failing most first, then the busiest, at most `limit`
    of them; and how many keys had traffic."""
    from vault.models import UpstreamKey

    failed = or_(UsageRecord.status >= 400, UsageRecord.status == 0)
    counted = select(UsageRecord.upstream_key_id.label("key_id"), func.count(UsageRecord.id).label("requests"),
                     func.count(UsageRecord.id).filter(failed).label("failures")).where(
        UsageRecord.started_at >= since, UsageRecord.upstream_key_id.is_not(None)).group_by(
        UsageRecord.upstream_key_id).subquery()
    total = session.scalar(select(func.count()).select_from(counted)) or 0
    top = (select(counted, UpstreamKey.masked, UpstreamKey.state, UpstreamKey.deleted_at)
           .outerjoin(UpstreamKey, UpstreamKey.id == counted.c.key_id)
           .order_by(counted.c.failures.desc(), counted.c.requests.desc(), counted.c.key_id).limit(limit))
    return [{"upstream_key_id": row[0], "requests": int(row[1]), "failures": int(row[2]),
             "error_rate": round(100 * int(row[2]) / int(row[1]), 1) if row[1] else 0.0,
             "masked": row[3] or f"key {row[0]}", "state": "deleted" if row[5] or row[4] is None else row[4].value}
            for row in session.execute(top)], int(total)

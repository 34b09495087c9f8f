"""Ids the Vault makes are 32 hex digits, unique, and sort in the order they were made."""

import re
import time

from vault.ids import time_ordered_id


def next_millisecond() -> None:
    """Return once the clock has moved on to the next millisecond."""
    now = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 == now:
        pass


def test_ids_are_hex_unique_and_in_time_order():
    made = []
    for _ in range(3):
        made += [time_ordered_id() for _ in range(1000)]
        next_millisecond()
    assert all(re.fullmatch(r"[0-9a-f]{32}", made_id) for made_id in made)
    assert len(set(made)) == len(made)
    batches = [made[:1000], made[1000:2000], made[2000:]]
    assert max(batches[0]) < min(batches[1]) and max(batches[1]) < min(batches[2])


def test_the_first_digits_are_the_clock():
    before = time.time_ns() // 1_000_000
    made = time_ordered_id()
    after = time.time_ns() // 1_000_000
    assert before <= int(made[:12], 16) <= after

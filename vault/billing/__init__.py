"""Money, top to bottom: every proxied call is held for, measured and settled here.

Reading order:
- `money` — amounts as integer nano-USD;
- `usage` — token usage read from Google's answers (whole, streamed, OpenAI-shaped);
- `prices` — per-model rates and the cached price book; what a usage costs;
- `estimate` — how much to hold before a request is forwarded;
- `ledger` — the hold, the settlement and admin adjustments, as atomic statements;
- `meter` — one request's metering, from hold to settlement;
- `queries` — reading the usage records back (pages, totals).
"""

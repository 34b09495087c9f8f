"""Money, top to bottom: every proxied call is held for, measured and settled here.

Reading order:
- `money` — amounts as integer nano-USD;
- `usage` — token usage read from Google's answers (whole, streamed, OpenAI-shaped), by
  modality, and whether Google Search grounded them;
- `prices` — per-model rates and the price book every worker caches, kept current by a
  version stamp; what a usage costs;
- `catalog` — Google's list prices and token limits, dated, that seed the tables;
- `limits` — the model table of token limits, refreshed from the upstream's model list;
- `estimate` — what a request may use: the estimate charged when no usage is reported, and the
  worst case its hold covers (and the output cap a smaller hold allows);
- `ledger` — the hold (with its pending-hold row), the settlement, the settlement of abandoned
  holds, admin adjustments and the balance check, as atomic statements;
- `meter` — one request's metering, from hold to settlement (retried, never lost silently);
- `sweeper` — when abandoned holds are settled: at start, in the background per worker, by CLI;
- `redemption` — top-up codes: minted in batches (stored hashed), each claimed once by one
  conditional UPDATE with its ledger entry;
- `queries` — reading the usage records back (pages, totals).
"""

"""Per-key policies: what each Vault key may do, within the ceilings its owner's admin set.

`rules` combines a key's own settings with its owner's `User.limits` into the one `Policy`
the proxy enforces; `settings` validates changes (an owner can never give a key more than
the owner has, nor can an admin); `door` checks expiry, client address and models before
anything is read; `quota` enforces spend caps, tokens per minute and concurrency inside
the hold, so concurrent requests cannot overshoot them, and reports a key's standing.
"""

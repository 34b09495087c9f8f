"""The cachedContents API: create, list, get, patch (ttl / expireTime only) and delete.

A cached content belongs to the key that created it; another key's, an expired or an unknown
one is upstream's 403 "CachedContent not found (or permission denied)". Create takes
`model`, `contents`, `systemInstruction`, `tools`, `toolConfig`, `displayName` and one of
`ttl` ("300s") / `expireTime` (RFC 3339), camelCase or snake_case; the default lifetime is one
hour. `usageMetadata.totalTokenCount` is the fake's word count of the text plus 258 per file
referenced. Upstream's minimum cache size is not enforced, so tests can cache a few words.
"""

import re
from datetime import UTC, datetime, timedelta

from tests.fake_gemini import faults
from tests.fake_gemini.calls import ApiError, Call, list_owned, require_model, require_object, require_own_resources
from tests.fake_gemini.payloads import count_words, parts_text
from tests.fake_gemini.resources import CACHE_LIFETIME, parse_time, references, stamp
from tests.fake_gemini.script import bare_model

FILE_TOKENS = 258
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000
TTL = re.compile(r"^(?P<seconds>\d+)(?:\.(?P<fraction>\d{1,9}))?s$")
UPDATABLE = {"ttl": "ttl", "expireTime": "expireTime", "expire_time": "expireTime"}


def create(call: Call) -> dict:
    """POST /{v}/cachedContents: the new CachedContent (its contents are not echoed back)."""
    body = require_object(call.body)
    model = _model(call, body)
    if not isinstance(body.get("contents") or [], list):
        raise ApiError(faults.invalid_argument("CachedContent.contents must be a list of Content.",
                                               with_details=False))
    require_own_resources(call, body)
    fields = {"expireTime": stamp(_expiry(body, datetime.now(UTC)))}
    display = body.get("displayName") or body.get("display_name")
    if display:
        fields["displayName"] = display
    name = call.resources.fresh_name("cachedContents")
    call.resources.add_cached_content(call.key, model, name, token_count=cache_tokens(body), **fields)
    return call.resources.get(name)


def list_caches(call: Call) -> dict:
    """GET /{v}/cachedContents: one page of the calling key's cached contents."""
    return list_owned(call, "cachedContents", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def get_cache(call: Call) -> dict:
    """GET /{v}/cachedContents/{id}."""
    return _own_cache(call)


def patch_cache(call: Call) -> dict:
    """PATCH /{v}/cachedContents/{id}: a new `ttl` or `expireTime`, nothing else.

    The fields come from `updateMask` or, as google-genai sends no mask, from the body.
    """
    _own_cache(call)
    body = require_object(call.body)
    now = datetime.now(UTC)
    expiry = _patched_expiry(body, _mask(call, body), now)
    return call.resources.update(call.resource, updateTime=stamp(now), expireTime=stamp(expiry))


def delete_cache(call: Call) -> dict:
    """DELETE /{v}/cachedContents/{id}: answers `{}`."""
    _own_cache(call)
    call.resources.remove(call.resource)
    return {}


def cache_tokens(body: dict) -> int:
    """Words of every text in `contents` and the system instruction, plus 258 per file; at least 1."""
    contents = body.get("contents") or []
    system = body.get("systemInstruction") or body.get("system_instruction")
    texts = [parts_text(c) for c in contents if isinstance(c, dict)]
    texts.append(parts_text(system) if isinstance(system, dict) else "")
    files = references(body)[1]
    return max(1, sum(count_words(t) for t in texts) + FILE_TOKENS * len(files))


def parse_ttl(raw: object) -> timedelta:
    """A protobuf Duration ("300s", "1.5s") as a positive timedelta, or the 400 upstream sends."""
    m = TTL.match(raw.strip()) if isinstance(raw, str) else None
    if m:
        micros = int((m["fraction"] or "0").ljust(6, "0")[:6])
        ttl = timedelta(seconds=int(m["seconds"]), microseconds=micros)
        if ttl:
            return ttl
    raise ApiError(faults.invalid_argument(
        f"Invalid value at 'cached_content.ttl' (type.googleapis.com/google.protobuf.Duration), {raw!r}"))


def _model(call: Call, body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ApiError(faults.invalid_argument("CachedContent.model is required.", with_details=False))
    require_model(call, "createCachedContent", bare_model(model))
    return bare_model(model)


def _expiry(body: dict, now: datetime) -> datetime:
    """When a new cache expires: `ttl` from now, `expireTime`, or one hour from now."""
    ttl = body.get("ttl")
    expire = body.get("expireTime") or body.get("expire_time")
    if ttl is not None and expire is not None:
        raise ApiError(faults.invalid_argument("Only one of ttl and expire_time may be set.", with_details=False))
    if ttl is not None:
        return now + parse_ttl(ttl)
    return _expire_time(expire, now) if expire is not None else now + CACHE_LIFETIME


def _expire_time(raw: object, now: datetime) -> datetime:
    moment = parse_time(raw)
    if moment is None:
        raise ApiError(faults.invalid_argument(
            f"Invalid value at 'cached_content.expire_time' (type.googleapis.com/google.protobuf.Timestamp), "
            f"{raw!r}"))
    if moment <= now:
        raise ApiError(faults.invalid_argument("expire_time must be in the future.", with_details=False))
    return moment


def _mask(call: Call, body: dict) -> set[str]:
    """The fields a patch updates: `updateMask` if given, else the fields in the body."""
    raw = call.param("updateMask") or call.param("update_mask")
    names = [n.strip() for n in raw.split(",") if n.strip()] if raw else [n for n in body if n != "name"]
    refused = [n for n in names if n not in UPDATABLE]
    if refused or not names:
        what = refused[0] if refused else "nothing"
        raise ApiError(faults.invalid_argument(
            f"Cannot update {what}: only ttl and expire_time of a CachedContent can be updated.",
            with_details=False))
    return {UPDATABLE[n] for n in names}


def _patched_expiry(body: dict, fields: set[str], now: datetime) -> datetime:
    if fields == {"ttl", "expireTime"}:
        raise ApiError(faults.invalid_argument("Only one of ttl and expire_time may be set.", with_details=False))
    if "ttl" in fields:
        return now + parse_ttl(body.get("ttl"))
    return _expire_time(body.get("expireTime") or body.get("expire_time"), now)


def _own_cache(call: Call) -> dict:
    """The cached content in the path, or the 403 for one the calling key may not see."""
    resource = call.resources.get(call.resource) if call.resources.owns(call.key, call.resource) else None
    if resource is None:
        raise ApiError(faults.cached_content_denied())
    return resource


HANDLERS = {"cachedContents.create": create, "cachedContents.list": list_caches,
            "cachedContents.get": get_cache, "cachedContents.patch": patch_cache,
            "cachedContents.delete": delete_cache}

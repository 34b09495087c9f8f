"""Google's system parameters, honoured by every Google API in front of the method itself.

`alt` / `$alt` (json, sse; media and proto are refused here), `fields` / `$fields` /
`X-Goog-FieldMask` (a field mask on the JSON answer), `prettyPrint` / `$prettyPrint`
(compact JSON when "false") and `X-HTTP-Method-Override` (on a POST, the method routed on).
The others are only recorded. Credentials (`key`, `$key`, `X-Goog-Api-Key`, Authorization,
`access_token`) are system parameters too, but live in `credentials.py`.
"""

import re
from dataclasses import dataclass, field

from tests.fake_gemini import faults
from tests.fake_gemini.faults import Fault

QUERY_PARAMS = ("alt", "$alt", "fields", "$fields", "prettyPrint", "$prettyPrint", "callback",
                "$callback", "$ct", "$.xgafv", "$apiVersion", "quotaUser", "userProject",
                "$userProject", "$requestReason", "passwd", "password")
HEADER_PARAMS = ("x-goog-fieldmask", "x-http-method-override", "x-goog-user-project",
                 "x-goog-quota-user", "x-goog-request-reason", "x-server-timeout",
                 "x-goog-api-version")
ALTS = ("json", "sse")
ALL = True  # a mask node that keeps the whole subtree


@dataclass
class SystemParams:
    """The system parameters of one request, as upstream reads them.

    :param found: every system parameter present, as (where, name, value) with `where`
        "query" or "header" (header names lower-cased), in request order.
    :param alt: the response format, lower-cased and without `;enum-encoding=...`; None if absent.
    :param field_mask: the mask text that applies (`$fields`, then `fields`, then the header).
    :param pretty: False when `prettyPrint=false` asked for compact JSON.
    :param method_override: the `X-HTTP-Method-Override` a POST carried, upper-cased.
    """

    found: list[tuple[str, str, str]] = field(default_factory=list)
    alt: str | None = None
    field_mask: str | None = None
    pretty: bool = True
    method_override: str | None = None

    def fault(self) -> Fault | None:
        """The 400 for an `alt` this API does not answer in."""
        return faults.unsupported_alt() if self.alt is not None and self.alt not in ALTS else None

    def filter(self, payload: object) -> object:
        """`payload` with only the fields the mask selects (all of it without a mask)."""
        return apply_mask(payload, parse_mask(self.field_mask)) if self.field_mask else payload


def read(method: str, query: dict[str, list[str]], header_list: list[tuple[str, str]]) -> SystemParams:
    """The system parameters of a request (`header_list` names lower-cased)."""
    found = [("query", name, value) for name, values in query.items() if name in QUERY_PARAMS
             for value in values]
    found += [("header", name, value) for name, value in header_list if name in HEADER_PARAMS]
    headers = {name: value for name, value in header_list if name in HEADER_PARAMS}
    alt = _first(query, "$alt", "alt")
    pretty = _first(query, "$prettyPrint", "prettyPrint")
    override = headers.get("x-http-method-override", "").strip().upper()
    return SystemParams(
        found=found,
        alt=alt.split(";")[0].strip().lower() if alt is not None else None,
        field_mask=_first(query, "$fields", "fields") or headers.get("x-goog-fieldmask") or None,
        pretty=pretty is None or pretty.strip().lower() not in ("false", "0"),
        method_override=override if method == "POST" and override else None)


def parse_mask(text: str) -> dict:
    """A field mask as a tree: name → subtree, or ALL for the whole field.

    Paths are comma-separated; sub-fields follow "." or "/" (`candidates.content`,
    `candidates/content`) or sit in parentheses (`candidates(content,finishReason)`);
    "*" selects every field. Names match in camelCase or snake_case.
    """
    tree: dict = {}
    for path in _split(text):
        _merge(tree, _path_tree(path))
    return tree


def apply_mask(value: object, tree: dict | bool) -> object:
    """Keep only what `tree` selects; a mask on a repeated field applies to every element."""
    if tree is ALL:
        return value
    if isinstance(value, list):
        return [apply_mask(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    kept = {}
    for name, item in value.items():
        sub = tree.get(camel(name), tree.get("*"))
        if sub is not None:
            kept[name] = apply_mask(item, sub)
    return kept


def camel(name: str) -> str:
    """`usage_metadata` → `usageMetadata`; camelCase names stay as they are."""
    return re.sub(r"_([a-z0-9])", lambda m: m[1].upper(), name)


def _first(query: dict[str, list[str]], *names: str) -> str | None:
    for name in names:
        if query.get(name):
            return query[name][0]
    return None


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _path_tree(path: str) -> dict:
    m = re.match(r"([^./(]+)(.*)$", path)
    if not m:
        return {}
    head, rest = camel(m[1].strip()), m[2].strip()
    if rest[:1] in (".", "/") and rest[1:]:
        return {head: _path_tree(rest[1:])}
    if rest.startswith("(") and rest.endswith(")"):
        return {head: parse_mask(rest[1:-1])}
    return {head: ALL}


def _merge(tree: dict, other: dict) -> None:
    for name, sub in other.items():
        if name not in tree:
            tree[name] = sub
        elif tree[name] is ALL or sub is ALL:
            tree[name] = ALL
        else:
            _merge(tree[name], sub)

"""Tools of a hostile client: bytes on the wire exactly as written, and the oracles every attempt is judged by.

`send` writes the request target as given (http.client does not normalise dot-segments or
percent-escapes, unlike `requests`); `send_bytes` writes a whole request verbatim on a raw
socket, for what http.client refuses to write (non-ASCII request lines, conflicting
framing headers). Every answer is read into an `Answer`.

The oracles: `assert_dialect` (Google envelope, OpenAI object, or the JSON API's own),
`assert_no_upstream_call`, `assert_clean_upstream_call` (path, query, headers from the
allow-list, exactly one credential and it is a pool key, no Vault key anywhere),
`pool_health` (compared before and after) and `assert_no_secret_in` (no upstream key
reaches a client).
"""

import http.client
import json
import socket
from dataclasses import dataclass

from tests.e2e.stacks import ProxyStack

MODEL = "gemini-2.5-flash"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi"}]}
EMBED = {"model": "gemini-embedding-001", "input": ["hello"]}
NATIVE_EMBED = {"content": {"parts": [{"text": "hello"}]}}
# What a clean upstream request may carry, besides its one credential header.
ALLOWED_UPSTREAM_HEADERS = {"host", "content-length", "content-type", "user-agent", "x-goog-api-client",
                            "accept-encoding", "accept", "connection"}
# The health of a pooled key as the admin sees it; request counts and last use may move.
HEALTH_FIELDS = ("state", "consecutive_failures", "failure_count", "disabled_reason", "disabled_until",
                 "last_error", "last_error_at")
TIMEOUT = 10


@dataclass
class Answer:
    """One response as it came off the socket."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def json(self):
        return json.loads(self.body)

    def text(self) -> str:
        return json.dumps(self.headers) + self.body.decode("utf-8", "replace")


def host_of(stack: ProxyStack) -> str:
    return stack.base_url.removeprefix("http://")


def send(stack: ProxyStack, method: str, target: str, headers=(), body: bytes | dict | None = None, *,
         skip_host: bool = False, timeout: float = TIMEOUT) -> Answer:
    """`method target` with exactly these headers (plus Host unless `skip_host`, and Content-Length)."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    headers = list(headers.items()) if isinstance(headers, dict) else list(headers)
    connection = http.client.HTTPConnection(host_of(stack), timeout=timeout)
    try:
        connection.putrequest(method, target, skip_host=skip_host, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Answer(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def send_bytes(stack: ProxyStack, raw: bytes, method: str = "POST", timeout: float = TIMEOUT) -> Answer:
    """Write `raw` as it is and read one response."""
    with socket.create_connection(address_of(stack), timeout=timeout) as sock:
        sock.sendall(raw)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return Answer(response.status, response.getheaders(), response.read())


def address_of(stack: ProxyStack) -> tuple[str, int]:
    host, port = host_of(stack).split(":")
    return host, int(port)


def read_until_closed(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """Everything the server sends until it closes; `socket.timeout` if it never does."""
    data = b""
    while len(data) < limit:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            if data:
                return data  # closed with a reset after answering: still closed
            raise
        if not piece:
            return data
        data += piece
    raise AssertionError("the server kept sending")


def parse_response(raw: bytes) -> Answer:
    """An HTTP/1.1 response (as read off a socket) as an `Answer`; the body de-chunked."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
    answer = Answer(status, headers, rest)
    if "chunked" in (answer.header("Transfer-Encoding") or "").lower():
        body, data = b"", rest
        while data:
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if not size:
                break
            body, data = body + data[:size], data[size + 2:]
        answer.body = body
    return answer


# --- callers -----------------------------------------------------------------------------------

def native_auth(stack: ProxyStack, json_body: bool = True) -> list[tuple[str, str]]:
    headers = [("x-goog-api-key", stack.vault_key)]
    return headers + [("Content-Type", "application/json")] if json_body else headers


def bearer_auth(stack: ProxyStack, json_body: bool = True) -> list[tuple[str, str]]:
    headers = [("Authorization", f"Bearer {stack.vault_key}")]
    return headers + [("Content-Type", "application/json")] if json_body else headers


def auth_for(stack: ProxyStack, dialect: str, json_body: bool = True) -> list[tuple[str, str]]:
    return bearer_auth(stack, json_body) if dialect == "openai" else native_auth(stack, json_body)


# --- oracles -----------------------------------------------------------------------------------

def dialect_of(answer: Answer) -> str:
    """"google", "openai" or "api": which envelope the error body is in (AssertionError if none)."""
    assert (answer.header("Content-Type") or "").startswith("application/json"), answer
    payload = answer.json()
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    error = payload["error"]
    if isinstance(error.get("code"), int) and "status" in error:
        return "google"
    if "type" in error and "param" in error:
        return "openai"
    if isinstance(error.get("code"), str) and "message" in error:
        return "api"
    raise AssertionError(f"an error body in no known dialect: {payload}")


def assert_dialect(answer: Answer, status: int | tuple[int, ...], dialect: str) -> dict:
    """The answer has `status` (one of them) and an error body in `dialect`; returns the error object."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert answer.status in statuses, f"wanted {statuses}, got {answer.status}: {answer.body[:300]!r}"
    if dialect == "head":  # a HEAD answer has no body to carry a dialect
        assert answer.body == b"" and (answer.header("Content-Type") or "").startswith("application/json")
        return {}
    error = answer.json()["error"]
    assert dialect_of(answer) == dialect, f"wanted the {dialect} envelope: {answer.body[:300]!r}"
    assert isinstance(error["message"], str) and error["message"]
    if dialect == "google":
        assert error["code"] == answer.status and isinstance(error["status"], str)
        assert set(error) <= {"code", "message", "status", "details"}
    elif dialect == "openai":
        assert isinstance(error["type"], str) and "status" not in error
        assert set(error) <= {"message", "type", "code", "param"}
    else:
        assert set(error) <= {"code", "message", "fields"}
    return error


def assert_no_upstream_call(stack: ProxyStack) -> None:
    calls = stack.fake.calls
    assert calls == [], [(c.method, c.request_target) for c in calls]


def pool_health(stack: ProxyStack) -> dict[int, dict]:
    """Each pooled key's health (state, streaks, errors, cooldowns) by id."""
    return {
        key["id"]: {field: key[field] for field in HEALTH_FIELDS}
        | {"cooldowns": sorted((c["model"], c["until"]) for c in key["cooldowns"])}
        for key in stack.pool()
    }


def disabled_ids(stack: ProxyStack) -> set[int]:
    return {key["id"] for key in stack.pool() if key["state"] == "disabled"}


def assert_no_secret_in(stack: ProxyStack, *texts: str) -> None:
    """No upstream key, nor its hidden middle, in anything a client or log got."""
    everything = "\n".join(texts)
    for secret in stack.upstream_keys:
        for part in (secret, secret[4:-4]):
            at = everything.find(part)
            assert at < 0, f"an upstream key leaked: ...{everything[max(0, at - 80):at].replace(part, '<key>')}<key>..."


def vault_key_reached(stack: ProxyStack, record) -> bool:
    carried = (record.request_target + json.dumps(record.raw_headers)
               + record.raw_body.decode("utf-8", "replace") + json.dumps(record.credentials))
    return stack.vault_key in carried or stack.vault_key[-12:] in carried


def assert_clean_upstream_call(stack: ProxyStack, record, path: str, *, dialect: str = "google",
                               query: dict | None = None, method: str | None = None) -> None:
    """The one call the fake got: `path` and `query` exactly, allow-listed headers, one pooled key."""
    assert record.raw_path == path and record.path == path, record.request_target
    assert record.query == (query or {}), record.query_string
    if method:
        assert record.method == method and record.routed_method == method
    names = [name.lower() for name, _ in record.raw_headers]
    assert len(names) == len(set(names)), f"a header repeated upstream: {record.raw_headers}"
    credential_header = "authorization" if dialect == "openai" else "x-goog-api-key"
    assert credential_header in names, record.raw_headers
    assert set(names) <= ALLOWED_UPSTREAM_HEADERS | {credential_header}, \
        f"not on the allow-list: {set(names) - ALLOWED_UPSTREAM_HEADERS - {credential_header}}"
    source = "bearer" if dialect == "openai" else "header"
    assert len(record.credentials) == 1, record.credentials
    assert record.credentials[0][0] == source and record.credentials[0][1] in stack.upstream_keys
    assert record.key == record.credentials[0][1]
    wanted_alt = (query or {}).get("alt", [None])[0]
    assert record.alt == wanted_alt and record.field_mask is None and record.method_override is None
    assert record.pretty_print is True
    assert record.system_params == ([("query", "alt", wanted_alt)] if wanted_alt else [])
    assert not vault_key_reached(stack, record), "the Vault key reached the upstream"


def only_call(stack: ProxyStack):
    calls = stack.fake.calls
    assert len(calls) == 1, [(c.method, c.request_target, c.status) for c in calls]
    return calls[0]

"""The HTTP handler: record the call, route it, check the key, apply the script, answer.

Order as upstream: route (on the `X-HTTP-Method-Override` of a POST, if any), then the
credentials (none → 403, an OAuth one → 401, any bad key → 400 API_KEY_INVALID; upload
session URLs take none), then the `alt` system parameter, then scripted actions, then body
validation, then the answer, cut down by any field mask and compact under `prettyPrint=false`.

Bodies are read before routing, except on an upload session URL, where the endpoint streams
the body itself; upload paths buffer at most `files.MULTIPART_LIMIT` bytes. Whatever is left
unread when the answer is out is drained, so keep-alive connections stay in step.
"""

import json
import traceback
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fake_gemini import (
    caches,
    credentials,
    faults,
    files,
    native,
    openai_compat,
    sysparams,
    uploads,
)
from tests.fake_gemini.body import BodyReader
from tests.fake_gemini.calls import Answer, ApiError, Call, Headers, Stream
from tests.fake_gemini.faults import Fault
from tests.fake_gemini.log import BODY_KEEP, RecordedRequest
from tests.fake_gemini.routes import RAW_BODY_ENDPOINTS, SESSION_ENDPOINTS, is_upload_session, route
from tests.fake_gemini.script import Hang, Redirect, Reply, Reset, bare_model
from tests.fake_gemini.wire import CONTENT_TYPES, ClientGone, Wire, error_frame, frame, trailer

NATIVE_HANDLERS = native.HANDLERS | uploads.HANDLERS | files.HANDLERS | caches.HANDLERS
RESOURCE_PREFIXES = ("files.", "cachedContents.")
EMPTY_TYPE = "text/plain; charset=utf-8"
POLL = 0.02
NOT_FOUND_HTML = ("<!DOCTYPE html>\n<html lang=en><title>Error 404 (Not Found)!!1</title>"
                  "<p><b>404.</b> <ins>That's an error.</ins><p>The requested URL <code>{path}"
                  "</code> was not found on this server. <ins>That's all we know.</ins>")


class Handler(BaseHTTPRequestHandler):
    """Serves one connection of the fake; `self.server.fake` is the owning FakeGemini."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle's algorithm meets the
    # client's delayed ACK and every answer waits ~40 ms.
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        """The Server header upstream sends."""
        return "scaffolding on HTTPServer2"

    def log_message(self, format: str, *args) -> None:
        """Stay quiet: the request log is the record."""

    def do_GET(self) -> None:
        """Answer a GET."""
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        fake = self.server.fake
        self.wire = Wire(self, fake.gzip)
        rec = self._record()
        try:
            self._serve(fake, rec)
        except ClientGone:
            self.close_connection = True
            fake._note_disconnect(rec)
        except Exception:
            self._crash(fake, rec)
        finally:
            # Unread body bytes would be taken for the next request, or reset the connection
            # under the answer when it closes.
            self.body.drain()
            rec.finish("ok")

    def _crash(self, fake, rec: RecordedRequest) -> None:
        """A bug in the fake: keep the traceback for the test, answer 500 if still possible."""
        fake.server_errors.append(traceback.format_exc())
        self.close_connection = True
        if not self.wire.started:
            try:
                self._fault(rec, faults.internal())
            except ClientGone:
                pass

    def _record(self) -> RecordedRequest:
        url = urlsplit(self.path)
        raw_headers = list(self.headers.items())
        pairs = [(k.lower(), v) for k, v in raw_headers]
        merged: dict[str, str] = {}
        for k, v in pairs:
            merged[k] = f"{merged[k]}, {v}" if k in merged else v
        query = parse_qs(url.query, keep_blank_values=True)
        path = unquote(url.path)
        self.body = BodyReader(self.rfile, self.headers)
        self.payload = self._buffer(path, query)
        kept = self.payload[:BODY_KEEP] if path.startswith("/upload/") else self.payload
        rec = RecordedRequest(self.command, path, url.query, query, merged, pairs, kept,
                              raw_path=url.path, request_target=self.path, raw_headers=raw_headers,
                              body_bytes=len(self.payload))
        self.body.on_piece = rec.note_body
        rec.credentials = credentials.collect(pairs, query)
        self.params = sysparams.read(self.command, query, pairs)
        rec.system_params, rec.alt = self.params.found, self.params.alt
        rec.field_mask, rec.pretty_print = self.params.field_mask, self.params.pretty
        rec.method_override = self.params.method_override
        rec.routed_method = self.params.method_override or self.command
        self.server.fake._log.append(rec)
        return rec

    def _buffer(self, path: str, query: dict[str, list[str]]) -> bytes:
        """The body read up front: none for an upload session (it streams), capped on upload paths."""
        if is_upload_session(path, query):
            return b""
        return self.body.read_upto(files.MULTIPART_LIMIT + 1 if path.startswith("/upload/") else None)

    def _serve(self, fake, rec: RecordedRequest) -> None:
        found = route(rec.routed_method, rec.path, rec.query, rec.headers)
        if found is None:
            rec.status = 404
            html = NOT_FOUND_HTML.format(path=rec.path).encode()
            return self.wire.body(404, html, "text/html; charset=UTF-8")
        rec.dialect, rec.endpoint, rec.version, rec.model, rec.resource = found
        key, rec.key_source, fault = _authenticate(fake, rec)
        rec.key = key
        fault = fault or self.params.fault()
        if fault:
            return self._fault(rec, fault)
        body, bad_json = _parse(rec, self.payload)
        rec.model = bare_model(rec.model or _body_model(body))
        action = fake._script.take(key, rec.model, rec.endpoint)
        self._answer(fake, rec, action, body, bad_json)

    def _answer(self, fake, rec: RecordedRequest, action, body, bad_json: Fault | None) -> None:
        reply = action if isinstance(action, Reply) else fake.default_reply
        if self._pause(fake, fake.latency + reply.delay):
            return rec.finish("stopped")
        if isinstance(action, Fault):
            return self._fault(rec, action)
        if isinstance(action, Redirect):
            return self._redirect(rec, action)
        if isinstance(action, Reset):
            if action.rst:
                self.wire.reset()
            else:
                self.wire.abort()
            return rec.finish("reset")
        if isinstance(action, Hang) and not self._hold(fake, rec, action):
            return
        if bad_json:
            return self._fault(rec, bad_json)
        self._result(fake, rec, reply, body)

    def _result(self, fake, rec: RecordedRequest, reply: Reply, body) -> None:
        handlers = NATIVE_HANDLERS if rec.dialect == "native" else openai_compat.HANDLERS
        call = Call(rec.endpoint, rec.version, rec.model, body, rec.query, reply,
                    fake._next_response_id(), fake.catalog, fake.embedding_dim,
                    key=rec.key, resources=fake.resources, alt=rec.alt, resource=rec.resource,
                    headers=rec.headers, payload=self.payload, body_reader=self.body,
                    uploads=fake.uploads, base_url=fake.base_url)
        try:
            result = handlers[rec.endpoint](call)
        except ApiError as exc:
            return self._fault(rec, exc.fault, exc.headers)
        if isinstance(result, Answer):
            return self._send_answer(rec, result)
        result = self._masked(result if reply.report_usage else _without_usage(result))
        rec.status = 200
        rec.usage = None if rec.endpoint.startswith(RESOURCE_PREFIXES) else reported_usage(result)
        if isinstance(result, Stream):
            rec.streamed = True
            return self._stream(fake, rec, result, reply)
        self.wire.json(200, result, rec.pretty_print)

    def _masked(self, result: dict | Stream) -> dict | Stream:
        """The answer cut down to the request's field mask (each event of a stream)."""
        if isinstance(result, Stream):
            return Stream([self.params.filter(e) for e in result.events], result.framing)
        return self.params.filter(result)

    def _send_answer(self, rec: RecordedRequest, answer: Answer) -> None:
        """A 200 with the upload protocol's headers: JSON, or an empty body."""
        rec.status = 200
        if answer.payload is None:
            return self.wire.body(200, b"", EMPTY_TYPE, extra=answer.headers)
        self.wire.json(200, self.params.filter(answer.payload), rec.pretty_print, extra=answer.headers)

    def _fault(self, rec: RecordedRequest, fault: Fault, extra: Headers = ()) -> None:
        rec.status = fault.status
        body = fault.body(rec.dialect or "native", pretty=rec.pretty_print)
        self.wire.body(fault.status, body, fault.content_type, extra=extra)
        rec.finish("fault" if fault.status != 200 else "ok")

    def _redirect(self, rec: RecordedRequest, redirect: Redirect) -> None:
        rec.status = redirect.status
        self.wire.body(redirect.status, redirect.body(), "text/html; charset=UTF-8",
                       extra=(("Location", redirect.location),))
        rec.finish("redirect")

    def _stream(self, fake, rec: RecordedRequest, stream: Stream, reply: Reply) -> None:
        """Write events one chunk each, honouring the reply's gate, death and error points."""
        self.wire.head(200, CONTENT_TYPES[stream.framing])
        for i in range(len(stream.events) + 1):
            special = i in (reply.die_after, reply.error_after)
            if i == len(stream.events) and not special:
                break
            if i and not self._between_chunks(fake, rec, reply):
                return
            if i == reply.die_after:
                self.wire.abort()
                return rec.finish("died")
            if i == reply.error_after:
                self.wire.chunk(error_frame(reply.error.event(), stream.framing, i))
                self.wire.end()
                return rec.finish("error-event")
            self._send_event(rec, reply, frame(stream.events[i], stream.framing, i, rec.pretty_print))
        self.wire.chunk(trailer(stream.framing, len(stream.events)))
        self.wire.end()

    def _send_event(self, rec: RecordedRequest, reply: Reply, data: bytes) -> None:
        self.wire.chunk(data)
        rec.chunks_sent += 1
        if reply.gate:
            reply.gate.mark_sent()

    def _between_chunks(self, fake, rec: RecordedRequest, reply: Reply) -> bool:
        """Gate and delay before the next chunk; False when the call ended meanwhile."""
        if reply.gate and not self._wait(fake, rec, lambda: reply.gate.pass_once(POLL)):
            return False
        if self._pause(fake, reply.chunk_delay):
            rec.finish("stopped")
            return False
        if self.wire.peer_closed():
            raise ClientGone()
        return True

    def _hold(self, fake, rec: RecordedRequest, hang: Hang) -> bool:
        """Hold a hung call; True once released, False if stopped or the client left."""
        hang.started.set()
        return self._wait(fake, rec, lambda: hang.released.wait(POLL))

    def _wait(self, fake, rec: RecordedRequest, step) -> bool:
        """Run `step` until it returns True, watching for stop and client disconnect."""
        while not step():
            if fake._stopping.is_set():
                self.close_connection = True
                rec.finish("stopped")
                return False
            if self.wire.peer_closed():
                self.close_connection = True
                fake._note_disconnect(rec)
                return False
        return True

    def _pause(self, fake, seconds: float) -> bool:
        """Sleep unless the server stops first; True if it stopped."""
        return bool(seconds) and fake._stopping.wait(seconds)


def _authenticate(fake, rec: RecordedRequest) -> tuple[str | None, str | None, Fault | None]:
    """(key, its source, fault) as `credentials.authenticate`; upload session URLs need no key."""
    if rec.endpoint in SESSION_ENDPOINTS:
        return None, None, None
    return credentials.authenticate(rec.credentials, rec.dialect, fake.key_valid)


def _parse(rec: RecordedRequest, payload: bytes) -> tuple[object, Fault | None]:
    """The JSON body (GETs, empty and non-JSON upload bodies give {}) and the 400 for a malformed one."""
    if rec.routed_method == "GET" or rec.endpoint in RAW_BODY_ENDPOINTS or not payload.strip():
        return {}, None
    try:
        rec.json = json.loads(payload)
        return rec.json, None
    except ValueError:
        return None, faults.invalid_argument("Invalid JSON payload received. Unexpected token.")


def _without_usage(result: dict | Stream) -> dict | Stream:
    """The answer with no usage reported anywhere (`Reply(report_usage=False)`)."""
    def strip(payload: dict) -> dict:
        return {k: v for k, v in payload.items() if k not in ("usageMetadata", "usage")}

    if isinstance(result, Stream):
        return Stream([strip(e) for e in result.events], result.framing)
    return strip(result)


def _body_model(body: object) -> str | None:
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


def reported_usage(result: dict | Stream) -> dict | None:
    """The final usage an answer reports (native `usageMetadata` or OpenAI `usage`), if any."""
    payloads = result.events if isinstance(result, Stream) else [result]
    for payload in reversed(payloads):
        usage = payload.get("usageMetadata") or payload.get("usage")
        if usage:
            return usage
    return None

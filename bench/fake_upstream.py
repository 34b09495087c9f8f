r"""A fast fake Gemini upstream for the benchmark: raw HTTP/1.1 on asyncio, in a process of its own.

Never the bottleneck: answers are prebuilt bytes, requests are parsed by hand and keep-alive
connections are reused, so one core serves tens of thousands of calls a second. It speaks
Gemini's wire format (see the protocol reference, sections 1 and 4):

  POST …/models/{model}:generateContent               JSON: candidates + usageMetadata
  POST …/models/{model}:streamGenerateContent?alt=sse  SSE `data: {…}\r\n\r\n` × --chunks,
       --delay-ms apart, each with the running usageMetadata; the last one has finishReason
       and the final totals (without alt=sse: one JSON array written piece by piece)
  POST …/openai/chat/completions                      OpenAI shape; `"stream": true` gives SSE
       chunks, a final usage chunk and `data: [DONE]`
  GET  …/models, …/models/{model}                     the model list, with token limits
  GET  /healthz                                       "ok"

Any path prefix is accepted (/v1beta, /v1). Chunk texts are `tok0 `, `tok1 `, … so a client
can check that a stream arrived whole and in order. Binds 127.0.0.1 on --port (0: any free
port) and prints `fake upstream listening on http://127.0.0.1:PORT` once it accepts.

    python -m bench.fake_upstream [--port 0] [--chunks 20] [--delay-ms 50]
"""

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import time

MODELS = ("gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro")
TEXT = ("The quick brown fox jumps over the lazy dog. " * 4)[:120]
MODEL_IN_PATH = re.compile(rb"/models/([^/:?]+)")
STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def gemini_answer(model: str) -> bytes:
    """A whole generateContent answer."""
    return dumps({
        "candidates": [{"content": {"parts": [{"text": TEXT}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 28, "totalTokenCount": 36,
                          "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]},
        "modelVersion": model, "responseId": "fake-response-0001",
    })


def gemini_chunk(model: str, index: int, count: int) -> bytes:
    """One streamGenerateContent chunk; usage is cumulative, the last chunk finishes."""
    candidate = {"content": {"parts": [{"text": f"tok{index} "}], "role": "model"}, "index": 0}
    if index == count - 1:
        candidate["finishReason"] = "STOP"
    usage = {"promptTokenCount": 8, "candidatesTokenCount": index + 1, "totalTokenCount": 9 + index}
    return dumps({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
                  "responseId": "fake-stream-0001"})


def openai_answer(model: str) -> bytes:
    """A whole chat.completion."""
    return dumps({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 28, "total_tokens": 36},
    })


def openai_chunk(model: str, index: int, count: int) -> bytes:
    """One chat.completion.chunk; index == count is the usage chunk (no choices)."""
    head = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model}
    if index == count:
        return dumps(head | {"choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": count,
                                                      "total_tokens": 8 + count}})
    delta = {"role": "assistant", "content": f"tok{index} "} if index == 0 else {"content": f"tok{index} "}
    finish = "stop" if index == count - 1 else None
    return dumps(head | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def model_entry(model: str) -> dict:
    return {"name": f"models/{model}", "version": "001", "displayName": model, "inputTokenLimit": 1048576,
            "outputTokenLimit": 8192, "supportedGenerationMethods": ["generateContent", "countTokens"]}


def response(status: bytes, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (status, content_type, len(body), body)


def sse_event(payload: bytes, newline: bytes) -> bytes:
    """One SSE event as one HTTP chunk."""
    event = b"data: " + payload + newline + newline
    return b"%x\r\n%s\r\n" % (len(event), event)


class Answers:
    """Prebuilt byte answers, so a call costs a dictionary lookup."""

    def __init__(self):
        self._cache: dict[tuple[str, str], bytes] = {}

    def get(self, kind: str, model: str) -> bytes:
        key = (kind, model)
        if key not in self._cache:
            self._cache[key] = self._build(kind, model)
        return self._cache[key]

    @staticmethod
    def _build(kind: str, model: str) -> bytes:
        if kind == "gemini":
            return response(b"200 OK", gemini_answer(model))
        if kind == "openai":
            return response(b"200 OK", openai_answer(model))
        if kind == "list":
            return response(b"200 OK", dumps({"models": [model_entry(name) for name in MODELS]}))
        if kind == "openai-list":
            data = [{"id": f"models/{name}", "object": "model", "created": 0, "owned_by": "google"} for name in MODELS]
            return response(b"200 OK", dumps({"object": "list", "data": data}))
        if kind == "model":
            return response(b"200 OK", dumps(model_entry(model)))
        if kind == "health":
            return response(b"200 OK", b"ok", b"text/plain")
        return response(b"404 Not Found", b'{"error":{"code":404,"message":"not found","status":"NOT_FOUND"}}')


def parse_request(buffer: bytearray) -> tuple[bytes, bytes, bytes, bool] | None:
    """(method, target, body, close) of the first whole request in `buffer`, removed from it."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).split(b"\r\n")
    method, target, version = lines[0].split(b" ", 2)
    length, chunked, close = 0, False, version == b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    parsed = dechunk(buffer, end + 4) if chunked else sized(buffer, end + 4, length)
    if parsed is None:
        return None
    body, consumed = parsed
    del buffer[:consumed]
    return method, target, body, close


def sized(buffer: bytearray, start: int, length: int) -> tuple[bytes, int] | None:
    if len(buffer) < start + length:
        return None
    return bytes(buffer[start:start + length]), start + length


def dechunk(buffer: bytearray, position: int) -> tuple[bytes, int] | None:
    """A chunked request body (trailers skipped), or None while it is still arriving."""
    body = bytearray()
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            return (bytes(body), trailer_end + 4) if trailer_end >= 0 else None
        if len(buffer) < line_end + 4 + size:
            return None
        body += buffer[line_end + 2:line_end + 2 + size]
        position = line_end + 4 + size


class Upstream(asyncio.Protocol):
    """One client connection: requests in order, keep-alive, streams written as timed tasks."""

    def __init__(self, answers: Answers, chunks: int, delay: float):
        self.answers, self.chunks, self.delay = answers, chunks, delay
        self.buffer = bytearray()
        self.busy = self.closed = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.serve_buffered()

    def serve_buffered(self) -> None:
        while not (self.busy or self.closed):
            try:
                request = parse_request(self.buffer)
            except ValueError:
                self.finish(response(b"400 Bad Request", b"{}"), close=True)
                return
            if request is None:
                return
            self.route(*request)

    def route(self, method: bytes, target: bytes, body: bytes, close: bool) -> None:
        path, _, query = target.partition(b"?")
        match = MODEL_IN_PATH.search(path)
        model = match.group(1).decode() if match else "gemini-2.0-flash"
        if method == b"POST" and path.endswith(b":streamGenerateContent"):
            self.stream("gemini-sse" if b"alt=sse" in query else "gemini-array", model, close)
        elif method == b"POST" and path.endswith(b":generateContent"):
            self.finish(self.answers.get("gemini", model), close)
        elif method == b"POST" and path.endswith(b"/chat/completions"):
            self.chat(body, close)
        else:
            self.finish(self.answers.get(get_kind(method, path), model), close)

    def chat(self, body: bytes, close: bool) -> None:
        try:
            model = json.loads(body).get("model") or "gemini-2.0-flash"
        except (ValueError, AttributeError):
            model = "gemini-2.0-flash"
        if STREAM_TRUE.search(body):
            self.stream("openai", model, close)
        else:
            self.finish(self.answers.get("openai", model), close)

    def finish(self, data: bytes, close: bool) -> None:
        self.transport.write(data)
        if close:
            self.transport.close()
            self.closed = True

    def stream(self, kind: str, model: str, close: bool) -> None:
        self.busy = True
        asyncio.ensure_future(self.write_stream(kind, model, close))

    async def write_stream(self, kind: str, model: str, close: bool) -> None:
        content_type = b"application/json" if kind == "gemini-array" else b"text/event-stream"
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n" % content_type)
        for index in range(self.chunks):
            if index and self.delay:
                await asyncio.sleep(self.delay)
            if self.closed:
                return
            self.transport.write(stream_piece(kind, model, index, self.chunks))
        if kind == "openai":
            self.transport.write(sse_event(openai_chunk(model, self.chunks, self.chunks), b"\n"))
            self.transport.write(sse_event(b"[DONE]", b"\n"))
        self.busy = False
        self.finish(b"0\r\n\r\n", close)
        self.serve_buffered()


def get_kind(method: bytes, path: bytes) -> str:
    """Which prebuilt answer a GET (or an unknown call) gets."""
    if method != b"GET":
        return "missing"
    if path == b"/healthz":
        return "health"
    if path.endswith(b"/openai/models"):
        return "openai-list"
    if path.endswith(b"/models"):
        return "list"
    return "model" if b"/models/" in path else "missing"


def stream_piece(kind: str, model: str, index: int, count: int) -> bytes:
    """The HTTP chunk carrying stream event `index` of `count`."""
    if kind == "gemini-sse":
        return sse_event(gemini_chunk(model, index, count), b"\r\n")
    if kind == "openai":
        return sse_event(openai_chunk(model, index, count), b"\n")
    opening, closing = b"[" if index == 0 else b",\r\n", b"]" if index == count - 1 else b""
    piece = opening + gemini_chunk(model, index, count) + closing
    return b"%x\r\n%s\r\n" % (len(piece), piece)


async def serve(port: int, chunks: int, delay: float) -> None:
    """Serve on 127.0.0.1:`port` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    answers = Answers()
    server = await loop.create_server(lambda: Upstream(answers, chunks, delay), "127.0.0.1", port, backlog=8192)
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"fake upstream listening on http://127.0.0.1:{bound} (pid {os.getpid()}, {chunks} chunks "
          f"{delay * 1000:g} ms apart)", flush=True)
    await stopped.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=int(os.environ.get("MOCK_STREAM_CHUNKS", "20")))
    parser.add_argument("--delay-ms", type=float, default=float(os.environ.get("MOCK_STREAM_DELAY_MS", "50")))
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.chunks, args.delay_ms / 1000))


if __name__ == "__main__":
    main()

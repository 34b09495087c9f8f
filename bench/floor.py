"""The stack's floor: the least a Flask + gunicorn/gevent + requests gateway does per call.

Not the product. It checks the client key, picks an upstream key round-robin, forwards with a
pooled `requests` session and relays the answer (streams chunk by chunk), with no database.
The harness runs it beside the Vault in the same run, so the Vault's figures read as
multiples of what the stack itself costs. Started from bench/ with an empty config, so
gunicorn does not pick up the project's gunicorn.conf.py:

    gunicorn -c /dev/null -k gevent -w 1 -b 127.0.0.1:0 'floor:create_app()'

Environment: FLOOR_UPSTREAM (the fake's base URL), FLOOR_CLIENT_KEY (the key callers send).
"""

import itertools
import os

import requests
from flask import Flask, Response, request, stream_with_context
from requests.adapters import HTTPAdapter


def client_key() -> str | None:
    """The caller's key: `x-goog-api-key`, `?key=` or `Authorization: Bearer`."""
    auth = request.headers.get("Authorization", "")
    bearer = auth[7:] if auth.startswith("Bearer ") else None
    return request.headers.get("x-goog-api-key") or request.args.get("key") or bearer


def create_app() -> Flask:
    """The pass-through app, with its upstream session and key rotation."""
    app = Flask(__name__)
    upstream = os.environ.get("FLOOR_UPSTREAM", "http://127.0.0.1:8080").rstrip("/")
    accepted = os.environ.get("FLOOR_CLIENT_KEY", "bench-client-key")
    upstream_keys = itertools.cycle(["floor-upstream-key-1", "floor-upstream-key-2"])
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=1000))

    @app.get("/v1beta/models")
    def list_models():
        answer = session.get(upstream + "/v1beta/models", headers={"x-goog-api-key": next(upstream_keys)}, timeout=30)
        return Response(answer.content, answer.status_code, content_type="application/json")

    @app.post("/v1beta/models/<model>:<action>")
    def generate(model: str, action: str):
        if client_key() != accepted:
            return {"error": {"code": 401, "message": "API key not valid", "status": "UNAUTHENTICATED"}}, 401
        query = [(name, value) for name, value in request.args.items(multi=True) if name != "key"]
        answer = session.post(f"{upstream}/v1beta/models/{model}:{action}", params=query, data=request.get_data(),
                              headers={"x-goog-api-key": next(upstream_keys), "Content-Type": "application/json"},
                              stream=True, timeout=(5, 120))
        content_type = answer.headers.get("Content-Type", "application/json")
        if action != "streamGenerateContent":
            return Response(answer.content, answer.status_code, content_type=content_type)

        def relay():
            with answer:
                yield from answer.iter_content(chunk_size=None)

        return Response(stream_with_context(relay()), answer.status_code, content_type=content_type,
                        headers={"Cache-Control": "no-cache"})

    return app

# syntax=docker/dockerfile:1
# Gemini-Vault: gunicorn + gevent serving wsgi:app on port 8000 as an unprivileged user.
#
#   docker build -t gemini-vault .
#   docker run --env-file .env -p 8000:8000 -v vault-data:/data gemini-vault
#
# The default command empties the metrics folder, applies migrations, then serves. Any
# other command runs instead, with the same environment, for example
#   docker run --env-file .env gemini-vault flask --app wsgi db upgrade
#   docker run -it --env-file .env gemini-vault flask --app wsgi create-admin --email you@example.com
# tests/deploy/ lints this file and replays its install steps and its CMD without Docker.

FROM python:3.11-slim AS builder

ENV VIRTUAL_ENV=/opt/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
ENV PATH="$VIRTUAL_ENV/bin:$PATH"
WORKDIR /build
RUN python -m venv "$VIRTUAL_ENV"
COPY requirements.txt ./
# A cache mount keeps downloaded wheels on the build host and out of every layer.
RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt

FROM python:3.11-slim

# The venv keeps its builder path: its scripts name /opt/venv/bin/python in their shebangs.
ENV VIRTUAL_ENV=/opt/venv
ENV PATH="$VIRTUAL_ENV/bin:$PATH" \
    VAULT_ENV=production \
    VAULT_INSTANCE_PATH=/data \
    PROMETHEUS_MULTIPROC_DIR=/tmp/vault-metrics \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# A named volume mounted on /data starts with this folder's owner, so the app can write it.
# The home folder holds gunicorn's control socket (~/.gunicorn), for `docker exec … gunicornc`.
RUN groupadd --system --gid 10001 vault \
    && useradd --system --no-log-init --create-home --uid 10001 --gid vault --shell /usr/sbin/nologin vault \
    && mkdir -p /data "$PROMETHEUS_MULTIPROC_DIR" \
    && chown vault:vault /data "$PROMETHEUS_MULTIPROC_DIR"

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY wsgi.py gunicorn.conf.py ./
COPY migrations/ migrations/
COPY templates/ templates/
COPY static/ static/
COPY vault/ vault/

# Numeric, so a runtime (Kubernetes' runAsNonRoot) can tell it is not root without /etc/passwd.
USER 10001:10001
EXPOSE 8000

# slim has no curl. The port comes from VAULT_BIND, so a changed bind keeps a true check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('VAULT_BIND', '0.0.0.0:8000').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

# Metrics files of a previous run would be summed into the new one's, so they go first; then
# the schema is migrated (without the start-up bootstrap, which needs the migrated tables),
# and gunicorn's workers run the bootstrap.
# `exec` makes gunicorn PID 1: `docker stop` sends its SIGTERM straight to the master.
CMD ["sh", "-c", "mkdir -p \"${PROMETHEUS_MULTIPROC_DIR:?}\" && find \"$PROMETHEUS_MULTIPROC_DIR\" -mindepth 1 -delete && VAULT_BOOTSTRAP=false flask --app wsgi db upgrade && exec gunicorn -c gunicorn.conf.py wsgi:app"]

"""gunicorn settings: gevent workers, so one worker holds many concurrent streams."""

import os

bind = os.environ.get("VAULT_BIND", "0.0.0.0:8000")
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_connections = int(os.environ.get("VAULT_WORKER_CONNECTIONS", "1000"))
# A gevent worker heartbeats while streams are open, so this only catches a stuck worker.
timeout = int(os.environ.get("VAULT_WORKER_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("VAULT_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
accesslog = "-"
errorlog = "-"
# %(U)s is the path without the query string: a `?key=` Vault key never reaches the log.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

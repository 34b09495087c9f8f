"""The deployment files: Dockerfile, .dockerignore, docker-compose.yml and the CI workflows.

No Docker engine runs where the suite runs, so the Dockerfile is linted and its install
steps and command are replayed on the host instead of being built.
"""

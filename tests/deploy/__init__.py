"""The deployment files: Dockerfile, .dockerignore, docker-compose.yml and the CI workflows.

The Dockerfile is linted, its install steps and command are replayed on the host, and the
image is built with podman and its CMD run for real (`test_image_build.py`), with a
debootstrapped Debian standing in for `python:3.11-slim` since Docker Hub is out of reach.
"""

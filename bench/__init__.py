"""Benchmarks. Each runs a local development stack: DEBUG on (and with it the development secret key, service token
and local master key) unless the environment says otherwise, as under `make run`; the platform's settings keep DEBUG
off unless asked for (#16)."""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

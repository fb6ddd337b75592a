#!/bin/sh
# Install promtool (Debian's `prometheus` package provides /usr/bin/promtool) unless it is already on PATH.
# Used by `make test` for the k8s/monitoring rule checks. Needs root (or sudo) the first time.
set -eu
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
command -v promtool >/dev/null 2>&1 || (
  $SUDO apt-get update &&
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends prometheus
)
promtool --version 2>&1 | head -1

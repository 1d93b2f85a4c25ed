#!/usr/bin/env bash
# `make test`: every check the project has, from a fresh machine.
#   formatting, clippy (server and wasm builds, warnings are errors), every Rust test (integration
#   tests against the AWS emulator started here on a free port), then the release build and the
#   end-to-end tests in Debian's Chromium against it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NEXUS_ROOT"

STARTED=$(date +%s)
step() { log "[$(( $(date +%s) - STARTED ))s] $*"; }

step "installing what is missing"
"$NEXUS_ROOT/scripts/install-tools.sh"

step "cargo fmt --check"
cargo fmt --all --check

step "cfn-lint: every CloudFormation template (catalog/, infra/)"
shopt -s nullglob
TEMPLATES=(catalog/*/*.yaml catalog/*/*.json infra/*.yaml)
shopt -u nullglob
"$NEXUS_TOOLS_DIR/venv/bin/cfn-lint" "${TEMPLATES[@]}"

step "clippy: server (ssr)"
cargo clippy --locked -p app -p server --features app/ssr --all-targets -- -D warnings
step "clippy: browser (hydrate, wasm32)"
cargo clippy --locked -p app -p frontend --features app/hydrate --target wasm32-unknown-unknown -- -D warnings

RUN_DIR="$(mktemp -d /tmp/nexus-test.XXXXXX)"
export NEXUS_EMULATOR_RUN_DIR="$RUN_DIR/emulator"
SERVER_PID=""
SSO_PID=""
PASSKEY_PID=""
cleanup() {
  if [ -n "$SSO_PID" ]; then kill "$SSO_PID" 2>/dev/null || true; fi
  for pid in "$SERVER_PID" "$PASSKEY_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  "$NEXUS_ROOT/scripts/emulator.sh" stop || true
  NEXUS_EMULATOR=moto NEXUS_EMULATOR_RUN_DIR="$RUN_DIR/moto" "$NEXUS_ROOT/scripts/emulator.sh" stop || true
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT INT TERM

step "starting the AWS emulator"
ENDPOINT="$("$NEXUS_ROOT/scripts/emulator.sh" start)"
use_local_aws "$ENDPOINT"
step "infra/: cfn-lint, hadolint, the templates on the emulator (scripts/test-infra.sh)"
"$NEXUS_ROOT/scripts/test-infra.sh"
# Cognito's tokens come from moto: ministack's cognito-idp JWKS is not valid (see app/tests/cognito.rs).
step "starting moto for cognito-idp"
NEXUS_TEST_COGNITO_ENDPOINT="$(NEXUS_EMULATOR=moto NEXUS_EMULATOR_RUN_DIR="$RUN_DIR/moto" "$NEXUS_ROOT/scripts/emulator.sh" start)"
export NEXUS_TEST_COGNITO_ENDPOINT

# --release: the tests share the release server build's dependencies (the AWS SDK compiles once).
step "Rust tests (unit and integration)"
cargo test --locked --release --no-fail-fast -p app -p server --features app/ssr

step "release build (server + wasm, precompressed)"
build_site

step "end-to-end tests in Chromium"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export LEPTOS_SITE_ROOT="$NEXUS_ROOT/target/site" LEPTOS_SITE_PKG_DIR=pkg LEPTOS_HASH_FILES=true \
  LEPTOS_ENV=PROD LEPTOS_SITE_ADDR="127.0.0.1:$PORT"
export NEXUS_STORE=embedded NEXUS_DATA_DIR="$RUN_DIR/store" NEXUS_SEED_DEMO=if-empty NEXUS_CATALOG_DIR="$NEXUS_ROOT/catalog"
# Every browser test signs in from 127.0.0.1 (about 40 sign-ins in two minutes): above the default
# 30 per 5 minutes. The limit itself is proven by app/tests/api.rs.
export NEXUS_LOGIN_RATE_LIMIT=300/300
# Test-only: the deploy test points a capability's health URL at this server on 127.0.0.1.
export NEXUS_HEALTH_ALLOW_LOOPBACK=true
# Many browser tests sign the demo Executive in at once; a required second factor would need a
# fresh code for each (codes work once). mfa.spec.ts enrols its own users; app/tests/mfa.rs
# proves the requirement.
export NEXUS_MFA_REQUIRED_ROLES=none
# Single sign-on: a real OpenID provider (npm oidc-provider) on Cognito's paths stands in for the
# user pool's hosted UI, on localhost — another site than the toolkit on 127.0.0.1.
SSO_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
(cd end2end && exec node sso/provider.mjs "$SSO_PORT" "http://127.0.0.1:$PORT") >"$RUN_DIR/sso.log" 2>&1 &
SSO_PID=$!
for _ in $(seq 1 100); do
  grep -q '^ready' "$RUN_DIR/sso.log" 2>/dev/null && break
  kill -0 "$SSO_PID" 2>/dev/null || { cat "$RUN_DIR/sso.log"; die "the OpenID provider exited during start-up"; }
  sleep 0.1
done
export NEXUS_PUBLIC_URL="http://127.0.0.1:$PORT" NEXUS_COGNITO_USER_POOL_ID=us-east-1_e2eLocal \
  NEXUS_COGNITO_CLIENT_ID=nexus-e2e-client NEXUS_COGNITO_REGION=us-east-1 \
  NEXUS_COGNITO_ISSUER="http://localhost:$SSO_PORT" NEXUS_COGNITO_DOMAIN="http://localhost:$SSO_PORT"
"$CARGO_TARGET_DIR/release/nexus-toolkit" >"$RUN_DIR/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$RUN_DIR/server.log"; die "the server exited during start-up"; }
  sleep 0.1
done
# Passkeys need a host name (browsers refuse WebAuthn on an IP address): a second toolkit with a
# store of its own at http://localhost:PORT, without single sign-on (passkeys.spec.ts).
PASSKEY_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
(
  unset NEXUS_COGNITO_USER_POOL_ID NEXUS_COGNITO_CLIENT_ID NEXUS_COGNITO_REGION NEXUS_COGNITO_ISSUER NEXUS_COGNITO_DOMAIN
  export LEPTOS_SITE_ADDR="127.0.0.1:$PASSKEY_PORT" NEXUS_DATA_DIR="$RUN_DIR/store-passkeys" \
    NEXUS_PUBLIC_URL="http://localhost:$PASSKEY_PORT"
  exec "$CARGO_TARGET_DIR/release/nexus-toolkit"
) >"$RUN_DIR/server-passkeys.log" 2>&1 &
PASSKEY_PID=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PASSKEY_PORT/health" 2>/dev/null && break
  kill -0 "$PASSKEY_PID" 2>/dev/null || { cat "$RUN_DIR/server-passkeys.log"; die "the passkey server exited during start-up"; }
  sleep 0.1
done
(cd end2end && BASE_URL="http://127.0.0.1:$PORT" PASSKEY_BASE_URL="http://localhost:$PASSKEY_PORT" npx playwright test) || {
  echo "--- server log ---"; tail -n 100 "$RUN_DIR/server.log"
  echo "--- passkey server log ---"; tail -n 50 "$RUN_DIR/server-passkeys.log"; exit 1; }

step "all checks passed"

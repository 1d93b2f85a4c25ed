#!/usr/bin/env bash
# The HTTP benchmark: the release server on each store (embedded, and DynamoDB on the local
# emulator) with the 15,000-deployment data set, driven by oha at 1, 10 and 100 concurrent clients,
# beside a bare axum endpoint answering a body of the same size (the ceiling of the stack on this
# machine, measured the same way in the same run). Also start-up time, server RSS idle and under
# load, and the wasm bundle's sizes. Clients and servers share this machine's cores.
#
#   scripts/bench-http.sh                       one run; NEXUS_BENCH_SECONDS per case (default 10)
#   NEXUS_BENCH_STORES="embedded" scripts/bench-http.sh
#
# `embedded-uncached` is the embedded store with the read cache off (NEXUS_READ_CACHE_MB=0), for
# the two cached API reads only: the benchmark repeats one request, which the cache answers from
# memory after the first, so the uncached figures show what a read costs when it is computed.
#
# The raw oha output of every case and the table go to docs/bench/<UTC time>-<commit>/. Not part of
# `make test`: it measures, it does not judge. The rate limits are off for the run (said in the
# output): 100 clients from one IP would otherwise meet the 2000/5 min limit within a second.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NEXUS_ROOT"

SECONDS_PER_CASE="${NEXUS_BENCH_SECONDS:-10}"
STORES="${NEXUS_BENCH_STORES:-embedded embedded-uncached dynamodb}"
CLIENTS="1 10 100"
"$NEXUS_ROOT/scripts/install-tools.sh" build emulator bench

log "release build (server + wasm) and the ceiling binary"
build_site
cargo build --locked --release -p server --bin bench-ceiling

COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo -dirty)"
OUT="$NEXUS_ROOT/docs/bench/$(date -u +%Y%m%dT%H%M%SZ)-$COMMIT"
mkdir -p "$OUT"
RUN_DIR="$(mktemp -d /tmp/nexus-bench-http.XXXXXX)"
export NEXUS_EMULATOR_RUN_DIR="$RUN_DIR/emulator"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$NEXUS_ROOT/scripts/emulator.sh" stop >/dev/null 2>&1 || true
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
now_ms() { date +%s%3N; }

{
  echo "commit: $COMMIT"
  echo "date: $(date -u +%FT%TZ)"
  echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
  echo "load generator: $(oha --version), ${SECONDS_PER_CASE} s per case, clients: $CLIENTS, keep-alive"
  echo "server settings: LEPTOS_ENV=PROD, NEXUS_RATE_LIMIT=off, NEXUS_LOGIN_RATE_LIMIT=off, NEXUS_WORKER=off, NEXUS_RECONCILE_SECONDS=0, logs at warn, read cache default (32 MiB; embedded-uncached: NEXUS_READ_CACHE_MB=0)"
  echo "data: seed --scale --customers 1000 (1,000 customers x 3 environments x 5 capabilities = 15,000 deployments)"
} >"$OUT/settings.txt"
cat "$OUT/settings.txt" >&2

run_oha() { # name url clients [header...]
  local name="$1" url="$2" c="$3"; shift 3
  local args=()
  for h in "$@"; do args+=(-H "$h"); done
  oha -z "${SECONDS_PER_CASE}s" -c "$c" --no-tui --output-format json "${args[@]}" "$url" >"$OUT/$name-c$c.json"
}

ENDPOINT=""
for store in $STORES; do
  log "store: $store"
  port="$(free_port)"
  export LEPTOS_SITE_ROOT="$NEXUS_ROOT/target/site" LEPTOS_SITE_PKG_DIR=pkg LEPTOS_HASH_FILES=true \
    LEPTOS_ENV=PROD LEPTOS_SITE_ADDR="127.0.0.1:$port" NEXUS_CATALOG_DIR="$NEXUS_ROOT/catalog" \
    NEXUS_RATE_LIMIT=off NEXUS_LOGIN_RATE_LIMIT=off NEXUS_WORKER=off NEXUS_RECONCILE_SECONDS=0 RUST_LOG=warn
  if [ "$store" = dynamodb ]; then
    [ -n "$ENDPOINT" ] || ENDPOINT="$("$NEXUS_ROOT/scripts/emulator.sh" start)"
    use_local_aws "$ENDPOINT"
    export NEXUS_STORE=dynamodb NEXUS_TABLE="nexus-bench-$(date +%s)" NEXUS_CREATE_TABLE=true
    export NEXUS_DATA_DIR="$RUN_DIR/dynamodb-data"
  else
    export NEXUS_STORE=embedded NEXUS_DATA_DIR="$RUN_DIR/$store-data"
    unset NEXUS_TABLE NEXUS_CREATE_TABLE
  fi
  if [ "$store" = embedded-uncached ]; then export NEXUS_READ_CACHE_MB=0; else unset NEXUS_READ_CACHE_MB; fi
  started=$(now_ms)
  "$CARGO_TARGET_DIR/release/nexus-toolkit" seed --scale --customers 1000 >"$OUT/$store-seed.txt" 2>&1
  echo "seed: $(( $(now_ms) - started )) ms" >>"$OUT/$store-seed.txt"

  started=$(now_ms)
  "$CARGO_TARGET_DIR/release/nexus-toolkit" >"$RUN_DIR/$store-server.log" 2>&1 &
  server=$!
  PIDS+=("$server")
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; do
    kill -0 "$server" 2>/dev/null || { cat "$RUN_DIR/$store-server.log"; die "the server exited"; }
    sleep 0.01
  done
  startup=$(( $(now_ms) - started ))
  sleep 1
  idle=$(rss_kb "$server")

  base="http://127.0.0.1:$port"
  token="$(curl -fsS -H 'content-type: application/json' -d "{\"email\":\"exec@demo.nexus\",\"password\":\"${NEXUS_DEMO_PASSWORD:-Demo-Password-2026!}\"}" \
    "$base/api/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
  customer="$(curl -fsS -H "authorization: Bearer $token" "$base/api/v1/customers?limit=1" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')"
  body_bytes="$(curl -fsS -H "authorization: Bearer $token" "$base/api/v1/deployments?customer=$customer" | wc -c)"
  echo "$body_bytes" >"$OUT/deployments-body-bytes.txt"

  # A sampler keeps the highest RSS seen while the load runs.
  peak_file="$RUN_DIR/$store-peak"
  echo "$idle" >"$peak_file"
  ( while kill -0 "$server" 2>/dev/null; do r=$(rss_kb "$server" || echo 0); [ "${r:-0}" -gt "$(cat "$peak_file")" ] && echo "$r" >"$peak_file"; sleep 0.2; done ) &
  PIDS+=("$!")

  auth="authorization: Bearer $token"
  page=("cookie: nexus_session=$token" "accept: text/html")
  for c in $CLIENTS; do
    log "$store: $c client(s)"
    [ "$store" = embedded-uncached ] || run_oha "$store-health" "$base/health" "$c"
    run_oha "$store-deployments" "$base/api/v1/deployments?customer=$customer" "$c" "$auth"
    run_oha "$store-fleet-summary" "$base/api/v1/fleet/summary" "$c" "$auth"
    [ "$store" = embedded-uncached ] && continue
    run_oha "$store-ssr-dashboard" "$base/" "$c" "${page[@]}"
    run_oha "$store-ssr-customer" "$base/customers/$customer" "$c" "${page[@]}"
    run_oha "$store-sfn-dashboard" "$base/sfn/dashboard" "$c" "cookie: nexus_session=$token"
  done
  {
    echo "startup_ms $startup"
    echo "rss_idle_kb $idle"
    echo "rss_peak_kb $(cat "$peak_file")"
  } >"$OUT/$store-process.txt"
  kill "$server"; wait "$server" 2>/dev/null || true
done

log "ceiling: a bare axum endpoint answering $(cat "$OUT/deployments-body-bytes.txt") bytes"
port="$(free_port)"
"$CARGO_TARGET_DIR/release/bench-ceiling" "$port" "$(cat "$OUT/deployments-body-bytes.txt")" &
PIDS+=("$!")
until curl -fsS -o /dev/null "http://127.0.0.1:$port/ceiling" 2>/dev/null; do sleep 0.01; done
for c in $CLIENTS; do run_oha "ceiling" "http://127.0.0.1:$port/ceiling" "$c"; done

# The bundle every page loads (named in the hash file), then each lazily loaded chunk its split
# loader names (pkg/ also keeps earlier builds' hashed files, so no glob).
HASHES="$CARGO_TARGET_DIR/release/hash.txt"
PKG="$NEXUS_ROOT/target/site/pkg"
sizes() { echo "$1 $(stat -c %s "$2") $(gzip -9 -c "$2" | wc -c) $(stat -c %s "$2.br")"; }
{
  sizes wasm "$PKG/$LEPTOS_OUTPUT_NAME.$(awk '/^wasm:/ {print $2}' "$HASHES").wasm"
  for chunk in $(grep -o '"\./[A-Za-z0-9_.-]*\.wasm"' "$PKG/__wasm_split.$(awk '/^split:/ {print $2}' "$HASHES").js" | tr -d '"'); do
    sizes chunk "$PKG/${chunk#./}"
  done
} >"$OUT/wasm.txt"

python3 "$NEXUS_ROOT/scripts/bench_table.py" "$OUT" | tee "$OUT/table.md"
log "raw output and table: ${OUT#"$NEXUS_ROOT"/}"

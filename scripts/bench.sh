#!/usr/bin/env bash
# `make bench`: the HTTP benchmark (scripts/bench-http.sh: the release server on both stores with
# 15,000 deployments under oha, beside a bare-axum ceiling; raw output to docs/bench/), then the
# in-process read API and lifecycle benchmarks on both stores, printed as tables.
# Not part of `make test`: it measures, it does not judge. Figures go into the issue notes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NEXUS_ROOT"
"$NEXUS_ROOT/scripts/bench-http.sh"
"$NEXUS_ROOT/scripts/install-tools.sh"
RUN_DIR="$(mktemp -d /tmp/nexus-bench.XXXXXX)"
export NEXUS_EMULATOR_RUN_DIR="$RUN_DIR/emulator"
trap '"$NEXUS_ROOT/scripts/emulator.sh" stop || true; rm -rf "$RUN_DIR"' EXIT INT TERM
use_local_aws "$("$NEXUS_ROOT/scripts/emulator.sh" start)"
cargo test --locked --release -p app --features app/ssr --test read_api_benchmark -- --ignored --nocapture --test-threads 1
cargo test --locked --release -p app --features app/ssr --test lifecycle_benchmark -- --ignored --nocapture --test-threads 1
cargo test --locked --release -p app --features app/ssr --test rollouts -- --ignored --nocapture --test-threads 1
cargo test --locked --release -p app --features app/ssr --test rollouts_running -- --ignored --nocapture --test-threads 1

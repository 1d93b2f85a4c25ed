#!/usr/bin/env bash
# The local AWS-compatible emulator on loopback, behind one script.
#
#   scripts/emulator.sh start [PORT]   start (a free port when none is given); prints the endpoint URL
#   scripts/emulator.sh stop           stop the one this run directory started
#
# NEXUS_EMULATOR picks the implementation: `ministack` (default, pinned in env.sh) or `moto`
# (moto[server], the fallback, with weaker CloudFormation support). The toolkit only ever sees
# AWS_ENDPOINT_URL: nothing in the product knows it talks to an emulator.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

RUN_DIR="${NEXUS_EMULATOR_RUN_DIR:-$NEXUS_ROOT/.data/emulator}"
KIND="${NEXUS_EMULATOR:-ministack}"
VENV="$NEXUS_TOOLS_DIR/venv"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local port="${1:-$(free_port)}"
  mkdir -p "$RUN_DIR"
  if [ -f "$RUN_DIR/pid" ] && kill -0 "$(cat "$RUN_DIR/pid")" 2>/dev/null; then
    cat "$RUN_DIR/endpoint"
    return 0
  fi
  case "$KIND" in
    ministack)
      "$NEXUS_ROOT/scripts/install-tools.sh" emulator >&2
      BIND_HOST=127.0.0.1 GATEWAY_PORT="$port" MINISTACK_REGION="${AWS_REGION:-us-east-1}" \
        STATE_DIR="$RUN_DIR/state" nohup "$VENV/bin/ministack" >"$RUN_DIR/emulator.log" 2>&1 &
      local health="/_ministack/health"
      ;;
    moto)
      if [ ! -x "$VENV/bin/moto_server" ]; then
        log "installing moto[server] into $VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==5.2.5"
      fi
      nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$RUN_DIR/emulator.log" 2>&1 &
      local health="/moto-api/"
      ;;
    *) die "NEXUS_EMULATOR must be ministack or moto, not $KIND" ;;
  esac
  echo $! >"$RUN_DIR/pid"
  local endpoint="http://127.0.0.1:$port"
  for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "$endpoint$health" 2>/dev/null; then
      echo "$endpoint" >"$RUN_DIR/endpoint"
      log "AWS emulator ($KIND) ready at $endpoint"
      echo "$endpoint"
      return 0
    fi
    kill -0 "$(cat "$RUN_DIR/pid")" 2>/dev/null || { cat "$RUN_DIR/emulator.log" >&2; die "the emulator exited"; }
    sleep 0.2
  done
  cat "$RUN_DIR/emulator.log" >&2
  die "the emulator did not answer at $endpoint within 30 s"
}

stop() {
  [ -f "$RUN_DIR/pid" ] || return 0
  local pid; pid="$(cat "$RUN_DIR/pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/pid" "$RUN_DIR/endpoint"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 start [PORT] | stop" >&2; exit 2 ;;
esac

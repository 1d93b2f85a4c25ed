#!/usr/bin/env bash
# The infra/ checks: cfn-lint over infra/*.yaml, hadolint over infra/Dockerfile, then every infra
# template the local AWS emulator can create, created, checked and deleted
# (infra/tests/deploy_on_emulator.py; infra/README.md lists what the emulator lacks).
#
# Expects AWS_ENDPOINT_URL at a running emulator on loopback, as scripts/test.sh sets it:
#   ENDPOINT="$(scripts/emulator.sh start)"; use_local_aws "$ENDPOINT"; scripts/test-infra.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NEXUS_ROOT"

[ -n "${AWS_ENDPOINT_URL:-}" ] \
  || die "AWS_ENDPOINT_URL is not set: start the emulator (scripts/emulator.sh start) and run use_local_aws <endpoint> (scripts/env.sh)"
VENV="$NEXUS_TOOLS_DIR/venv"
for tool in cfn-lint hadolint python; do
  [ -x "$VENV/bin/$tool" ] || die "$VENV/bin/$tool is missing: run scripts/install-tools.sh emulator"
done
"$VENV/bin/python" -c 'import boto3' 2>/dev/null || die "boto3 is missing from $VENV: run scripts/install-tools.sh emulator"

STARTED=$(date +%s)
log "cfn-lint: infra/*.yaml"
"$VENV/bin/cfn-lint" infra/*.yaml

log "hadolint: infra/Dockerfile"
"$VENV/bin/hadolint" infra/Dockerfile

log "infra templates on the emulator at $AWS_ENDPOINT_URL"
"$VENV/bin/python" infra/tests/deploy_on_emulator.py

log "infra checks passed in $(( $(date +%s) - STARTED ))s"

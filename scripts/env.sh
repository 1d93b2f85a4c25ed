# Shared environment for the project's scripts (sourced, not executed).
# A stable target dir outside the clone keeps CI and fresh clones from rebuilding the AWS SDK each run.
: "${CARGO_TARGET_DIR:=$HOME/.cache/nexus-toolkit/target}"
export CARGO_TARGET_DIR
NEXUS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export NEXUS_ROOT
# Tools the scripts install outside the clone (the emulator's venv), shared by every clone.
: "${NEXUS_TOOLS_DIR:=$HOME/.cache/nexus-toolkit/tools}"
export NEXUS_TOOLS_DIR
# end2end's node_modules/.bin first: its wasm-opt must win over any Debian binaryen in /usr/bin.
export PATH="$NEXUS_ROOT/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# leptos reads this at compile time; cargo-leptos sets it, so every cargo call here sets it too,
# or tests and clippy would rebuild the leptos crates each time they alternate with cargo-leptos.
export LEPTOS_OUTPUT_NAME=nexus-toolkit
# Never let the AWS SDK probe the instance-metadata address on this machine.
export AWS_EC2_METADATA_DISABLED=true

# Pinned versions: change them here only.
WASM_BINDGEN_VERSION=0.2.130
CARGO_LEPTOS_VERSION=0.3.11
MINISTACK_VERSION=1.5.33
CFN_LINT_VERSION=1.58.0
BOTO3_VERSION=1.44.8
HADOLINT_VERSION=2.15.1
OHA_VERSION=1.16.0

# The release site: the server and the browser bundle, precompressed. `--split` puts the pages few
# visits open in a wasm chunk of their own (app/src/app.rs `Occasional`), loaded with those pages.
build_site() { cargo leptos build --release --precompress --split; }

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Obviously fake credentials for the local emulator only; real AWS uses the standard chain.
use_local_aws() {
  export AWS_ENDPOINT_URL="$1"
  export AWS_REGION="${AWS_REGION:-us-east-1}"
  export AWS_ACCESS_KEY_ID="fake-local-access-key"
  export AWS_SECRET_ACCESS_KEY="fake-local-secret-key"
  unset AWS_SESSION_TOKEN AWS_PROFILE
}

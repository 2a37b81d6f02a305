#!/usr/bin/env bash
# headlamp-server signing you in against a real OpenID provider and a test
# Kubernetes API server, in one command:
#
#   ./scripts/demo.sh                 # passthrough: your ID token reaches the API server
#   ./scripts/demo.sh --impersonate   # headlamp-server impersonates you
#   ./scripts/demo.sh --help          # --port, --base-url, --log-level
#
# Installs the IdP's npm packages when missing (scripts/install-test-deps.sh
# --npm-only; needs Node.js 20.19+), builds headlamp-server, then runs
# `cargo run -p headlamp-e2e --bin headlamp-demo`, which prints the URL and
# the test users and runs until Ctrl-C.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

scripts/install-test-deps.sh --npm-only
cargo build --quiet -p headlamp-server
exec cargo run --quiet -p headlamp-e2e --bin headlamp-demo -- "$@"

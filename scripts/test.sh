#!/usr/bin/env bash
# The test command: set-up (idempotent), then every test, unit and end-to-end.
# End-to-end tests build on the real Docker engine the set-up starts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >/dev/null
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets

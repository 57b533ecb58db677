#!/usr/bin/env bash
# The main job on the bundled fixtures: set-up (idempotent, points the fixtures at the base
# image it produced), then build every working fixture connector and a real connector from
# PyPI, and show that each image answers `spec`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ref=$(bash scripts/setup.sh | tail -n 1)
cargo build --release --quiet
bin=target/release/connector-build
faker=$(bash scripts/fetch-pypi-connector.sh airbyte-source-faker 7.2.1 .connector-build/pypi "$ref")
"$bin" --connectors-dir connectors-fixtures build \
  source-fixture-poetry source-fixture-setup source-fixture-requirements source-fixture-dockerfile \
  source-fixture-hooks source-fixture-uv source-fixture-manifest source-fixture-manifest-components \
  "$faker" --concurrency 2
for image in airbyte/source-fixture-poetry airbyte/source-fixture-setup \
  airbyte/source-fixture-requirements airbyte/source-fixture-dockerfile airbyte/source-fixture-hooks \
  airbyte/source-fixture-uv airbyte/source-fixture-manifest airbyte/source-fixture-manifest-components \
  airbyte/source-faker; do
  printf '%s:dev spec -> ' "$image"
  docker run --rm --network none "$image:dev" spec | grep -o '"type": *"SPEC"' | head -n 1
done

#!/usr/bin/env bash
# Lays out a real Airbyte connector published on PyPI as a connector folder:
#   scripts/fetch-pypi-connector.sh <pypi-name> <version> <dest-root> <base-image-ref>
# creates <dest-root>/<name>/ with the sdist's contents, a main.py when the sdist has none,
# and a metadata.yaml whose baseImage is <base-image-ref>. Idempotent: an existing folder
# with the same version is kept.
set -euo pipefail
pypi_name=$1 version=$2 dest_root=$3 base_ref=$4
name=${pypi_name#airbyte-}                 # airbyte-source-faker -> source-faker
package=${name//-/_}                        # source-faker -> source_faker
dest="$dest_root/$name"

if [ -f "$dest/.pypi-version" ] && [ "$(cat "$dest/.pypi-version")" = "$version" ]; then
  echo "$dest"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pip download --quiet --no-deps --no-binary :all: -d "$work" "$pypi_name==$version" >&2
archive=$(ls "$work"/*.tar.gz)
tar -xzf "$archive" -C "$work"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
rm -f "$src/PKG-INFO"

if [ ! -f "$src/main.py" ]; then
  cat > "$src/main.py" <<PY
# Written by connector-build's fetch script: the sdist ships no main.py.
from $package.run import run

if __name__ == "__main__":
    run()
PY
fi
cat > "$src/metadata.yaml" <<YAML
# Real connector $pypi_name $version from PyPI; this metadata is written by
# scripts/fetch-pypi-connector.sh, the rest is the sdist as published.
data:
  connectorType: source
  dockerImageTag: $version
  dockerRepository: airbyte/$name
  name: $name
  supportLevel: certified
  tags:
    - language:python
  connectorBuildOptions:
    baseImage: $base_ref
metadataSpecVersion: "1.0"
YAML
echo "$version" > "$src/.pypi-version"
mkdir -p "$dest_root"
rm -rf "$dest.tmp" && mv "$src" "$dest.tmp" && rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "$dest"

#!/usr/bin/env bash
# Packs the real Fashion-MNIST test split (Debian package dataset-fashion-mnist), verifies it, and checks the counts.
set -euo pipefail
pack=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$pack" fashion-mnist --split test --out "$tmp/fm"
"$pack" verify "$tmp/fm"
info=$("$pack" info "$tmp/fm")
echo "$info"
grep -q "images:   10000 x 32x32x1" <<<"$info"
grep -qE "Ankle boot +1000" <<<"$info"

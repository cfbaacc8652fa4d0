#!/usr/bin/env bash
# Push the gate's PNG plots to a branch of their own so the job summary and the PR comment
# can show them: GitHub renders an image in markdown only from a URL it can fetch, not from
# a file name relative to an artifact, and it strips data: URIs.
#
#   publish-plots.sh ARTIFACTS_DIR
#
# Every ARTIFACTS_DIR/**/*.png is committed, at its path under ARTIFACTS_DIR, below
# runs/<RUN_KEY>/ on branch PLOTS_BRANCH (an orphan branch holding nothing else, created on
# first use; each run adds one commit, retried on top of a concurrent push). Prints
# `images-base=<URL>` (also to $GITHUB_OUTPUT when set): the raw URL of runs/<RUN_KEY> at the
# pushed commit, immutable, so old comments keep their images when the branch moves on.
# Prints nothing there and exits 0 when there is no PNG.
#
# Environment: REMOTE_URL (e.g. https://github.com/OWNER/REPO.git, or a local path in the
# tests), RAW_BASE (e.g. https://github.com/OWNER/REPO/raw), RUN_KEY (e.g. run id and
# attempt), PLOTS_BRANCH (default edgeproof-plots), GH_TOKEN (optional; sent as an HTTP
# header, masked, never written to disk or to the remote URL).
set -euo pipefail

src="${1:?usage: publish-plots.sh ARTIFACTS_DIR}"
: "${REMOTE_URL:?}" "${RAW_BASE:?}" "${RUN_KEY:?}"
branch="${PLOTS_BRANCH:-edgeproof-plots}"
dest="runs/$RUN_KEY"

mapfile -t pngs < <(cd "$src" && find . -type f -name '*.png' | sed 's|^\./||' | sort)
if (( ${#pngs[@]} == 0 )); then
  echo "publish-plots: no PNG under $src"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git_() { git -C "$work" "$@"; }
auth=()
if [[ -n "${GH_TOKEN:-}" ]]; then
  basic="$(printf 'x-access-token:%s' "$GH_TOKEN" | base64 -w0)"
  [[ -n "${GITHUB_ACTIONS:-}" ]] && echo "::add-mask::$basic"
  auth=(-c "http.extraheader=AUTHORIZATION: basic $basic")
fi

git init -q "$work"
git_ config user.name "edgeproof-ci"
git_ config user.email "edgeproof-ci@users.noreply.github.com"
for png in "${pngs[@]}"; do
  mkdir -p "$work/$dest/$(dirname "$png")"
  cp "$src/$png" "$work/$dest/$png"
done

pushed=""
for attempt in 1 2 3 4 5; do
  git_ symbolic-ref HEAD "refs/heads/$branch"
  if git_ "${auth[@]}" fetch -q --depth=1 "$REMOTE_URL" "refs/heads/$branch" 2>/dev/null; then
    git_ reset -q --mixed FETCH_HEAD  # index = the branch's files; work tree = this run's
  else
    git_ update-ref -d "refs/heads/$branch" 2>/dev/null || true
    git_ read-tree --empty
  fi
  git_ add -- "$dest"
  git_ commit -q -m "plots of run $RUN_KEY"
  if git_ "${auth[@]}" push -q "$REMOTE_URL" "HEAD:refs/heads/$branch"; then
    pushed="$(git_ rev-parse HEAD)"
    break
  fi
  echo "publish-plots: push attempt $attempt rejected; retrying on top of the new branch tip"
  sleep $(( attempt * 2 ))
done
if [[ -z "$pushed" ]]; then
  echo "publish-plots: could not push to $branch" >&2
  exit 1
fi

base="${RAW_BASE%/}/$pushed/$dest"
echo "publish-plots: ${#pngs[@]} plot(s) at $base"
echo "images-base=$base"
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
  echo "images-base=$base" >>"$GITHUB_OUTPUT"
fi

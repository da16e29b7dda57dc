#!/usr/bin/env bash
# Checks the contract against the last commit of main with buf's FILE rules.
#
# Uncommitted proto changes are checked against HEAD; a clean tree (CI's
# fresh clone of main) is checked against the commit before HEAD, so the
# change that just landed is the one judged.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! git diff --quiet HEAD -- proto 2>/dev/null || [ -n "$(git ls-files --others --exclude-standard proto)" ]; then
  ref=HEAD
else
  if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
    git fetch -q --deepen=1 || true
  fi
  ref=HEAD~1
fi

if ! git rev-parse -q --verify "$ref^{commit}" >/dev/null || ! git cat-file -e "$ref:proto" 2>/dev/null; then
  echo "buf breaking: $ref has no contract to compare with; nothing to check"
  exit 0
fi
exec go tool -modfile=tools/go.mod buf breaking --against ".git#ref=$ref"

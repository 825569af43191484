#!/usr/bin/env bash
# The wasm build (scripts/test-all.sh suite "wasm (Node, headless Chromium)"):
# 1. `napi build --target wasm32-wasip1-threads` of the addon (release, stripped; cached by cargo,
#    and shared with scripts/build-npm-packages.sh), its files put next to index.js;
# 2. the vitest suite against it from Node (tests/wasm/vitest.config.mts: NAPI_RS_FORCE_WASI=error
#    in the test workers; 6 tests of native-only behaviour left out, listed there);
# 3. examples/browser/ bundled (esbuild) and checked in headless Chromium (Debian's chromium,
#    driven by puppeteer-core: tests/wasm/browser.mjs), which also times libpvm (wasm) against
#    anan-as (wasm) in the page;
# 4. the same guest timed in Node: libpvm wasm, anan-as and (if built) the native addon.
# Missing tools (the Rust target, chromium) are installed when possible; what cannot run prints
# `SKIPPED: <part> (<reason>)`, a failure under CI=true. Ends with `N passed, N failed, N skipped`.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
target_dir=${CARGO_TARGET_DIR:-$root/target}
out=$target_dir/wasm-out
ci=false
[[ "${CI:-}" == "true" || "${CI:-}" == "1" ]] && ci=true
passed=0 failed=0 skipped=0
run() { # NAME COMMAND...
  local name=$1
  shift
  echo "--- $name"
  if "$@"; then echo "PASS $name"; passed=$((passed + 1)); else echo "FAIL $name"; failed=$((failed + 1)); fi
}
skip() {
  if $ci; then echo "FAIL $1 ($2; CI=true: nothing may be skipped)"; failed=$((failed + 1)); else echo "SKIPPED: $1 ($2)"; skipped=$((skipped + 1)); fi
}
finish() { echo "$passed passed, $failed failed, $skipped skipped"; [[ $failed -eq 0 ]]; exit; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1-threads; then
  [[ -z "${PVM_NO_INSTALL:-}" ]] && rustup target add wasm32-wasip1-threads >/dev/null 2>&1
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1-threads; then
  skip "wasm build" "the Rust target is not installed (rustup target add wasm32-wasip1-threads)"
  finish
fi
build() {
  mkdir -p "$out" &&
    node_modules/.bin/napi build --platform --release --strip -p libpvm-node --target wasm32-wasip1-threads \
      -o "$out" --no-js --dts index.d.ts &&
    cp "$out"/{libpvm.wasi.cjs,libpvm.wasi-browser.js,libpvm.wasm32-wasi.wasm,wasi-worker.mjs,wasi-worker-browser.mjs} "$root/"
}
start=$(date +%s)
run "wasm build" build || finish
echo "(wasm build: $(($(date +%s) - start)) s, $(stat -c %s "$out/libpvm.wasm32-wasi.wasm") bytes)"
run "vitest suite on the wasm build (Node $(node --version))" npx vitest run -c tests/wasm/vitest.config.mts

if [[ ! -x ${CHROMIUM:-/usr/bin/chromium} && -z "${PVM_NO_INSTALL:-}" && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "installing chromium (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1
fi
if [[ -x ${CHROMIUM:-/usr/bin/chromium} ]]; then
  run "browser page bundled" node examples/browser/build.mjs &&
    run "browser page in headless Chromium" env SCREENSHOT="$out/browser.png" node tests/wasm/browser.mjs
else
  skip "browser page in headless Chromium" "chromium is not installed (Debian package chromium)"
fi
run "speed in Node (same guest as the page)" node tests/wasm/speed.mjs
finish

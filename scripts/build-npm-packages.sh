#!/usr/bin/env bash
# Builds the npm packages of libpvm as they would be published, from this machine:
#
#   scripts/build-npm-packages.sh [TARGET...]     (default: x86_64-unknown-linux-gnu)
#
# For each TARGET (a Rust triple from package.json `napi.targets`) the addon crate alone is built
# in release mode, stripped (`napi build --release --strip -p libpvm-node`):
# - Linux targets with cargo-zigbuild and zig, both from PyPI (`pip install cargo-zigbuild
#   ziglang`, no other download): one toolchain for every Linux target; the glibc targets link
#   against glibc 2.17 (`<triple>.2.17`), so the binaries load on any glibc >= 2.17, and the musl
#   binary needs only the musl libc.so of the Node that loads it;
# - wasm32-wasip1-threads with Rust's own wasm linker and emnapi (npm devDependencies `emnapi`,
#   `@emnapi/core`, `@emnapi/runtime`), no WASI SDK needed (no C code);
# - anything else natively (this is what the CI workflow does for macOS and Windows).
# Then, in a staging copy of the root package (package.json with `napi.targets` narrowed to the
# targets built, index.js, index.d.ts, typeberry/), `napi artifacts` moves every binary into its
# per-platform package `npm/<platform>/`, `napi pre-publish --skip-optional-publish` writes the
# root package's `optionalDependencies` (nothing is published), and `npm pack` packs every
# package. Output, in $PKG_OUT (default ${CARGO_TARGET_DIR:-target}/npm-packages):
#   artifacts/<target>/   what napi build produced
#   stage/                the root package and stage/npm/<platform>/, as napi left them
#   *.tgz                 the packed packages (libpvm-0.1.0.tgz, libpvm-linux-x64-gnu-0.1.0.tgz, ...)
#   sizes.txt             tarball and binary sizes
# Build times are printed per target. CARGO_BUILD_JOBS applies (CI and shared machines: 1).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

target_dir=${CARGO_TARGET_DIR:-$root/target}
out=${PKG_OUT:-$target_dir/npm-packages}
napi=$root/node_modules/.bin/napi
[[ -x $napi ]] || { echo "node_modules/.bin/napi is missing: run npm ci first" >&2; exit 1; }
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(x86_64-unknown-linux-gnu)

# zig for cargo-zigbuild and napi's --cross-compile: the `ziglang` PyPI package's binary behind a
# `zig` wrapper on PATH (napi looks for `zig` on PATH; cargo-zigbuild also finds `python3 -m ziglang`).
zig_path() {
  command -v zig >/dev/null 2>&1 && return 0
  python3 -c 'import ziglang' 2>/dev/null || return 1
  mkdir -p "$target_dir/zig-bin"
  printf '#!/bin/sh\nexec python3 -m ziglang "$@"\n' >"$target_dir/zig-bin/zig"
  chmod +x "$target_dir/zig-bin/zig"
  export PATH="$target_dir/zig-bin:$PATH"
}

rm -rf "$out"
mkdir -p "$out/artifacts"
built=()
for t in "${targets[@]}"; do
  dir=$out/artifacts/$t
  mkdir -p "$dir"
  args=(build --platform --release --strip -p libpvm-node --target "$t" -o "$dir" --no-js --dts index.d.ts)
  case $t in
    *-linux-gnu*)
      zig_path || { echo "$t needs zig (pip install ziglang cargo-zigbuild)" >&2; exit 1; }
      args=(build --platform --release --strip -p libpvm-node --target "$t.2.17" -x -o "$dir" --no-js --dts index.d.ts) ;;
    *-linux-musl*)
      zig_path || { echo "$t needs zig (pip install ziglang cargo-zigbuild)" >&2; exit 1; }
      args+=(-x) ;;
  esac
  echo "--- napi ${args[*]}"
  start=$(date +%s)
  "$napi" "${args[@]}"
  echo "--- $t built in $(($(date +%s) - start)) s"
  rm -f "$dir/index.d.ts"
  built+=("$t")
done

# The staging copy of the root package, narrowed to the targets built.
stage=$out/stage
mkdir -p "$stage/npm" "$stage/typeberry"
cp index.js index.d.ts README.md "$stage/"
cp typeberry/index.mjs typeberry/index.d.mts "$stage/typeberry/"
node - "$stage/package.json" "${built[@]}" <<'EOF'
const fs = require('node:fs')
const [out, ...targets] = process.argv.slice(2)
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'))
pkg.napi.targets = pkg.napi.targets.filter((t) => targets.includes(t))
for (const t of targets) if (!pkg.napi.targets.includes(t)) throw new Error(`${t} is not in package.json napi.targets`)
// What a user installs needs none of the development fields.
delete pkg.devDependencies
delete pkg.overrides
delete pkg.scripts
fs.writeFileSync(out, JSON.stringify(pkg, null, 2) + '\n')
EOF
for t in "${built[@]}"; do
  platform=$(node -e '
    const t = process.argv[1]
    const arch = { x86_64: "x64", aarch64: "arm64", wasm32: "wasm32" }[t.split("-")[0]]
    const sys = t.includes("linux") ? "linux" : t.includes("darwin") ? "darwin" : t.includes("windows") ? "win32" : "wasi"
    const abi = t.includes("musl") ? "-musl" : t.includes("linux-gnu") ? "-gnu" : t.includes("msvc") ? "-msvc" : ""
    console.log(sys === "wasi" ? "wasm32-wasi" : `${sys}-${arch}${abi}`)' "$t")
  cp -r "npm/$platform" "$stage/npm/"
done
wasm_dir=()
for t in "${built[@]}"; do [[ $t == wasm32-* ]] && wasm_dir=(--build-output-dir "$out/artifacts/$t"); done
(cd "$stage" && "$napi" artifacts -o "$out/artifacts" --npm-dir npm ${wasm_dir[@]+"${wasm_dir[@]}"})
(cd "$stage" && "$napi" pre-publish -t npm --skip-optional-publish --no-gh-release)
# napi artifacts also leaves a copy of each binary in the root package dir; the root package's
# `files` list does not include them, so they are not packed.
echo "--- optionalDependencies of the root package:"
node -e 'console.log(JSON.stringify(require(process.argv[1]).optionalDependencies ?? {}, null, 2))' "$stage/package.json"

(cd "$out" && npm pack --silent "$stage" >/dev/null)
for d in "$stage"/npm/*/; do (cd "$out" && npm pack --silent "$d" >/dev/null); done
{
  echo "package tarballs (npm pack):"
  for f in "$out"/*.tgz; do printf '  %-44s %9d bytes\n' "$(basename "$f")" "$(stat -c %s "$f")"; done
  echo "binaries:"
  for f in "$stage"/npm/*/*.node "$stage"/npm/*/*.wasm; do
    [[ -e $f ]] && printf '  %-44s %9d bytes\n' "$(basename "$f")" "$(stat -c %s "$f")"
  done
} | tee "$out/sizes.txt"

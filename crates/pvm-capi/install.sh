#!/usr/bin/env bash
# Builds libpvm and installs it under PREFIX (default /usr/local):
#   PREFIX/include/pvm.h, PREFIX/lib/libpvm.so, PREFIX/lib/libpvm.a,
#   PREFIX/lib/pkgconfig/pvm.pc (generated from crates/pvm-capi/pvm.pc.in).
# Usage: crates/pvm-capi/install.sh [PREFIX]     (respects CARGO_TARGET_DIR; set PVM_NO_BUILD=1
# to install an existing build)
set -euo pipefail
PREFIX="${1:-/usr/local}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LIBDIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
if [[ -z "${PVM_NO_BUILD:-}" ]]; then
    (cd "$ROOT" && cargo build --release -p pvm-capi)
fi
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)"
mkdir -p "$PREFIX/include" "$PREFIX/lib/pkgconfig"
install -m 644 "$ROOT/include/pvm.h" "$PREFIX/include/pvm.h"
install -m 755 "$LIBDIR/libpvm.so" "$PREFIX/lib/libpvm.so"
install -m 644 "$LIBDIR/libpvm.a" "$PREFIX/lib/libpvm.a"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@VERSION@|$VERSION|g" \
    "$ROOT/crates/pvm-capi/pvm.pc.in" > "$PREFIX/lib/pkgconfig/pvm.pc"
echo "installed libpvm $VERSION under $PREFIX (pkg-config: PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig)"

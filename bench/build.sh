#!/usr/bin/env bash
# Rebuilds every PVM guest blob bit-for-bit from its C source:
#   bench/programs/{blake2b,sort,sieve,mandel,interp}.jam   (benchmark guests, -O2)
#   bench/programs/large-O0.jam   (all five guests in one program, clang -O0, linker -O0)
#   bench/programs/large-O2.jam   (all five guests in one program, clang -O2, linker -O2)
#   bench/programs/bigcode.jam    (4096 generated functions: ~0.6 MB code, 4096 jump table entries)
#   examples/guests/hostcalls.jam (a small program that makes host calls)
#
# Needs clang-19 and lld-19 (apt-get install -y clang-19 lld-19) and cargo (builds bench/tool).
# Usage: bench/build.sh [--check]   (--check: build twice and compare the sha256 sums)
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
CLANG="${CLANG:-clang-19}"
LLD="${LLD:-ld.lld-19}"
TOOL="$BENCH/tool/target/release/pvm-bench-tool"

GUESTS=(blake2b sort sieve mandel interp)

COMMON_CFLAGS=(--target=riscv64 -march=rv64emac_zbb -mabi=lp64e -fPIC -ffreestanding -fno-builtin
    -nostdlib -fno-stack-protector -fvisibility=hidden -mno-relax -ffunction-sections -fdata-sections
    -fno-ident -ffile-prefix-map="$ROOT"=. -I"$BENCH/guests")
LDFLAGS=(-shared --emit-relocs --unique --apply-dynamic-relocs --no-allow-shlib-undefined -Bsymbolic -z notext
    --build-id=none)
MIN_STACK=65536

build_tool() {
    (cd "$BENCH/tool" && cargo build --release --locked --quiet)
}

# cc OPT SRC OUT.o
cc() { "$CLANG" "${COMMON_CFLAGS[@]}" "$1" -c "$2" -o "$3"; }

# build_all OUTDIR: builds every blob into OUTDIR (programs/ and examples/ layout flattened).
build_all() {
    local out="$1" obj="$1/obj"
    mkdir -p "$obj"
    for opt in O0 O2; do
        cc "-$opt" "$BENCH/guests/rt.c" "$obj/rt-$opt.o"
        for g in "${GUESTS[@]}"; do
            cc "-$opt" "$BENCH/guests/$g.c" "$obj/$g-$opt.o"
        done
    done
    for g in "${GUESTS[@]}"; do
        "$LLD" "${LDFLAGS[@]}" -o "$obj/$g.elf" "$obj/$g-O2.o" "$obj/rt-O2.o"
        "$TOOL" link "$obj/$g.elf" "$out/$g.jam" --min-stack "$MIN_STACK" 2>/dev/null
    done
    for opt in O0 O2; do
        local objs=()
        for g in "${GUESTS[@]}"; do objs+=("$obj/$g-$opt.o"); done
        "$LLD" "${LDFLAGS[@]}" -o "$obj/large-$opt.elf" "${objs[@]}" "$obj/rt-$opt.o"
        "$TOOL" link "$obj/large-$opt.elf" "$out/large-$opt.jam" --min-stack "$MIN_STACK" \
            --opt-level "${opt#O}" $(for g in "${GUESTS[@]}"; do printf -- '--export %s ' "$g"; done) 2>/dev/null
    done
    cc -O2 "$BENCH/guests/bigcode.c" "$obj/bigcode.o"
    "$LLD" "${LDFLAGS[@]}" -o "$obj/bigcode.elf" "$obj/bigcode.o" "$obj/rt-O2.o"
    "$TOOL" link "$obj/bigcode.elf" "$out/bigcode.jam" --min-stack "$MIN_STACK" 2>/dev/null
    cc -O2 "$ROOT/examples/guests/hostcalls.c" "$obj/hostcalls.o"
    "$LLD" "${LDFLAGS[@]}" -o "$obj/hostcalls.elf" "$obj/hostcalls.o" "$obj/rt-O2.o"
    "$TOOL" link "$obj/hostcalls.elf" "$out/hostcalls.jam" --min-stack 16384 2>/dev/null
}

install_outputs() {
    local out="$1"
    mkdir -p "$BENCH/programs"
    for g in "${GUESTS[@]}" large-O0 large-O2 bigcode; do cp "$out/$g.jam" "$BENCH/programs/$g.jam"; done
    cp "$out/hostcalls.jam" "$ROOT/examples/guests/hostcalls.jam"
}

sums() { (cd "$1" && sha256sum ./*.jam); }

build_tool
work="$BENCH/build"
rm -rf "$work"
mkdir -p "$work/a"
build_all "$work/a"
if [[ "${1:-}" == "--check" ]]; then
    mkdir -p "$work/b"
    build_all "$work/b"
    if ! diff <(sums "$work/a") <(sums "$work/b"); then
        echo "build.sh: two builds differ" >&2
        exit 1
    fi
    echo "build.sh: two builds are identical"
fi
install_outputs "$work/a"
sums "$work/a"

// A tiny PVM assembler for tests and benchmarks: builds generic code blobs
// `E(|j|) E1(z) E(|c|) j c k` (GP A.1) and standard programs (GP A.7) from a list of
// instructions. Opcode numbers are GP 0.8.0's (the ones used here are the same in GP 0.7.2).
// Every immediate is encoded with 4 bytes (sign-extended by the VM), so instruction lengths are
// fixed and labels resolve in one pass.

const u32 = (v) => {
  const x = Number(BigInt.asUintN(32, BigInt(v)))
  return [x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, (x >>> 24) & 0xff]
}
const u64 = (v) => {
  const x = BigInt.asUintN(64, BigInt(v))
  return Array.from({ length: 8 }, (_, i) => Number((x >> BigInt(8 * i)) & 0xffn))
}
const reg = (r) => {
  if (!Number.isInteger(r) || r < 0 || r > 12) throw new Error(`bad register ${r}`)
  return r
}
const fixed = (bytes) => ({ len: bytes.length, enc: () => bytes })
const target = (labels, name) => {
  if (!(name in labels)) throw new Error(`unknown label ${name}`)
  return labels[name]
}

/** Instruction constructors. Registers are 0..12; `label` names a position for branches. */
export const I = {
  label: (name) => ({ len: 0, label: name, enc: () => [] }),
  trap: () => fixed([0]),
  fallthrough: () => fixed([1]),
  ecalli: (id) => fixed([10, ...u32(id)]),
  loadImm64: (r, v) => fixed([20, reg(r), ...u64(v)]),
  jump: (label) => ({ len: 5, enc: (pc, labels) => [40, ...u32(target(labels, label) - pc)] }),
  jumpInd: (r, offset = 0) => fixed([50, reg(r), ...u32(offset)]),
  loadImm: (r, v) => fixed([51, reg(r), ...u32(v)]),
  loadU8: (r, address) => fixed([52, reg(r), ...u32(address)]),
  loadU64: (r, address) => fixed([58, reg(r), ...u32(address)]),
  storeU8: (r, address) => fixed([59, reg(r), ...u32(address)]),
  storeU64: (r, address) => fixed([62, reg(r), ...u32(address)]),
  branchNeImm: (r, v, label) => ({
    len: 10,
    enc: (pc, labels) => [82, reg(r) | (4 << 4), ...u32(v), ...u32(target(labels, label) - pc)],
  }),
  moveReg: (rd, rs) => fixed([100, reg(rd) | (reg(rs) << 4)]),
  addImm64: (rd, rs, v) => fixed([149, reg(rd) | (reg(rs) << 4), ...u32(v)]),
  xorImm: (rd, rs, v) => fixed([133, reg(rd) | (reg(rs) << 4), ...u32(v)]),
  mulImm64: (rd, rs, v) => fixed([150, reg(rd) | (reg(rs) << 4), ...u32(v)]),
  shloRImm64: (rd, rs, v) => fixed([152, reg(rd) | (reg(rs) << 4), ...u32(v)]),
  add64: (rd, ra, rb) => fixed([200, reg(ra) | (reg(rb) << 4), reg(rd)]),
  xor: (rd, ra, rb) => fixed([211, reg(ra) | (reg(rb) << 4), reg(rd)]),
  /** Halts: jump_ind to 0xFFFF0000 (loads it into `r` first). */
  halt: (r = 0) => [fixed([51, reg(r), ...u32(0xffff0000)]), fixed([50, reg(r), ...u32(0)])],
}

/** varint E (GP C.1). */
export function varint(n) {
  let x = BigInt(n)
  if (x < 0n) throw new Error('negative')
  for (let l = 0; l < 8; l++) {
    if (x < 1n << BigInt(7 * (l + 1))) {
      const high = Number(x >> BigInt(8 * l))
      const first = (0x100 - (1 << (8 - l))) + high
      const rest = Array.from({ length: l }, (_, i) => Number((x >> BigInt(8 * i)) & 0xffn))
      return [first, ...rest]
    }
  }
  return [0xff, ...u64(x)]
}

/** Assembles instructions (nested arrays are flattened) into `{ code, bitmask }`. */
export function assemble(instructions) {
  const list = instructions.flat(Infinity)
  const labels = {}
  let pc = 0
  for (const ins of list) {
    if (ins.label !== undefined) labels[ins.label] = pc
    pc += ins.len
  }
  const code = []
  const starts = []
  for (const ins of list) {
    if (ins.len === 0) continue
    starts.push(code.length)
    const bytes = ins.enc(code.length, labels)
    if (bytes.length !== ins.len) throw new Error('length mismatch')
    code.push(...bytes)
  }
  const bitmask = new Array(Math.ceil(code.length / 8)).fill(0)
  for (const s of starts) bitmask[s >> 3] |= 1 << (s & 7)
  return { code, bitmask, labels }
}

/** A generic code blob `E(|j|) E1(z) E(|c|) j c k` (jump table entries of 4 bytes). */
export function codeBlob(instructions, jumpTable = []) {
  const { code, bitmask } = assemble(instructions)
  const z = jumpTable.length ? 4 : 0
  return Uint8Array.from([
    ...varint(jumpTable.length),
    z,
    ...varint(code.length),
    ...jumpTable.flatMap((t) => u32(t)),
    ...code,
    ...bitmask,
  ])
}

const le = (v, n) => Array.from({ length: n }, (_, i) => Number((BigInt(v) >> BigInt(8 * i)) & 0xffn))

/** A GP A.7 standard program `E3(|o|) E3(|w|) E2(z) E3(s) o w E4(|c|) c`. */
export function standardProgram(instructions, { ro = [], rw = [], heapPages = 0, stack = 4096 } = {}) {
  const blob = codeBlob(instructions)
  return Uint8Array.from([
    ...le(ro.length, 3),
    ...le(rw.length, 3),
    ...le(heapPages, 2),
    ...le(stack, 3),
    ...ro,
    ...rw,
    ...le(blob.length, 4),
    ...blob,
  ])
}

/** Standard-program addresses (GP A.7). */
export const LAYOUT = {
  roStart: 0x10000,
  /** rw start for read-only data of at most 64 KiB. */
  rwStart(roLength = 0) {
    return 2 * 0x10000 + Math.ceil(roLength / 0x10000) * 0x10000
  },
  stackEnd: 2 ** 32 - 2 * 0x10000 - 2 ** 24,
  argsStart: 2 ** 32 - 0x10000 - 2 ** 24,
}

/**
 * An ALU/branch loop of `iterations` iterations, 12 instructions each (10 ALU, 1 decrement, 1
 * branch), then halt: ~12 × iterations instructions. Leaves a checksum in r7.
 */
export function aluLoop(iterations) {
  return codeBlob([
    I.loadImm(1, iterations),
    I.loadImm(7, 1),
    I.loadImm(8, 0x1234567),
    I.fallthrough(),
    I.label('loop'),
    I.add64(7, 7, 8),
    I.xorImm(8, 7, 0x5a5a5a5),
    I.mulImm64(9, 8, 31),
    I.shloRImm64(10, 9, 7),
    I.xor(7, 7, 10),
    I.addImm64(8, 8, 17),
    I.add64(11, 7, 9),
    I.xor(8, 8, 11),
    I.moveReg(12, 7),
    I.addImm64(7, 12, 3),
    I.addImm64(1, 1, -1),
    I.branchNeImm(1, 0, 'loop'),
    I.halt(0),
  ])
}

/**
 * A copy of a GP 0.8 standard program for GP 0.7 VMs: every `unlikely` (opcode 2) becomes
 * `fallthrough` (1) and the bit-manipulation opcodes 101..110 move to their GP 0.7 numbers
 * 102..111 (same operands). Results and per-instruction gas stay the same.
 */
export function standardToGp07(bytes) {
  const b = Uint8Array.from(bytes)
  const le = (o, n) => b.subarray(o, o + n).reduceRight((acc, x) => acc * 256 + x, 0)
  const ro = le(0, 3)
  const rw = le(3, 3)
  let i = 11 + ro + rw + 4
  const readVarint = () => {
    const first = b[i]
    let l = 0
    while (l < 8 && first & (0x80 >> l)) l++
    if (l === 8) throw new Error('varint too large')
    const low = le(i + 1, l)
    const value = (first & (0x7f >> l)) * 2 ** (8 * l) + low
    i += 1 + l
    return value
  }
  const entries = readVarint()
  const z = b[i++]
  const codeLength = readVarint()
  i += entries * z
  const code = i
  const mask = i + codeLength
  for (let pc = 0; pc < codeLength; pc++) {
    if (!((b[mask + (pc >> 3)] >> (pc & 7)) & 1)) continue
    const op = b[code + pc]
    if (op === 2) b[code + pc] = 1
    else if (op >= 101 && op <= 110) b[code + pc] = op + 1
  }
  return b
}

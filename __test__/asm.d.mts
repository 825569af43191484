// Types of asm.mjs (a tiny PVM assembler used by the tests and the benchmark).
export interface Ins {
  len: number
  label?: string
  enc(pc: number, labels: Record<string, number>): number[]
}
type Imm = number | bigint
export declare const I: {
  label(name: string): Ins
  trap(): Ins
  fallthrough(): Ins
  ecalli(id: number): Ins
  loadImm64(r: number, v: Imm): Ins
  jump(label: string): Ins
  jumpInd(r: number, offset?: number): Ins
  loadImm(r: number, v: Imm): Ins
  loadU8(r: number, address: number): Ins
  loadU64(r: number, address: number): Ins
  storeU8(r: number, address: number): Ins
  storeU64(r: number, address: number): Ins
  branchNeImm(r: number, v: Imm, label: string): Ins
  moveReg(rd: number, rs: number): Ins
  addImm64(rd: number, rs: number, v: Imm): Ins
  xorImm(rd: number, rs: number, v: Imm): Ins
  mulImm64(rd: number, rs: number, v: Imm): Ins
  shloRImm64(rd: number, rs: number, v: Imm): Ins
  add64(rd: number, ra: number, rb: number): Ins
  xor(rd: number, ra: number, rb: number): Ins
  halt(r?: number): Ins[]
}
export type Program = Array<Ins | Program>
export declare function varint(n: number | bigint): number[]
export declare function assemble(instructions: Program): { code: number[]; bitmask: number[]; labels: Record<string, number> }
export declare function codeBlob(instructions: Program, jumpTable?: number[]): Uint8Array
export declare function standardProgram(
  instructions: Program,
  layout?: { ro?: number[]; rw?: number[]; heapPages?: number; stack?: number },
): Uint8Array
export declare const LAYOUT: { roStart: number; rwStart(roLength?: number): number; stackEnd: number; argsStart: number }
export declare function aluLoop(iterations: number): Uint8Array
export declare function standardToGp07(bytes: Uint8Array): Uint8Array

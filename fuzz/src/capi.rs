//! Target `capi_calls`: a random sequence of C ABI calls (`pvm-capi` used as a Rust library),
//! with random arguments, on up to four live VMs, NULL, and a host callback that itself calls
//! back into the VM. Nothing may crash, hang or leak across calls; results are not checked
//! beyond "no panic escapes" (every entry point catches its own).

use std::ffi::c_int;
use std::ptr::null_mut;

use pvm::*;

use crate::Bytes;

/// The C-call target's readers.
impl Bytes<'_> {
    fn u64(&mut self) -> u64 {
        (self.u32() as u64) << 32 | self.u32() as u64
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    /// An address: often near the mapped region, sometimes anywhere (near 2^32 too).
    fn addr(&mut self) -> u32 {
        match self.u8() % 4 {
            0 => self.u32(),
            1 => u32::MAX - (self.u8() as u32) * 16,
            _ => 0x10000 + (self.u32() % 0x40000),
        }
    }
    fn len(&mut self) -> u64 {
        match self.u8() % 4 {
            0 => self.u64(),
            1 => self.u32() as u64 % (1 << 20),
            _ => self.u8() as u64 * 64,
        }
    }
}

/// The callback: one nested call chosen by the host-call id, then CONTINUE (0) or something else.
unsafe extern "C" fn host(vm: *mut pvm_vm_t, id: c_int) -> c_int {
    // SAFETY: libpvm passes its own live VM.
    unsafe {
        match id % 5 {
            0 => {
                pvm_set_register(vm, 7, pvm_get_gas(vm));
                0
            }
            1 => {
                pvm_handle_builtin_host_call(vm, id);
                0
            }
            // Re-entrant calls are refused with an error, never executed.
            2 => {
                pvm_resume(vm);
                pvm_step(vm);
                pvm_destroy(vm);
                0
            }
            3 => {
                let _ = pvm_write_ram_bytes_64(vm, 0x10000, id as u64);
                0
            }
            _ => id,
        }
    }
}

const MAX_VMS: usize = 4;
/// The most gas any VM gets (runs stay short).
const MAX_GAS: u64 = 50_000;

pub fn capi_calls(data: &[u8]) {
    let mut d = Bytes(data);
    let mut vms: Vec<*mut pvm_vm_t> = Vec::new();
    let mut ops = 0;
    while !d.0.is_empty() && ops < 200 {
        ops += 1;
        let op = d.u8();
        // Pick a VM: a live one, or NULL.
        let pick = d.u8() as usize;
        let vm = if vms.is_empty() || pick % 8 == 7 {
            null_mut()
        } else {
            vms[pick % vms.len()]
        };
        // SAFETY: `vm` is NULL or a live VM of this sequence (destroyed VMs leave `vms`); every
        // buffer passed is valid for the length passed.
        unsafe {
            match op % 32 {
                0 | 1 if vms.len() < MAX_VMS => {
                    let spec = (d.u8() % 3) as c_int; // 2 is invalid
                    let gas = d.u64() % MAX_GAS;
                    let n = d.u8() as usize * 4;
                    let blob = d.take(n).to_vec();
                    let v = if op % 2 == 0 {
                        pvm_create_from_blob(blob.as_ptr(), blob.len(), spec, gas)
                    } else {
                        let args = [1u8, 2, 3];
                        pvm_create_standard(
                            blob.as_ptr(),
                            blob.len(),
                            (d.u8() % 2) as c_int,
                            args.as_ptr(),
                            args.len(),
                            spec,
                            gas,
                        )
                    };
                    if !v.is_null() {
                        pvm_map_pages(v, 0x10000, 0x10000, 2);
                        vms.push(v);
                    }
                }
                2 => {
                    pvm_execute(vm, d.u32() % 256, (d.u8() % 2) as u32);
                }
                3 => {
                    pvm_resume(vm);
                }
                4 => {
                    pvm_step(vm);
                }
                5 => pvm_set_register(vm, d.u8() as c_int - 2, d.u64()),
                6 => {
                    pvm_get_register(vm, d.u8() as c_int - 2);
                    let mut regs = [0u64; 13];
                    pvm_get_registers_copy(vm, regs.as_mut_ptr());
                    pvm_get_registers(vm);
                }
                7 => pvm_set_gas(vm, d.u64() % MAX_GAS),
                8 => {
                    let (a, l) = (d.addr(), d.len());
                    pvm_map_pages(vm, a, l.min(1 << 26), (d.u8() % 4) as c_int);
                }
                9 => {
                    pvm_unmap_pages(vm, d.addr(), d.len());
                }
                10 => {
                    let a = d.addr();
                    let n = d.u8() as usize * 17;
                    let bytes = d.take(n).to_vec();
                    pvm_write_ram_bytes(vm, a, bytes.as_ptr(), bytes.len());
                    pvm_write_ram_unchecked(vm, a, bytes.as_ptr(), bytes.len());
                }
                11 => {
                    let a = d.addr();
                    let mut buf = vec![0u8; d.u8() as usize * 33];
                    let mut code = 0;
                    pvm_read_ram_bytes(vm, a, buf.as_mut_ptr(), buf.len(), &mut code);
                    pvm_read_ram_unchecked(vm, a, buf.as_mut_ptr(), buf.len());
                    pvm_read_ram_bytes_64(vm, a, &mut code);
                    pvm_read_ram_bytes_8(vm, a, null_mut());
                }
                12 => {
                    pvm_write_ram_bytes_32(vm, d.addr(), d.u32());
                    pvm_write_ram_bytes_16(vm, d.addr(), d.u32() as u16);
                }
                13 => pvm_set_pc(vm, d.u32() % 512),
                14 => {
                    pvm_set_gas_charged(vm, d.u8() as c_int % 3);
                    pvm_get_gas_charged(vm);
                }
                15 if !vm.is_null() => {
                    pvm_destroy(vm);
                    vms.retain(|&v| v != vm);
                }
                16 => {
                    let mut h = [0u8; 32];
                    pvm_hash(vm, h.as_mut_ptr().cast());
                }
                17 => {
                    let n = pvm_output(vm, null_mut(), 0);
                    let mut buf = vec![0u8; n.min(1 << 16)];
                    pvm_output(vm, buf.as_mut_ptr(), buf.len());
                }
                18 => {
                    let n = pvm_dump_state(vm, null_mut(), 0);
                    if n < 1 << 20 {
                        let mut buf = vec![0u8; n + 1];
                        pvm_dump_state(vm, buf.as_mut_ptr().cast(), buf.len());
                    }
                }
                19 => {
                    pvm_set_memory_limit(vm, d.u8() as u64);
                    pvm_memory_limit_reached(vm);
                    pvm_get_memory_limit(vm);
                }
                20 => {
                    pvm_interrupt(vm);
                }
                21 => {
                    // Built-ins only for GP 0.8.0 VMs: GP 0.7.2 `invoke` may legitimately run
                    // its default 5·10^9 inner gas, too slow for a fuzz iteration.
                    if pvm_get_spec(vm) == 0 {
                        pvm_set_builtin_host_calls(vm, (d.u8() % 2) as c_int);
                    }
                    pvm_get_builtin_host_calls(vm);
                    pvm_inner_machine_count(vm);
                }
                22 => {
                    let cb: pvm_host_callback_t = if d.u8() % 2 == 0 { Some(host) } else { None };
                    pvm_set_host_callback(vm, cb);
                }
                23 => {
                    pvm_set_jip7_recording(vm, (d.u8() % 2) as c_int);
                    let n = pvm_jip7_log(vm, null_mut(), 0);
                    if n < 1 << 20 {
                        let mut buf = vec![0u8; n + 1];
                        let n = pvm_jip7_log(vm, buf.as_mut_ptr().cast(), buf.len());
                        if n > 0 && n < buf.len() {
                            let mut report = [0u8; 256];
                            pvm_jip7_replay(
                                buf.as_ptr().cast(),
                                n,
                                0,
                                1,
                                report.as_mut_ptr().cast(),
                                report.len(),
                            );
                        }
                    }
                }
                24 => {
                    let mut pcs = [0u32; 8];
                    let mut costs = [0u32; 8];
                    pvm_block_gas_costs(vm, pcs.as_mut_ptr(), costs.as_mut_ptr(), 8);
                    pvm_block_gas_costs(vm, null_mut(), null_mut(), 0);
                }
                25 => {
                    pvm_set_heap_pointer(vm, d.u32());
                    pvm_get_heap_pointer(vm);
                    pvm_get_page_access(vm, d.addr());
                }
                26 => {
                    pvm_set_memory_bounds(
                        vm,
                        d.addr(),
                        d.addr(),
                        d.addr(),
                        d.addr(),
                        d.addr(),
                        d.addr(),
                        d.addr(),
                        d.addr(),
                    );
                }
                27 => {
                    pvm_get_machine_state(vm);
                    pvm_get_result_code(vm);
                    pvm_is_terminated(vm);
                    pvm_get_pc(vm);
                    pvm_get_fault_address(vm);
                    pvm_get_host_call_id(vm);
                    pvm_get_service_index(vm);
                    pvm_is_child(vm);
                    pvm_last_error();
                    pvm_clear_error();
                }
                28 => {
                    pvm_handle_builtin_host_call(vm, d.u8() as c_int);
                }
                29 => {
                    reg_name(d.u8() as c_int - 2);
                    pvm_opcode_name(d.u8(), d.u8() as c_int % 3);
                    get_opcode_name(d.u8());
                }
                _ => {
                    pvm_get_gas(vm);
                }
            }
        }
    }
    for v in vms {
        // SAFETY: live VMs of this sequence, each destroyed once.
        unsafe { pvm_destroy(v) };
    }
}

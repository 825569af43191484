//! The backend choice reaches inner machines: `machine` builds the inner program on the backend
//! of the program that calls it.

use pvm_core::asm::{standard_program, Assembler, Operands as Ops};
use pvm_core::inner::InnerPvms;
use pvm_core::isa::Opcode as O;
use pvm_core::{Backend, Exit, HostOutcome, Program, ProgramOptions, Spec};

#[test]
fn inner_machines_use_the_outer_programs_backend() {
    let mut inner_code = Assembler::new();
    inner_code.inst(O::Trap, Ops::default());
    let blob = inner_code.finish();
    let mut a = Assembler::new();
    a.inst(O::LoadImm, Ops::reg_imm(7, 0x10000)); // the blob, in the read-only data
    a.inst(O::LoadImm, Ops::reg_imm(8, blob.len() as i64));
    a.inst(O::LoadImm, Ops::reg_imm(9, 0));
    a.inst(O::Ecalli, Ops::imm(9)); // machine
    a.inst(O::Trap, Ops::default());
    let bytes = standard_program(None, &blob, &[], 0, 4096, &a.finish());
    let mut backends = vec![Backend::Interpreter];
    if Backend::recompiler_supported() {
        backends.push(Backend::Recompiler);
    }
    for backend in backends {
        let opts = ProgramOptions {
            spec: Spec::Gp0_8_0,
            backend,
        };
        let program = Program::from_standard(&bytes, false, opts).unwrap();
        assert_eq!(program.backend(), backend);
        let mut vm = program.instantiate(&[]).unwrap();
        vm.set_gas(100_000);
        let mut inner = InnerPvms::new(Spec::Gp0_8_0);
        let exit = vm.run_with_host(|id, ctx| inner.handle(id, ctx).unwrap_or(HostOutcome::Panic));
        assert_eq!(exit, Exit::Panic);
        assert_eq!(vm.registers()[7], 0, "machine 0 created");
        assert_eq!(inner.machine(0).unwrap().program().backend(), backend);
    }
}

#[test]
fn explicit_recompiler_is_supported_or_an_error() {
    let mut a = Assembler::new();
    a.inst(O::Trap, Ops::default());
    let opts = ProgramOptions {
        spec: Spec::Gp0_8_0,
        backend: Backend::Recompiler,
    };
    match Program::from_code(&a.finish(), opts) {
        Ok(p) => {
            assert!(Backend::recompiler_supported());
            assert_eq!(p.backend(), Backend::Recompiler);
        }
        Err(e) => {
            assert!(!Backend::recompiler_supported());
            assert_eq!(e, pvm_core::ProgramError::BackendUnsupported);
        }
    }
}

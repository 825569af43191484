//! The memory-sized host-call gas term of GP 0.8.0 (eq. fnmemgas, GP #517): ⌈L·ℓ/1024⌉, not the
//! ⌊(L·ℓ + 1024)/1024⌋ of a draft of #517 (README, "Host-call gas (GP #517) reviewed").

use pvm_core::inner::{gas, mem_gas};

#[test]
fn mem_gas_is_the_ceiling_of_l_times_len_over_1024() {
    assert_eq!(
        mem_gas(gas::PEEK.1, 0),
        0,
        "a zero-length copy costs the base only"
    );
    assert_eq!(mem_gas(gas::PEEK.1, 1), 1);
    assert_eq!(mem_gas(gas::PEEK.1, 1024), 336);
    assert_eq!(mem_gas(gas::PEEK.1, 1025), 337);
    assert_eq!(mem_gas(gas::MACHINE.1, 4096), 448);
    assert_eq!(mem_gas(u64::MAX, u64::MAX), u64::MAX, "saturates");
    // The I.4.5 values the table in the README lists.
    assert_eq!(
        (gas::GAS, gas::GROW_HEAP, gas::MACHINE, gas::PEEK, gas::POKE),
        (48, (275, 121), (1862, 112), (377, 336), (297, 224))
    );
    assert_eq!(
        (
            gas::PAGES_FREE,
            gas::PAGES_ALLOC,
            gas::PAGES_SET_MODE,
            gas::PAGES_INVALID
        ),
        ((212, 118), (275, 121), (130, 29), 80)
    );
    assert_eq!((gas::INVOKE, gas::EXPUNGE), (968, 335));
}

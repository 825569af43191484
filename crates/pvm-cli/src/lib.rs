//! Library side of the `pvm` command: the conformance-vector runner, shared with the tests.

pub mod bench;
pub mod info;
pub mod tracing;
pub mod vectors;

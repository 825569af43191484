//! The libpvm C ABI. Work in progress.

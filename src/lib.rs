//! Node.js binding of libpvm (napi-rs). Work in progress.

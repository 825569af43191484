//! Gas: block cost computation (GP 0.8.0 A.9 pipeline simulation with the A.10 tables).

pub mod simulator;

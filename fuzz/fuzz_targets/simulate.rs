//! Bytes decoded into a valid program, simulated on every named kernel profile: never a panic, the
//! same answer twice, and the invariants of every observation point (`cases::fuzz::simulate_bytes`).
#![no_main]

use std::sync::OnceLock;

static MODELS: OnceLock<Vec<simulator::KernelModel>> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let models = MODELS.get_or_init(cases::fuzz::models);
    if let Err(e) = cases::fuzz::simulate_bytes(data, models) {
        panic!("{e}");
    }
});

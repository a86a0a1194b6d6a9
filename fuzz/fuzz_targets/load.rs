//! Any bytes as a scenario file: the loader and validator never panic, and what loads is valid and
//! round-trips (`cases::fuzz::load_bytes`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = cases::fuzz::load_bytes(data) {
        panic!("{e}");
    }
});

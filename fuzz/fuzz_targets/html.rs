#![no_main]
//! Fuzz target `html`: see `sluice::fuzzing::html`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sluice_fuzzed::fuzzing::run(sluice_fuzzed::fuzzing::html, data);
});

#![no_main]
//! Fuzz target `privacy`: see `sluice::fuzzing::privacy`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sluice_fuzzed::fuzzing::run(sluice_fuzzed::fuzzing::privacy, data);
});

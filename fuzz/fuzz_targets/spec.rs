#![no_main]
//! Fuzz target `spec`: see `sluice::fuzzing::spec`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sluice_fuzzed::fuzzing::run(sluice_fuzzed::fuzzing::spec, data);
});

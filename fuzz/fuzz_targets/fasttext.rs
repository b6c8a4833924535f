#![no_main]
//! Fuzz target `fasttext`: see `sluice::fuzzing::fasttext`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sluice_fuzzed::fuzzing::run(sluice_fuzzed::fuzzing::fasttext, data);
});

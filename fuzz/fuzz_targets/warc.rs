#![no_main]
//! Fuzz target `warc`: see `sluice::fuzzing::warc`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sluice_fuzzed::fuzzing::run(sluice_fuzzed::fuzzing::warc, data);
});

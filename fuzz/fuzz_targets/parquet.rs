#![no_main]
//! Fuzz target `parquet`: see `sluice::fuzzing::parquet`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sluice_fuzzed::fuzzing::run(sluice_fuzzed::fuzzing::parquet, data);
});

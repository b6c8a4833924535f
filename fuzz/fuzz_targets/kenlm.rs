#![no_main]
//! Fuzz target `kenlm`: see `sluice::fuzzing::kenlm`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sluice_fuzzed::fuzzing::run(sluice_fuzzed::fuzzing::kenlm, data);
});

#![no_main]
//! Fuzz target `tokenizer`: see `sluice::fuzzing::tokenizer`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sluice_fuzzed::fuzzing::run(sluice_fuzzed::fuzzing::tokenizer, data);
});

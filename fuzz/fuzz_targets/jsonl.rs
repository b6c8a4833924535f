#![no_main]
//! Fuzz target `jsonl`: see `sluice::fuzzing::jsonl`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sluice_fuzzed::fuzzing::run(sluice_fuzzed::fuzzing::jsonl, data);
});

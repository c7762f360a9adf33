//! File text to model or error, then `--check` and `-l` on the model.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tasker::fuzzing::loader(data);
});

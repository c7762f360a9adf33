//! A model plus command-line words: `tasks.toml` text, NUL, words by NUL.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tasker::fuzzing::args(data);
});

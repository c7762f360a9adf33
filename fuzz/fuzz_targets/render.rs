//! A template plus values: template text, NUL, values by NUL.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tasker::fuzzing::render(data);
});

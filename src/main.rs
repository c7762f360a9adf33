//! The `tasker` binary: everything lives in the library.
//!
//! The entry point is C's `main`, not std's: std's runtime set-up reads
//! and parses `/proc/self/maps` to place a guard below the main thread's
//! stack, which is a tenth of a millisecond on every start of a program
//! whose whole job may take two (bench/README.md, "start-up"). The two
//! things of that set-up tasker relies on are done by `tasker::start`:
//! closed standard descriptors are opened on /dev/null, and SIGPIPE is
//! ignored so that a closed output is an error tasker handles.
#![no_main]

use std::os::raw::{c_char, c_int};

#[no_mangle]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    tasker::start();
    // std reads the arguments itself (glibc hands them to every program's
    // initialisers), so they are the same as under std's own `main`.
    tasker::main_with_args(std::env::args_os().collect())
}

//! The `tasker` binary: everything lives in the library.
//!
//! The entry point is C's `main`, not std's: std's runtime set-up reads
//! and parses `/proc/self/maps` to place a guard below the main thread's
//! stack, which is a tenth of a millisecond on every start of a program
//! whose whole job may take two (bench/README.md, "start-up"). The two
//! things of that set-up tasker relies on are done by `tasker::start`:
//! closed standard descriptors are opened on /dev/null, and SIGPIPE is
//! ignored so that a closed output is an error tasker handles.
//!
//! The arguments are read from `main`'s own `argv`: glibc also hands them
//! to std's initialiser (so `std::env::args` sees them), but musl does not,
//! and a static musl build would see none.
#![no_main]

use std::ffi::{CStr, OsString};
use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStringExt;

/// The static (musl) build's allocator: musl's own takes one lock per
/// allocation, and the check of a large tree allocates on many threads.
#[cfg(all(target_os = "linux", target_env = "musl"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The C maths library's `pow`, which minijinja's `**` reaches through
/// `f64::powf`. It is tasker's only use of glibc's libm.so.6; defined here,
/// the loader neither finds, maps nor relocates that library at every
/// start (about 330 KiB of resident memory, bench/README.md "start-up").
/// The pure-Rust `libm` is musl's implementation, as accurate as glibc's.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[no_mangle]
extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// The program's entry point, called by the C runtime.
///
/// # Safety
///
/// `argv` holds `argc` pointers, each to a NUL-terminated string that
/// lives as long as the process: what the C runtime passes, and no other
/// caller exists.
#[no_mangle]
unsafe extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    tasker::start();
    let count = usize::try_from(argc).unwrap_or(0);
    let args = (0..count)
        .map(|i| OsString::from_vec(CStr::from_ptr(*argv.add(i)).to_bytes().to_vec()))
        .collect();
    tasker::main_with_args(args)
}

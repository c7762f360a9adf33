//! Link settings for the `tasker` binary.
//!
//! On Linux the binary is linked as a fixed-address executable (`-no-pie`):
//! a position-independent one makes the dynamic loader apply about 10,000
//! relocations at every start, and the pages they write cost some 50 page
//! faults. That was a tenth of a one-step run (bench/README.md, "start-up").
//! Only the final link changes; the crates are compiled as before.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}

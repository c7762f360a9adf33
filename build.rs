//! Link settings for the `tasker` binary (bench/README.md, "start-up").
//!
//! On Linux, in release builds, the code a common run touches first is
//! placed together at the start of the binary's code (`link/startup.ld`,
//! a linker script written by `bench/layout.sh`). Scattered over 7 MiB,
//! that code made a one-step run map 3.8 MiB of the binary; together,
//! 1.5 MiB (the static musl build: 2.1 MB less resident). The script
//! names functions by patterns that outlive a rebuild (v0 symbol names,
//! `.cargo/config.toml`); a name that no longer exists matches nothing.
//!
//! On Linux with glibc, also:
//! - the binary stays position-independent (PIE, the default), so that its
//!   addresses are random at every start: tasker parses data from the
//!   network (cache artifacts, HTTP answers, the queue), and a fixed
//!   address would hand an attacker every one. Its relative relocations
//!   are packed (`-z pack-relative-relocs`, glibc 2.36 and later): the
//!   loader reads a bitmap of about 3 KiB instead of a table of some
//!   10,000 entries (240 KiB) at every start. A fixed-address link
//!   (`-no-pie`) saved about 50 page faults, 0.1-0.3 ms of a one-step
//!   run, and is not worth the randomisation it gives up;
//! - the unwinder comes from gcc's static `libgcc_eh.a` instead of the
//!   shared `libgcc_s.so.1`: one library less for the loader to find, map
//!   and relocate at every start, and no run of its CPU-detection
//!   initialiser (slow under virtualisation). When the compiler cannot say
//!   where that archive is, the shared library is used as before.
//!
//! Only the final link changes; the crates are compiled as before.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" {
        return;
    }
    startup_layout();
    if env != "gnu" {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    if let Some(dir) = static_unwinder_dir() {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=static=gcc_eh");
    }
}

/// Link the release binary with `link/startup.ld`. Not the debug one: its
/// many more sections make matching the patterns cost 4 s per link.
fn startup_layout() {
    if std::env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    // Its patterns name v0 symbols: flags of the builder's own (which
    // replace `.cargo/config.toml`'s) would leave nothing to match, and
    // may choose a linker that takes no such script.
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if !flags.contains("symbol-mangling-version=v0") {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let script = PathBuf::from(dir).join("link/startup.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    let path = script.to_string_lossy();
    // The compiler driver splits `-Wl,` arguments at commas.
    if script.is_file() && !path.contains(',') {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{path}");
    }
}

/// The directory of `libgcc_eh.a`, as the C compiler reports it.
fn static_unwinder_dir() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // Without the archive, the compiler prints the bare name back.
    if !out.status.success() || !path.is_absolute() || !path.is_file() {
        return None;
    }
    path.parent().map(PathBuf::from)
}

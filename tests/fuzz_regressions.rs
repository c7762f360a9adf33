//! Replays, on stable, every input the fuzz targets saved as a crash
//! (`fuzz/regressions/<target>/`) and every seed (`fuzz/seeds/<target>/`)
//! through the same entry points the targets call (docs/fuzzing.md). Each
//! input must end without a panic, within a bound; the loader must give a
//! model or a clean error (exit 2, a message, rendered).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::Duration;

/// Counts the bytes this test binary holds, to see a leak.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const TARGETS: [&str; 3] = ["loader", "args", "render"];

/// Far above the fuzzers' one second, for a debug build on a busy machine
/// (a render that spends its whole budget takes seconds there).
const BOUND: Duration = Duration::from_secs(60);

/// One test at a time: the leak test counts every byte the binary holds.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// What went wrong with `input` on `target`, if anything.
fn replay(target: &'static str, input: &Path) -> Option<String> {
    let data = std::fs::read(input).expect("read a saved input");
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let result = std::panic::catch_unwind(|| match target {
                "loader" => match tasker::fuzzing::loader(&data) {
                    Ok(()) => Ok(()),
                    Err(e) if e.exit_code() == 2 && !e.message.is_empty() => Ok(()),
                    Err(e) => Err(format!("unclean error (exit {}): {e}", e.exit_code())),
                },
                "args" => {
                    tasker::fuzzing::args(&data);
                    Ok(())
                }
                _ => {
                    tasker::fuzzing::render(&data);
                    Ok(())
                }
            });
            let _ = tx.send(result);
        })
        .expect("spawn a replay thread");
    match rx.recv_timeout(BOUND) {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(why))) => Some(why),
        Ok(Err(_)) => Some("panicked".to_string()),
        Err(_) => Some(format!("still running after {BOUND:?}")),
    }
}

fn replay_all(kind: &str) -> usize {
    let mut failures = Vec::new();
    let mut count = 0;
    for target in TARGETS {
        for input in inputs(kind, target) {
            count += 1;
            if let Some(why) = replay(target, &input) {
                failures.push(format!("{target} {}: {why}", input.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    count
}

#[test]
fn saved_crash_inputs_end_cleanly() {
    let _serial = serial();
    replay_all("regressions");
}

#[test]
fn seeds_end_cleanly() {
    let _serial = serial();
    assert!(replay_all("seeds") > 0, "the seed corpora are missing");
}

#[test]
fn no_seed_is_a_saved_regression() {
    let _serial = serial();
    // libFuzzer runs the seeds first and stops at the first that crashes
    // or times out. The nested-range template that spends the whole render
    // budget takes seconds in the fuzz build (over `-timeout=1`): as a seed
    // it ended every render campaign within its first hundred executions.
    // It is kept, and replayed, among the regressions instead.
    let budget = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions/render/timeout-nested-range-budget");
    assert!(
        std::fs::read(&budget)
            .is_ok_and(|data| data.starts_with(b"echo {% for a in range(100000) %}")),
        "{} is missing",
        budget.display()
    );
    for target in TARGETS {
        let kept: Vec<Vec<u8>> = inputs("regressions", target)
            .iter()
            .map(|p| std::fs::read(p).expect("read a saved input"))
            .collect();
        for seed in inputs("seeds", target) {
            let data = std::fs::read(&seed).expect("read a seed");
            assert!(
                !kept.contains(&data),
                "{} is also a saved regression; fuzz/make_seeds.py leaves those out",
                seed.display()
            );
        }
    }
}

#[test]
fn loader_seeds_from_the_examples_load() {
    let _serial = serial();
    // The harness is not vacuous: real files go all the way through.
    let loaded = inputs("seeds", "loader")
        .iter()
        .filter(|p| tasker::fuzzing::loader(&std::fs::read(p).unwrap()).is_ok())
        .count();
    assert!(loaded >= 10, "only {loaded} loader seeds loaded");
}

#[test]
fn loading_text_again_and_again_holds_no_memory() {
    let _serial = serial();
    // The fuzzer's first find: every load kept its parsed TOML tree, so a
    // process that loads many files grew without bound. This text parses
    // to about half a MiB: 500 loads held some 270 MiB.
    let mut text = String::new();
    for i in 0..300 {
        text.push_str(&format!(
            "[tasks.t{i}]\nhelp = \"task {i}\"\nrun = [\"echo {i}\", {{ cmd = [\"true\"] }}]\n"
        ));
    }
    let root = Path::new("/nonexistent");
    drop(tasker::file::load_str(&text, "tasks.toml", root).expect("the text loads"));
    let before = LIVE.load(Ordering::SeqCst);
    for _ in 0..500 {
        drop(tasker::file::load_str(&text, "tasks.toml", root).expect("the text loads"));
    }
    let grown = LIVE.load(Ordering::SeqCst) - before;
    // Other tests of this binary run beside this one and hold a little.
    assert!(grown < 8 << 20, "500 loads hold {grown} more bytes");
}

//! The `tasker` binary: everything lives in the library.

fn main() {
    std::process::exit(tasker::main_with_args(std::env::args_os().collect()));
}

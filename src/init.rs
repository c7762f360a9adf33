//! `tasker --init`: a commented starter file, never over an existing one.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::file::FILE_NAME;

const STARTER: &str = r#"# tasks.toml: the tasks of this directory, run with `tasker NAME`.
# `tasker -l` lists them; `tasker NAME --help` shows one task's arguments.

[settings]
# shell = ["bash", "-eu", "-o", "pipefail", "-c"]   # default ["sh", "-e", "-c"]
# default = "hello"                                # run when no task is named

[vars]
# greeting = "Hello"

[tasks.hello]
help = "Greet someone"
run = "echo Hello, {{ name }}!"    # values are quoted for the shell
[[tasks.hello.args]]
name = "name"
positional = true
default = "world"
help = "Who to greet"

[tasks.stamp]
help = "Skipped while its sources are unchanged and its outputs exist"
sources = ["tasks.toml"]           # globs of the files it reads
outputs = ["build/stamp"]          # globs of the files it makes
run = "mkdir -p build && date -u > build/stamp"

[tasks.check]
help = "An example with dependencies, which run concurrently"
deps = ["hello", "stamp"]
run = [
  "echo all good",
  { cmd = ["date", "-u"] },
]
expect = ["all good"]              # each pattern must match a line, or the run fails
# fail_on = ["(?i)error"]          # a matching line stops the run and fails it
"#;

pub fn write_starter(dir: &Path) -> Result<i32> {
    let path = dir.join(FILE_NAME);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::usage(format!(
                "{} already exists; not overwriting it",
                path.display()
            )))
        }
        Err(e) => {
            return Err(Error::usage(format!(
                "cannot write {}: {e}",
                path.display()
            )))
        }
    };
    file.write_all(STARTER.as_bytes())
        .map_err(|e| Error::usage(format!("cannot write {}: {e}", path.display())))?;
    eprintln!("wrote {}; try `tasker -l`", path.display());
    Ok(0)
}

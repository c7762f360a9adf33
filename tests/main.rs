//! The integration tests: one crate, a module per topic. Each runs the
//! real binary against real `tasks.toml` files in temporary directories
//! (the harness is in `common`).

mod common;

mod args;
mod basics;
mod cli;
mod commands;
mod concurrency;
mod distribute;
mod ecosystem;
mod errors;
mod examples;
mod fresh;
mod fuzz_regressions;
mod import;
mod includes;
mod inspect;
mod limits;
mod listing;
mod load_index;
mod output;
mod processes;
mod reaching;
mod release;
mod remote_cache;
mod services;
mod stopping;
mod structure;
mod templates;
mod timeline;
mod watch;

//! One file per verb: lock, load, check the transition, call the domain modules. No syscalls.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod exec_process;
pub mod info;
pub mod kill;
pub mod pause;
pub mod ps;
pub mod run;
pub mod start;
pub mod state;
pub mod update;

use std::path::PathBuf;

/// Global flags every verb sees.
pub struct Globals {
    pub root: PathBuf,
    /// `--rootless`: Some(true|false), or None for auto.
    pub rootless: Option<bool>,
}

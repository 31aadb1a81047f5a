//! Generated syscall tables, one per seccomp architecture (see scripts/gen-seccomp-tables.py).

pub mod aarch64;
pub mod arm;
pub mod x32;
pub mod x86;
pub mod x86_64;

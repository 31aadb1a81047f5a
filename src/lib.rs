//! The ruse crate: every module of the runtime. The binary (`main.rs`) parses the command
//! line and dispatches into it; the fuzz targets (`fuzz/`) reach the pure parsers through it.
#![deny(unsafe_code)]

pub mod bundle;
pub mod caps;
pub mod cgroups;
pub mod channel;
pub mod cli;
pub mod commands;
pub mod container;
pub mod errors;
pub mod exe;
pub mod hooks;
pub mod init;
pub mod intelrdt;
pub mod launch;
pub mod log;
pub mod namespaces;
pub mod net;
pub mod rootfs;
pub mod rootless;
pub mod seccomp;
pub mod signal;
pub mod state;
pub mod sys;
pub mod userns;

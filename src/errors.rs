//! The few error conditions callers match on, worded with the phrases engines parse
//! (../shared/COMPAT.md): "does not exist", "container not running", "not supported".

use std::fmt;

#[derive(Debug)]
pub enum RuseError {
    NotFound(String),
    Exists(String),
    InvalidId(String),
    /// (operation, current status)
    WrongStatus(&'static str, &'static str),
    NotSupported(String),
}

impl fmt::Display for RuseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuseError::NotFound(id) => write!(f, "container {id:?} does not exist"),
            RuseError::Exists(id) => write!(f, "container with id exists: {id}"),
            RuseError::InvalidId(id) => {
                let shown: String = id.chars().take(64).collect();
                write!(f, "invalid container id {shown:?}: must be 1-200 characters of [A-Za-z0-9_+.-], not . or ..")
            }
            RuseError::WrongStatus("kill" | "pause" | "update" | "events", _) => {
                write!(f, "container not running")
            }
            RuseError::WrongStatus("resume", _) => write!(f, "container not paused"),
            RuseError::WrongStatus(op, status) => {
                write!(f, "cannot {op} a container that is {status}")
            }
            RuseError::NotSupported(what) => write!(f, "not supported: {what}"),
        }
    }
}

impl std::error::Error for RuseError {}

pub fn not_supported(what: impl Into<String>) -> anyhow::Error {
    RuseError::NotSupported(what.into()).into()
}

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
            RuseError::WrongStatus("exec", "paused") => write!(
                f,
                "cannot exec in a paused container (use --ignore-paused to override)"
            ),
            RuseError::WrongStatus("exec", status) => {
                write!(f, "cannot exec in a {status} container")
            }
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

/// An OS error as Go prints it ("no such file or directory"), for the messages engines match
/// verbatim (runc's `exec …` errors); other errors keep Rust's "… (os error N)" form.
pub fn go_os_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let bare = match text.rfind(" (os error ") {
        Some(i) if e.raw_os_error().is_some() => &text[..i],
        _ => &text,
    };
    let mut c = bare.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_os_errors() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(go_os_text(&e), "no such file or directory");
        let e = std::io::Error::from_raw_os_error(libc::ENOEXEC);
        assert_eq!(go_os_text(&e), "exec format error");
        let e = std::io::Error::other("Custom");
        assert_eq!(go_os_text(&e), "custom");
    }
}

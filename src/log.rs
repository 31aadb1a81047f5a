//! The one place that prints: warnings and errors to stderr, and to `--log` (opened for append,
//! since containerd shares one log.json per bundle) as text or runc's JSON lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

struct Sink {
    file: Option<File>,
    json: bool,
    debug: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Sets up logging once; a log file that cannot be opened is reported on stderr only.
pub fn init(path: Option<&Path>, json: bool, debug: bool) {
    let file = path.and_then(
        |p| match OpenOptions::new().create(true).append(true).open(p) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("ruse: open log {}: {e}", p.display());
                None
            }
        },
    );
    let _ = SINK.set(Sink { file, json, debug });
}

fn emit(level: &str, msg: &str, to_stderr: bool) {
    let sink = SINK.get();
    if to_stderr {
        // Only errors go bare: "ruse: <verb> <id>: <error>" is the one line callers parse.
        match level {
            "error" => eprintln!("ruse: {msg}"),
            _ => eprintln!("ruse: {level}: {msg}"),
        }
    }
    let Some(Sink {
        file: Some(f),
        json,
        ..
    }) = sink
    else {
        return;
    };
    let time = crate::state::rfc3339_now();
    let line = if *json {
        serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string()
    } else {
        format!("time=\"{time}\" level={level} msg={msg:?}")
    };
    let _ = writeln!(&*f, "{line}");
}

pub fn error(msg: &str) {
    emit("error", msg, true);
}

/// An error already printed on stderr (clap's usage errors), for the log file only.
pub fn error_to_log_only(msg: &str) {
    emit("error", msg, false);
}

pub fn warn(msg: &str) {
    emit("warning", msg, true);
}

pub fn debug(msg: &str) {
    if SINK.get().is_some_and(|s| s.debug) {
        emit("debug", msg, true);
    }
}

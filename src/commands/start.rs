//! `ruse start`: release a created container's init through exec.sock, then poststart hooks
//! (a failing one stops the container).

use crate::channel::EXEC_MARKER;
use crate::container::Container;
use crate::errors::RuseError;
use crate::state::{Facts, Status, EXEC_SOCK};
use crate::sys::socket;
use anyhow::{anyhow, Context, Result};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;

/// Init answers on the connection: an error text, or EXEC_MARKER right before its execve
/// and then EOF, when the CLOEXEC end closes in the execve (a message after the marker is the
/// execve's error). EOF or a reset without the marker means init died first (a `kill` that
/// raced this `start`): the process never ran, so that is an error, not a start.
fn wait_for_execve(conn: BorrowedFd) -> Result<()> {
    let not_running =
        || anyhow!("container init is not running: it died before the process was started");
    let mut marked = false;
    loop {
        let msg = match socket::recv(conn) {
            Ok((msg, _)) => msg,
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) && !marked => {
                return Err(not_running())
            }
            Err(e) => return Err(e).context("wait for the container process to start"),
        };
        match (msg.as_slice(), marked) {
            ([], true) => return Ok(()),
            ([], false) => return Err(not_running()),
            (m, false) if m == EXEC_MARKER => marked = true,
            (m, _) => return Err(anyhow!("{}", String::from_utf8_lossy(m))),
        }
    }
}

pub fn start(c: &Container, f: &Facts) -> Result<()> {
    let status = f.status(&c.dir);
    if status != Status::Created {
        return Err(RuseError::WrongStatus("start", status.as_str()).into());
    }
    let dir = File::open(&c.dir).with_context(|| format!("open {}", c.dir.display()))?;
    let path = PathBuf::from(format!("/proc/self/fd/{}/{EXEC_SOCK}", dir.as_raw_fd()));
    // A dead init leaves no listener: connect fails at once instead of hanging.
    let conn =
        socket::connect(&path, libc::SOCK_SEQPACKET).context("container init is not running")?;
    std::fs::remove_file(c.dir.join(EXEC_SOCK)).context("remove exec.sock")?;
    wait_for_execve(conn.as_fd())?;
    if let Some(h) = f.config.hooks() {
        let state = f.oci_state(Status::Running);
        // runtime.md lifecycle 9: a failing poststart hook is an error and stops the
        // container (the remaining hooks are skipped); `delete` then destroys it.
        if let Err(e) = crate::hooks::run(
            "poststart",
            h.poststart().as_deref().unwrap_or_default(),
            &state,
        ) {
            let killed = match super::delete::kill_and_wait(f) {
                Ok(()) => "the container was killed".to_string(),
                Err(k) => format!("killing the container: {k:#}"),
            };
            return Err(anyhow!("{e:#} ({killed})"));
        }
    }
    Ok(())
}

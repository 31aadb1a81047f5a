//! `ruse start`: release a created container's init through exec.sock, then poststart hooks
//! (a failing one stops the container).

use crate::container::Container;
use crate::errors::RuseError;
use crate::state::{Facts, Status, EXEC_SOCK};
use crate::sys::socket;
use anyhow::{anyhow, Context, Result};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

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
    // EOF means the CLOEXEC end closed in a successful execve; a message is init's error.
    let (msg, _) = socket::recv(conn.as_fd()).context("wait for the container process to start")?;
    if !msg.is_empty() {
        return Err(anyhow!("{}", String::from_utf8_lossy(&msg)));
    }
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

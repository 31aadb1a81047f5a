//! Runs OCI hooks (config.md "POSIX-platform Hooks"): `path` executed with `args` (args[0] is
//! argv[0]) and exactly `env` (the runtime's own when absent, as runc), the container state as
//! JSON on stdin, killed with everything it started after `timeout` seconds. Which process
//! calls `run` decides the namespaces the hook runs in.

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::Hook;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `hooks` in order; the first failure stops the rest and is returned.
pub fn run(kind: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<()> {
    let input = state.to_string();
    let cwd = cwd_for(kind, state);
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, &input, cwd.as_deref())
            .with_context(|| format!("{kind} hook #{i} {}", h.path().display()))?;
    }
    Ok(())
}

/// Runs hooks whose failure the spec only wants logged (poststart, poststop).
/// Every hook runs; failures are logged as warnings.
pub fn run_warn(kind: &str, hooks: &[Hook], state: &serde_json::Value) {
    let input = state.to_string();
    let cwd = cwd_for(kind, state);
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, &input, cwd.as_deref()) {
            crate::log::warn(&format!("{kind} hook #{i} {}: {e:#}", h.path().display()));
        }
    }
}

/// Hooks in the runtime's namespaces run in the bundle directory, as runc's do (runc chdirs
/// there); the container's own (createContainer, startContainer) where init is.
fn cwd_for(kind: &str, state: &serde_json::Value) -> Option<std::path::PathBuf> {
    if matches!(kind, "createContainer" | "startContainer") {
        return None;
    }
    let b = std::path::PathBuf::from(state["bundle"].as_str()?);
    b.is_dir().then_some(b)
}

fn run_one(h: &Hook, input: &str, cwd: Option<&std::path::Path>) -> Result<()> {
    let args = h.args().as_deref().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(a0) = args.first() {
        cmd.arg0(a0);
    }
    cmd.args(args.iter().skip(1));
    // `env` given: exactly that; absent: the runtime's own, as runc (Go's nil Cmd.Env).
    if let Some(env) = h.env() {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    // Its own process group, so that a timeout takes whatever the hook started too.
    cmd.process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().context("start")?;
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    // The state is written from a thread: a hook that never reads a state larger than the
    // pipe buffer must still meet its timeout. A hook that does not read it is not an error.
    let writer = child.stdin.take().map(|mut stdin| {
        let input = input.to_string();
        std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        })
    });
    let pgid = child.id() as libc::pid_t;
    let status = loop {
        if let Some(st) = child.try_wait().context("wait")? {
            break Ok(st);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = crate::sys::process::kill(-pgid, libc::SIGKILL);
            let _ = child.wait();
            break Err(anyhow!("timed out after {}s", h.timeout().unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // The hook is gone; the writer has returned unless something the hook left running
    // holds the pipe open without reading: it is not waited for (execve or exit ends it).
    if let Some(w) = writer.filter(|w| w.is_finished()) {
        let _ = w.join();
    }
    let status = status?;
    if !status.success() {
        bail!("{status}");
    }
    Ok(())
}

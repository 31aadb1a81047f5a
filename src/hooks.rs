//! Runs OCI hooks (config.md "POSIX-platform Hooks"): `path` executed with `args` (args[0] is
//! argv[0]) and exactly `env`, the container state as JSON on stdin, killed after `timeout`
//! seconds. Which process calls `run` decides the namespaces the hook runs in.

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::Hook;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `hooks` in order; the first failure stops the rest and is returned.
pub fn run(kind: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<()> {
    let input = state.to_string();
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, &input).with_context(|| format!("{kind} hook #{i} {}", h.path().display()))?;
    }
    Ok(())
}

/// Runs hooks whose failure the spec only wants logged (poststart, poststop).
/// Every hook runs; failures are logged as warnings.
pub fn run_warn(kind: &str, hooks: &[Hook], state: &serde_json::Value) {
    let input = state.to_string();
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, &input) {
            crate::log::warn(&format!("{kind} hook #{i} {}: {e:#}", h.path().display()));
        }
    }
}

fn run_one(h: &Hook, input: &str) -> Result<()> {
    let args = h.args().as_deref().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(a0) = args.first() {
        cmd.arg0(a0);
    }
    cmd.args(args.iter().skip(1)).env_clear();
    for kv in h.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().context("start")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error (EPIPE).
        let _ = stdin.write_all(input.as_bytes());
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let status = loop {
        if let Some(st) = child.try_wait().context("wait")? {
            break st;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {}s", h.timeout().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if !status.success() {
        return Err(anyhow!("{status}"));
    }
    Ok(())
}

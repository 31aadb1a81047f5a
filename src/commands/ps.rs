//! `ruse ps`: the processes of a container, from its cgroup (or, without one, its pid
//! namespace). `--format json` prints their host
//! pids as a JSON array; the table runs ps(1) with the given options (default `-ef`) and keeps
//! the header and the lines of those pids, as runc does.

use super::Globals;
use crate::cli::ListFormat;
use crate::container::{Container, Lock};
use anyhow::{bail, Context, Result};
use std::io::Write;

pub fn ps(g: &Globals, format: ListFormat, args: &[String]) -> Result<()> {
    let (id, ps_args) = args.split_first().context("ps: missing container id")?;
    let pids = {
        let (c, f) = Container::open_existing(&g.root, id, Lock::Shared)?;
        if !f.cgroup.dirs.is_empty() {
            crate::cgroups::pids(&f.cgroup)
        } else if f.status(&c.dir) == crate::state::Status::Stopped {
            // Init is gone and its pid may be anyone's now.
            Vec::new()
        } else if super::kill::own_pid_ns(&f) {
            // No cgroup (a rootless container where none is delegated): its pid namespace.
            super::kill::pid_ns_members(&f)?
        } else {
            bail!("container has no cgroup and no pid namespace of its own to list processes from");
        }
    };
    let mut out = std::io::stdout().lock();
    if format == ListFormat::Json {
        writeln!(out, "{}", serde_json::to_string(&pids)?)?;
        return Ok(());
    }
    let default = ["-ef".to_string()];
    let ps_args = if ps_args.is_empty() {
        &default[..]
    } else {
        ps_args
    };
    let o = std::process::Command::new("ps")
        .args(ps_args)
        .output()
        .context("run ps")?;
    let text = String::from_utf8_lossy(&o.stdout);
    if !o.status.success() {
        bail!(
            "ps {}: {}{}",
            ps_args.join(" "),
            text,
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    for line in filter(&text, &pids)? {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The header and the lines whose PID column is one of `pids` (pure).
pub fn filter<'a>(text: &'a str, pids: &[i32]) -> Result<Vec<&'a str>> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("couldn't find PID field in ps output");
    };
    let mut out = vec![header];
    for l in lines.filter(|l| !l.trim().is_empty()) {
        let pid: i32 = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("unable to parse pid in ps line {l:?}"))?;
        if pids.contains(&pid) {
            out.push(l);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn keeps_header_and_container_lines() {
        let t = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 init\nroot 42 1 0 10:00 ? 00:00:00 sleep 9\n";
        assert_eq!(
            filter(t, &[42]).unwrap(),
            [t.lines().next().unwrap(), t.lines().nth(2).unwrap()]
        );
        assert!(filter("USER CMD\nx y\n", &[1]).is_err());
        assert!(filter("PID CMD\nnot-a-pid y\n", &[1]).is_err());
    }
}

//! `ruse events`: the container's resource statistics in runc's JSON (`{"type":"stats",…}`),
//! once with `--stats`, or every `--interval` together with `{"type":"oom"}` events as the
//! kernel reports them, until the container stops. Single-threaded: one poll on init's pidfd
//! and the OOM notification fd, timed to the next statistics tick. No lock is held while
//! streaming, so the container can still be deleted.

use super::Globals;
use crate::container::{Container, Lock};
use crate::errors::RuseError;
use crate::state::Status;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// runc's `types.Event`, fields in its order.
#[derive(serde::Serialize)]
struct Event<'a, T: serde::Serialize> {
    #[serde(rename = "type")]
    typ: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

pub fn events(g: &Globals, id: &str, interval: &str, once: bool) -> Result<()> {
    let every = parse_duration(interval).with_context(|| format!("--interval {interval:?}"))?;
    if every.is_zero() {
        bail!("--interval {interval:?}: duration interval must be greater than 0");
    }
    let (c, f) = Container::open_existing(&g.root, id, Lock::Shared)?;
    if f.status(&c.dir) == Status::Stopped {
        return Err(RuseError::WrongStatus("events", "stopped").into());
    }
    if f.cgroup.dirs.is_empty() && f.cgroup.rdt.is_none() {
        bail!("container has no cgroup to report on (a rootless container gets one only where a cgroup is delegated)");
    }
    drop(c);
    let mut out = std::io::stdout().lock();
    let stats = |out: &mut dyn Write| -> Result<()> {
        let data = Some(crate::cgroups::stats::read(&f.cgroup));
        let ev = Event {
            typ: "stats",
            id,
            data,
        };
        writeln!(out, "{}", serde_json::to_string(&ev)?).context("write to stdout")
    };
    if once {
        return stats(&mut out);
    }
    let Some(pidfd) = super::kill::init_pidfd(&f)? else {
        return Err(RuseError::WrongStatus("events", "stopped").into());
    };
    let mut oom = crate::cgroups::oom::watch(&f.cgroup)?;
    let mut next = Instant::now() + every;
    loop {
        let mut fds = vec![pidfd.as_raw_fd()];
        fds.extend(oom.as_ref().map(|w| w.fd()));
        let wait = next.saturating_duration_since(Instant::now());
        let ready =
            crate::sys::process::poll_read(&fds, wait.as_millis().min(i32::MAX as u128) as i32)?;
        if let Some(w) = oom.as_mut().filter(|_| ready.get(1) == Some(&true)) {
            if w.take()? > 0 {
                let ev: Event<()> = Event {
                    typ: "oom",
                    id,
                    data: None,
                };
                writeln!(out, "{}", serde_json::to_string(&ev)?).context("write to stdout")?;
            }
        }
        if ready[0] {
            // Init exited: the container stopped, and with it the events.
            return Ok(());
        }
        if Instant::now() >= next {
            stats(&mut out)?;
            next += every;
        }
    }
}

/// Go's `time.ParseDuration`: `300ms`, `1.5h`, `2h45m`, `-1s`; units ns, us (µs), ms, s, m, h.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        bail!("invalid duration {s:?}");
    }
    let mut nanos = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_len]
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid duration {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => bail!("missing unit in duration {s:?}"),
            u => bail!("unknown unit {u:?} in duration {s:?}"),
        };
        rest = &rest[unit_len..];
        nanos += num * scale;
    }
    if neg && nanos > 0.0 {
        bail!("duration {s:?} is negative");
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::parse_duration as p;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(p("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(p("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(p("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(p("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(p("10us").unwrap(), Duration::from_micros(10));
        assert_eq!(p("10µs").unwrap(), Duration::from_micros(10));
        assert_eq!(p("0").unwrap(), Duration::ZERO);
        for bad in ["", "5", "5x", "s", "-1s", "1..2s", "--1s"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}

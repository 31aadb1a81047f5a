//! What ruse knows about a container on disk: only facts (init's pid and its start time, the
//! bundle, the config), never a stored status. The status is derived from the facts and the
//! kernel each time it is asked for, as crun does, so it cannot go stale.

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const OCI_VERSION: &str = "1.3.0";
/// Present while the container is created and not yet started: `start` connects to it.
pub const EXEC_SOCK: &str = "exec.sock";

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Facts {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22): a pid
    /// reused by another process has another start time.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub config: Spec,
    #[serde(default)]
    pub cgroup: crate::cgroups::Cgroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    /// Frozen by `pause` (the freezer of the container's cgroup says so).
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// Start time of a live (non-zombie) process, or None when it is gone or a zombie.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// Parses `/proc/<pid>/stat`: the comm field may contain spaces and ')', so fields are
/// counted from the last ')'. Field 3 is the state, field 22 the start time.
fn parse_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | None) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl Facts {
    /// True while the very process that was init still runs (not a reused pid).
    pub fn init_alive(&self) -> bool {
        process_start_time(self.pid) == Some(self.start_time)
    }

    pub fn status(&self, dir: &Path) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if crate::cgroups::freeze::state(&self.cgroup) == crate::cgroups::freeze::Freezer::Frozen {
            return Status::Paused;
        }
        if dir.join(EXEC_SOCK).exists() {
            return Status::Created;
        }
        Status::Running
    }

    /// The OCI state JSON (runtime.md "State"), with runc's extra fields.
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        let annotations: HashMap<String, String> =
            self.config.annotations().clone().unwrap_or_default();
        serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "status": status.as_str(),
            "pid": pid,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
            "annotations": annotations,
        })
    }
}

/// The state passed to hooks before the facts are saved (status "creating").
pub fn creating_state(
    id: &str,
    pid: i32,
    bundle: &Path,
    annotations: &HashMap<String, String>,
) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": OCI_VERSION, "id": id, "status": "creating", "pid": pid,
        "bundle": bundle, "annotations": annotations,
    })
}

/// Now as RFC 3339 UTC with nanoseconds, as runc writes `created`.
pub fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_handles_odd_comm() {
        let s = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10";
        assert_eq!(parse_stat(s), Some(123456));
        let z = "42 (x) Z 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10";
        assert_eq!(parse_stat(z), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_392_000, 0), "2026-11-23T00:00:00.000000000Z");
    }

    #[test]
    fn own_process_is_alive() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert_eq!(process_start_time(0), None);
        assert_eq!(process_start_time(i32::MAX), None);
    }
}

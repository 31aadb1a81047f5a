//! User-namespace id maps: validated and formatted here (pure), checked against what the
//! caller may map, and written by the parent from outside the new namespace (runtime process,
//! host namespaces).
//!
//! The kernel lets a process outside write `/proc/<pid>/{uid,gid}_map` when it holds
//! CAP_SETUID/CAP_SETGID over the parent namespace (root), or when the map is one range of
//! size 1 naming the writer's own id — and then, for gid_map, only after `setgroups` is set to
//! "deny". Anything else an unprivileged user needs goes through the setuid helpers
//! `newuidmap`/`newgidmap` (Debian package `uidmap`), which allow the ranges listed for the
//! user in `/etc/subuid` and `/etc/subgid`.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxIdMapping;
use std::process::Command;

/// Rejects zero-size ranges, overflows and ranges that overlap inside or outside.
pub fn check_ranges(field: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    if maps.len() > 340 {
        bail!("{field}: at most 340 ranges are allowed by the kernel");
    }
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            bail!("{field}[{i}]: size must be greater than zero");
        }
        for (what, start) in [("containerID", m.container_id()), ("hostID", m.host_id())] {
            if start.checked_add(m.size()).is_none() {
                bail!("{field}[{i}]: {what} + size overflows 32 bits");
            }
        }
        for (j, o) in maps.iter().enumerate().take(i) {
            let overlap = |a: u32, b: u32| a < b + o.size() && b < a + m.size();
            if overlap(m.container_id(), o.container_id()) {
                bail!("{field}[{i}]: containerID range overlaps {field}[{j}]");
            }
            if overlap(m.host_id(), o.host_id()) {
                bail!("{field}[{i}]: hostID range overlaps {field}[{j}]");
            }
        }
    }
    Ok(())
}

/// The `/proc/<pid>/uid_map` text: one `inside outside count` line per range.
pub fn format_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Who the caller is, as far as id maps go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub euid: u32,
    pub egid: u32,
    /// The user's name, as `/etc/subuid` may list it.
    pub name: String,
}

impl Caller {
    pub fn current() -> Caller {
        let euid = crate::sys::process::geteuid();
        Caller {
            euid,
            egid: crate::sys::process::getegid(),
            // Only an unprivileged caller's name is looked up (in /etc/subuid): root's create
            // does not read /etc/passwd for it.
            name: if euid == 0 {
                "root".into()
            } else {
                user_name(euid)
            },
        }
    }
}

/// The name `/etc/passwd` gives `uid` (its number when none: subuid files accept both).
pub fn user_name(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

/// uid or gid: which map, its helper and its subordinate-id file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Uid,
    Gid,
}

impl Kind {
    fn field(self) -> &'static str {
        match self {
            Kind::Uid => "linux.uidMappings",
            Kind::Gid => "linux.gidMappings",
        }
    }
    fn helper(self) -> &'static str {
        match self {
            Kind::Uid => "newuidmap",
            Kind::Gid => "newgidmap",
        }
    }
    fn subid_file(self) -> &'static str {
        match self {
            Kind::Uid => "/etc/subuid",
            Kind::Gid => "/etc/subgid",
        }
    }
    fn proc_file(self) -> &'static str {
        match self {
            Kind::Uid => "uid_map",
            Kind::Gid => "gid_map",
        }
    }
}

/// How one map gets written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Straight into /proc/<pid>/*_map (root, or an unprivileged user's own id alone).
    Direct,
    /// Through the setuid helper (newuidmap/newgidmap).
    Helper,
}

/// The method for a map of `kind` written by `caller` (pure).
pub fn method(caller: &Caller, kind: Kind, maps: &[LinuxIdMapping]) -> Method {
    let own = match kind {
        Kind::Uid => caller.euid,
        Kind::Gid => caller.egid,
    };
    let self_only = matches!(maps, [m] if m.size() == 1 && m.host_id() == own);
    if caller.euid == 0 || self_only {
        Method::Direct
    } else {
        Method::Helper
    }
}

/// The `start count` ranges `/etc/subuid`-format `text` grants `name` (or its number `id`).
pub fn parse_subids(text: &str, name: &str, id: u32) -> Vec<(u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().splitn(3, ':');
            let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
            if owner != name && owner != id.to_string() {
                return None;
            }
            Some((start.parse().ok()?, count.parse().ok()?))
        })
        .filter(|&(_, count)| count > 0)
        .collect()
}

/// True when `[start, start+count)` lies inside the union of `ranges` (adjacent entries may
/// be joined, as newuidmap does). A range's end saturates: `/etc/subuid` may give any u64.
fn covered(start: u64, count: u64, ranges: &[(u64, u64)]) -> bool {
    let end = start + count;
    let mut at = start;
    while at < end {
        match ranges
            .iter()
            .find(|&&(s, c)| s <= at && at < s.saturating_add(c))
        {
            Some(&(s, c)) => at = s.saturating_add(c),
            None => return false,
        }
    }
    true
}

/// The host ids a caller may map: its own id alone (a range of size 1, for an unprivileged
/// caller), and `ranges` (`start count`) that `source` grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub own: Option<u32>,
    pub ranges: Vec<(u64, u64)>,
    pub source: String,
}

/// Checks every host range of `maps` against what `grant` allows (pure).
pub fn check_granted(
    caller: &Caller,
    kind: Kind,
    maps: &[LinuxIdMapping],
    grant: &Grant,
) -> Result<()> {
    let what = match kind {
        Kind::Uid => "uid",
        Kind::Gid => "gid",
    };
    for (i, m) in maps.iter().enumerate() {
        let (start, size) = (m.host_id() as u64, m.size() as u64);
        let own = grant.own.is_some_and(|o| size == 1 && start == o as u64);
        if own || covered(start, size, &grant.ranges) {
            continue;
        }
        let alone = match grant.own {
            Some(o) => format!("its own {what} {o} alone, or "),
            None => String::new(),
        };
        bail!(
            "{}[{i}]: host {what}s {start}-{} are not {}'s to map: it may map {alone}ranges {} grants it",
            kind.field(),
            start + size - 1,
            caller.name,
            grant.source
        );
    }
    Ok(())
}

/// What `caller` may map: as root in the initial user namespace anything (None); as root in
/// another one the ids its own namespace maps; otherwise its own id and its subordinate ids.
pub fn grant(caller: &Caller, kind: Kind) -> Option<Grant> {
    if caller.euid == 0 {
        if !in_user_namespace() {
            return None;
        }
        let file = format!("/proc/self/{}", kind.proc_file());
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        return Some(Grant {
            own: None,
            ranges: parse_proc_map(&text),
            source: file,
        });
    }
    let id = match kind {
        Kind::Uid => caller.euid,
        Kind::Gid => caller.egid,
    };
    let text = std::fs::read_to_string(kind.subid_file()).unwrap_or_default();
    Some(Grant {
        own: Some(id),
        ranges: parse_subids(&text, &caller.name, id),
        source: kind.subid_file().to_string(),
    })
}

/// The `inside count` ranges of a `/proc/<pid>/uid_map` text: the ids usable in that namespace.
pub fn parse_proc_map(text: &str) -> Vec<(u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .map(|w| w.parse().ok())
                .collect::<Option<_>>()?;
            (f.len() == 3).then(|| (f[0], f[2]))
        })
        .collect()
}

/// Checks, before anything is touched, that the caller may write both maps: every host range
/// is granted to it, and the helper a map needs is installed.
pub fn check_owned(caller: &Caller, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<()> {
    for (kind, maps) in [(Kind::Uid, uid), (Kind::Gid, gid)] {
        if let Some(g) = grant(caller, kind) {
            check_granted(caller, kind, maps, &g)?;
        }
        if method(caller, kind, maps) == Method::Helper && which(kind.helper()).is_none() {
            bail!(
                "{}: mapping more than your own id needs {} (Debian package uidmap), not found in PATH",
                kind.field(),
                kind.helper()
            );
        }
    }
    Ok(())
}

fn which(prog: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Writes the maps of the child `pid` from outside its namespace: directly, or through
/// newuidmap/newgidmap. `setgroups` is denied only for a direct gid map by an unprivileged
/// caller, where the kernel requires it.
pub fn write_maps(
    caller: &Caller,
    pid: i32,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
) -> Result<()> {
    for (kind, maps) in [(Kind::Uid, uid), (Kind::Gid, gid)] {
        let file = format!("/proc/{pid}/{}", kind.proc_file());
        match method(caller, kind, maps) {
            Method::Direct => {
                if kind == Kind::Gid && caller.euid != 0 {
                    std::fs::write(format!("/proc/{pid}/setgroups"), "deny").context(
                        "write setgroups \"deny\" (needed before an unprivileged gid_map)",
                    )?;
                }
                std::fs::write(&file, format_map(maps))
                    .with_context(|| format!("{}: write {file}", kind.field()))?;
            }
            Method::Helper => run_helper(kind, pid, maps)?,
        }
    }
    Ok(())
}

fn run_helper(kind: Kind, pid: i32, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut cmd = Command::new(kind.helper());
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| {
            format!(
                "{}: run {} (Debian package uidmap)",
                kind.field(),
                kind.helper()
            )
        })?;
    if !out.status.success() {
        bail!(
            "{}: {} {pid}: {} ({})",
            kind.field(),
            kind.helper(),
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        );
    }
    Ok(())
}

/// True when this process runs in a user namespace other than the initial one (whose uid_map
/// maps the whole 32-bit range onto itself).
pub fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(m) => m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"],
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    fn m(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .unwrap()
    }

    fn user(id: u32) -> Caller {
        Caller {
            euid: id,
            egid: id,
            name: "alice".into(),
        }
    }

    #[test]
    fn ranges() {
        assert!(check_ranges("u", &[m(0, 1000, 1), m(1, 100000, 65536)]).is_ok());
        assert!(check_ranges("u", &[m(0, 1000, 0)])
            .unwrap_err()
            .to_string()
            .contains("size"));
        assert!(check_ranges("u", &[m(0, 1000, 10), m(5, 5000, 10)])
            .unwrap_err()
            .to_string()
            .contains("containerID"));
        assert!(check_ranges("u", &[m(0, 1000, 10), m(50, 1005, 10)])
            .unwrap_err()
            .to_string()
            .contains("hostID"));
        assert!(check_ranges("u", &[m(u32::MAX, 0, 2)]).is_err());
        assert_eq!(
            format_map(&[m(0, 1000, 1), m(1, 100000, 65536)]),
            "0 1000 1\n1 100000 65536\n"
        );
    }

    #[test]
    fn methods() {
        let own = [m(0, 1000, 1)];
        assert_eq!(method(&user(0), Kind::Uid, &[m(0, 5, 100)]), Method::Direct);
        assert_eq!(method(&user(1000), Kind::Uid, &own), Method::Direct);
        assert_eq!(method(&user(1000), Kind::Gid, &own), Method::Direct);
        assert_eq!(
            method(&user(1000), Kind::Uid, &[m(0, 1000, 2)]),
            Method::Helper
        );
        assert_eq!(method(&user(1001), Kind::Uid, &own), Method::Helper);
        assert_eq!(
            method(&user(1000), Kind::Uid, &[m(0, 1000, 1), m(1, 100000, 10)]),
            Method::Helper
        );
    }

    #[test]
    fn subid_files() {
        let text =
            "bob:100000:65536\nalice:200000:65536\n# x\n1000:300000:10\nalice:bad:1\nalice:5:0\n";
        assert_eq!(
            parse_subids(text, "alice", 1000),
            vec![(200000, 65536), (300000, 10)]
        );
        let g = |ranges| Grant {
            own: Some(1000),
            ranges,
            source: "/etc/subuid".into(),
        };
        let sub = g(parse_subids(text, "alice", 1000));
        let a = user(1000);
        let ok = [m(0, 1000, 1), m(1, 200000, 65536)];
        assert!(check_granted(&a, Kind::Uid, &ok, &sub).is_ok());
        // Adjacent entries join.
        let two = [("alice", 10, 5), ("alice", 15, 5)]
            .iter()
            .map(|(n, s, c)| format!("{n}:{s}:{c}\n"))
            .collect::<String>();
        let sub2 = g(parse_subids(&two, "alice", 1000));
        assert!(check_granted(&a, Kind::Uid, &[m(0, 10, 10)], &sub2).is_ok());
        assert!(check_granted(&a, Kind::Uid, &[m(0, 10, 11)], &sub2).is_err());
        let e = check_granted(&a, Kind::Uid, &[m(0, 1000, 1), m(1, 100000, 10)], &sub)
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.uidMappings[1]"), "{e}");
        assert!(e.contains("100000-100009"), "{e}");
        assert!(e.contains("/etc/subuid"), "{e}");
        // Its own id, but as part of a bigger range: not its own alone.
        let none = Grant {
            own: Some(1000),
            ranges: vec![],
            source: "/etc/subgid".into(),
        };
        let e = check_granted(&a, Kind::Gid, &[m(0, 1000, 2)], &none)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux.gidMappings[0]") && e.contains("/etc/subgid"),
            "{e}"
        );
        // Root in a user namespace: what its own uid_map maps.
        let r = Grant {
            own: None,
            ranges: parse_proc_map(
                "         0       1000          1\n         1     100000      65536\n",
            ),
            source: "/proc/self/uid_map".into(),
        };
        assert_eq!(r.ranges, vec![(0, 1), (1, 65536)]);
        assert!(check_granted(&user(0), Kind::Uid, &[m(0, 0, 65537)], &r).is_ok());
        let e = check_granted(&user(0), Kind::Uid, &[m(0, 0, 65538)], &r)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/proc/self/uid_map") && !e.contains("alone"),
            "{e}"
        );
    }

    #[test]
    fn grants_ending_past_u64_do_not_overflow() {
        // Found by fuzz/fuzz_targets/user.rs: `start + count` of a subuid line overflowed.
        let text = "alice:1:18446744073709551615\nalice:18446744073709551615:5\n";
        let sub = Grant {
            own: Some(1000),
            ranges: parse_subids(text, "alice", 1000),
            source: "/etc/subuid".into(),
        };
        assert_eq!(sub.ranges.len(), 2);
        let a = user(1000);
        assert!(check_granted(&a, Kind::Uid, &[m(0, 5, 1), m(1, 100000, 65536)], &sub).is_ok());
        assert!(check_granted(&a, Kind::Uid, &[m(0, 0, 1)], &sub).is_err());
    }
}

//! Which cgroup hierarchies this host has and where ruse itself sits in them, read from
//! `/proc/self/mountinfo` and `/proc/self/cgroup` in the calling process (host namespaces).
//! Parsing is pure; `detect` only reads those two files and the v2 root's
//! `cgroup.controllers`.
//!
//! Three layouts exist: **v1** (one mount per controller set), **v2** (cgroup2 mounted at
//! `/sys/fs/cgroup`: one tree, every controller) and **hybrid** (v1 controllers plus a cgroup2
//! tree, usually at `/sys/fs/cgroup/unified`, holding whatever controllers v1 does not bind).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub const ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    V1,
    Hybrid,
    V2,
}

/// One mounted hierarchy and ruse's own cgroup in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    pub v2: bool,
    /// v1: the controllers bound to it (`name=systemd` for named ones); v2: the controllers
    /// its root offers (`cgroup.controllers`).
    pub controllers: Vec<String>,
    /// ruse's own cgroup, relative to the mount.
    pub own: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub mode: Mode,
    pub hierarchies: Vec<Hierarchy>,
}

/// A cgroup or cgroup2 line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgMount {
    pub root: String,
    pub dir: PathBuf,
    pub v2: bool,
    pub superopts: Vec<String>,
}

/// The visible cgroup and cgroup2 mounts of a mountinfo text, in order. A mount with a later
/// mount on or above its mount point is hidden (a private cgroup2 over /sys/fs/cgroup hides
/// the host's v1 hierarchies), so it is left out.
pub fn parse_mountinfo(text: &str) -> Vec<CgMount> {
    let mut all: Vec<(PathBuf, Option<CgMount>)> = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let dir = PathBuf::from(unescape(pre[4]));
        let v2 = match post[0] {
            "cgroup2" => Some(true),
            "cgroup" => Some(false),
            _ => None,
        };
        let m = v2.map(|v2| CgMount {
            root: unescape(pre[3]),
            dir: dir.clone(),
            v2,
            superopts: post[2].split(',').map(str::to_string).collect(),
        });
        all.push((dir, m));
    }
    let mut out = Vec::new();
    for (i, (dir, m)) in all.iter().enumerate() {
        let hidden = all[i + 1..].iter().any(|(later, _)| dir.starts_with(later));
        if let Some(m) = m.as_ref().filter(|_| !hidden) {
            out.push(m.clone());
        }
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// (controllers, path) per line of `/proc/self/cgroup`; the v2 line has no controllers.
pub fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            let ctrls = c
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            Some((ctrls, p.to_string()))
        })
        .collect()
}

/// Puts the facts together (pure). `v2_controllers` is the content of the cgroup2 root's
/// `cgroup.controllers`.
pub fn build(
    mounts: &[CgMount],
    own: &[(Vec<String>, String)],
    v2_controllers: &str,
) -> Result<Layout> {
    let unified_root = mounts.iter().any(|m| m.v2 && m.dir == Path::new(ROOT));
    let mode = match (unified_root, mounts.iter().any(|m| !m.v2)) {
        (true, _) => Mode::V2,
        (false, true) if mounts.iter().any(|m| m.v2) => Mode::Hybrid,
        (false, true) => Mode::V1,
        (false, false) if mounts.iter().any(|m| m.v2) => Mode::V2,
        (false, false) => bail!("no cgroup hierarchy is mounted (see /proc/self/mountinfo)"),
    };
    let mut hierarchies = Vec::new();
    for (ctrls, path) in own {
        let v2 = ctrls.is_empty();
        if mode == Mode::V2 && !v2 || mode == Mode::V1 && v2 {
            continue;
        }
        // Bind mounts of a hierarchy may appear more than once: the first one is used.
        let found = mounts
            .iter()
            .find(|m| m.v2 == v2 && (v2 || ctrls.iter().all(|c| m.superopts.contains(c))));
        let Some(m) = found else { continue };
        let rel = path
            .strip_prefix(m.root.trim_end_matches('/'))
            .filter(|r| r.is_empty() || r.starts_with('/'))
            .with_context(|| {
                format!(
                    "cgroup {path} is outside the root {} of the hierarchy mounted on {}",
                    m.root,
                    m.dir.display()
                )
            })?;
        let controllers = if v2 {
            v2_controllers
                .split_whitespace()
                .map(str::to_string)
                .collect()
        } else {
            ctrls.clone()
        };
        hierarchies.push(Hierarchy {
            mount: m.dir.clone(),
            v2,
            controllers,
            own: PathBuf::from(rel.trim_start_matches('/')),
        });
    }
    if hierarchies.is_empty() {
        bail!("this process is in no mounted cgroup hierarchy (see /proc/self/cgroup)");
    }
    Ok(Layout { mode, hierarchies })
}

/// Reads the host's layout.
/// True when no cgroup filesystem at all is visible in our mount namespace (for example under
/// `ip netns exec`, which mounts a fresh /sys over the host's).
pub fn nothing_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|mi| parse_mountinfo(&mi).is_empty())
        .unwrap_or(false)
}

pub fn detect() -> Result<Layout> {
    let mi =
        std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    let own = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
    let mounts = parse_mountinfo(&mi);
    let v2 = mounts
        .iter()
        .find(|m| m.v2)
        .and_then(|m| std::fs::read_to_string(m.dir.join("cgroup.controllers")).ok())
        .unwrap_or_default();
    build(&mounts, &parse_proc_cgroup(&own), &v2)
}

/// Where the container's cgroup goes in one hierarchy (pure). runc's rules: an absolute
/// `cgroupsPath` is taken from the hierarchy's root; a relative one, or the container id when
/// it is empty, goes under ruse's own cgroup — on a pure v2 host under its parent, since the
/// own cgroup (a session scope) holds processes and could not delegate controllers.
pub fn resolve(
    h: &Hierarchy,
    mode: Mode,
    cgroups_path: Option<&Path>,
    id: &str,
) -> Result<PathBuf> {
    let base = if mode == Mode::V2 {
        h.own.parent().unwrap_or(Path::new("")).to_path_buf()
    } else {
        h.own.clone()
    };
    let clean = crate::rootfs::plan::clean_dest;
    let rel = match cgroups_path.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) if p.is_absolute() => clean(p),
        // runc's CleanPath: a relative path is cleaned as if rooted before it is joined, so
        // `..` cannot climb out of the runtime's own cgroup.
        Some(p) => match clean(p) {
            c if c.as_os_str().is_empty() => bail!(
                "linux.cgroupsPath {:?}: resolves to the runtime's own cgroup",
                p
            ),
            c => base.join(c),
        },
        None => base.join(id),
    };
    if rel.as_os_str().is_empty() {
        bail!(
            "linux.cgroupsPath {:?}: resolves to a hierarchy root",
            cgroups_path.unwrap_or(Path::new(""))
        );
    }
    Ok(h.mount.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
99 31 0:32 / /mnt/again rw,relatime - cgroup cgroup rw,memory
100 23 0:99 / /sys/fs/cgroup/hidden rw - cgroup cgroup rw,pids
101 23 0:98 / /sys/fs/cgroup/hidden rw - tmpfs tmpfs rw";

    const HYBRID_OWN: &str = "\
9:name=systemd:/user.slice
4:memory:/process_api/abc
2:cpu,cpuacct:/
0::/user.slice";

    #[test]
    fn hybrid_layout() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.len(), 5);
        let l = build(&m, &parse_proc_cgroup(HYBRID_OWN), "hugetlb misc").unwrap();
        assert_eq!(l.mode, Mode::Hybrid);
        let dirs: Vec<_> = l
            .hierarchies
            .iter()
            .map(|h| (h.mount.clone(), h.own.clone()))
            .collect();
        assert_eq!(
            dirs,
            [
                ("/sys/fs/cgroup/systemd".into(), "user.slice".into()),
                ("/sys/fs/cgroup/memory".into(), "process_api/abc".into()),
                ("/sys/fs/cgroup/cpu,cpuacct".into(), "".into()),
                ("/sys/fs/cgroup/unified".into(), "user.slice".into()),
            ]
        );
        assert_eq!(l.hierarchies[2].controllers, ["cpu", "cpuacct"]);
        assert_eq!(l.hierarchies[3].controllers, ["hugetlb", "misc"]);
        assert!(l.hierarchies[3].v2);
    }

    #[test]
    fn hidden_mounts_are_left_out() {
        let mi = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
90 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
        let m = parse_mountinfo(mi);
        assert_eq!(m.len(), 1);
        let l = build(&m, &parse_proc_cgroup("1:cpu:/\n0::/a/b"), "cpu").unwrap();
        assert_eq!(l.mode, Mode::V2);
        assert_eq!(l.hierarchies[0].mount, PathBuf::from("/sys/fs/cgroup"));
    }

    #[test]
    fn pure_v2_and_pure_v1() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";
        let l = build(
            &parse_mountinfo(mi),
            &parse_proc_cgroup("0::/user.slice/session-1.scope\n"),
            "cpu io memory pids\n",
        )
        .unwrap();
        assert_eq!(l.mode, Mode::V2);
        assert_eq!(l.hierarchies.len(), 1);
        assert_eq!(
            l.hierarchies[0].controllers,
            ["cpu", "io", "memory", "pids"]
        );
        // runc puts a relative path under the parent of its own (populated) cgroup on v2.
        assert_eq!(
            resolve(&l.hierarchies[0], l.mode, None, "c1").unwrap(),
            PathBuf::from("/sys/fs/cgroup/user.slice/c1")
        );
        let v1 = build(
            &parse_mountinfo("35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory"),
            &parse_proc_cgroup("4:memory:/a\n0::/"),
            "",
        )
        .unwrap();
        assert_eq!(v1.mode, Mode::V1);
        assert_eq!(v1.hierarchies.len(), 1);
    }

    #[test]
    fn mount_root_is_stripped_and_escapes_decoded() {
        let mi = r"35 31 0:32 /outer /sys/fs/cgroup/mem\040x rw - cgroup cgroup rw,memory";
        let m = parse_mountinfo(mi);
        assert_eq!(m[0].dir, PathBuf::from("/sys/fs/cgroup/mem x"));
        let l = build(&m, &parse_proc_cgroup("4:memory:/outer/inner"), "").unwrap();
        assert_eq!(l.hierarchies[0].own, PathBuf::from("inner"));
        let err = build(&m, &parse_proc_cgroup("4:memory:/elsewhere"), "").unwrap_err();
        assert!(err.to_string().contains("outside the root"), "{err}");
        assert!(build(&[], &[], "").is_err());
    }

    #[test]
    fn path_rules() {
        let h = Hierarchy {
            mount: "/sys/fs/cgroup/memory".into(),
            v2: false,
            controllers: vec!["memory".into()],
            own: "a/b".into(),
        };
        let r = |p: Option<&str>| resolve(&h, Mode::V1, p.map(Path::new), "c1");
        assert_eq!(
            r(None).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/a/b/c1")
        );
        assert_eq!(
            r(Some("")).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/a/b/c1")
        );
        assert_eq!(
            r(Some("x/y")).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/a/b/x/y")
        );
        assert_eq!(
            r(Some("/x")).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/x")
        );
        assert_eq!(
            r(Some("/../../etc")).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/etc")
        );
        assert!(r(Some("/")).is_err());
    }

    #[test]
    fn relative_paths_cannot_climb_out() {
        let own = |own: &str| Hierarchy {
            mount: "/sys/fs/cgroup".into(),
            v2: true,
            controllers: vec![],
            own: own.into(),
        };
        let h = own("user.slice/session-1.scope");
        let r = |mode, p: &str| resolve(&h, mode, Some(Path::new(p)), "c1");
        // runc: filepath.Clean("/" + path), then joined under the own cgroup (its parent on v2).
        for (p, want) in [
            ("../../x", "user.slice/x"),
            ("a/../../b", "user.slice/b"),
            ("../a/./b/..", "user.slice/a"),
            ("x/y", "user.slice/x/y"),
        ] {
            assert_eq!(
                r(Mode::V2, p).unwrap(),
                PathBuf::from("/sys/fs/cgroup").join(want),
                "{p}"
            );
        }
        assert_eq!(
            r(Mode::Hybrid, "../../x").unwrap(),
            PathBuf::from("/sys/fs/cgroup/user.slice/session-1.scope/x")
        );
        for p in ["..", ".", "a/.."] {
            let e = r(Mode::V2, p).unwrap_err().to_string();
            assert!(e.contains("the runtime's own cgroup"), "{p}: {e}");
        }
        // From the hierarchy root, a relative path still stays below it.
        let root = own("");
        let e = resolve(&root, Mode::V1, Some(Path::new("../..")), "c1").unwrap_err();
        assert!(e.to_string().contains("linux.cgroupsPath"), "{e}");
        assert_eq!(
            resolve(&root, Mode::V1, Some(Path::new("../x")), "c1").unwrap(),
            PathBuf::from("/sys/fs/cgroup/x")
        );
    }
}

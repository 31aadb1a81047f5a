//! Pure translation of `mounts[]` into mount operations: option words into new-mount-API
//! attributes, propagation and filesystem data (config.md "Mounts", config-linux.md "Mount
//! Options"). No syscalls here; `apply` performs the result.

use crate::errors::not_supported;
use crate::sys::mount::*;
use anyhow::{bail, Result};
use oci_spec::runtime::Mount;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A bind mount of a host path (absolute, or resolved against the bundle).
    Bind { source: PathBuf, recursive: bool },
    /// A new filesystem instance of `fstype`.
    Fs {
        fstype: String,
        source: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOp {
    /// Destination relative to the container's root, cleaned lexically.
    pub dest: PathBuf,
    pub kind: Kind,
    /// Attributes for the top mount only (`ro`, `nosuid`, …).
    pub attr: MountAttr,
    /// Attributes for the whole tree (`rro`, `rnosuid`, …: config-linux.md recursive options).
    pub rattr: MountAttr,
    /// MS_SHARED/MS_PRIVATE/… (with MS_REC for the `r` forms), applied after attaching.
    pub propagation: Vec<u64>,
    /// Filesystem data options as key or key=value.
    pub data: Vec<(String, Option<String>)>,
    /// `tmpcopyup`: the destination's content is copied into the new tmpfs (copyup.rs).
    pub copy_up: bool,
}

/// Flags of `linux.rootfsPropagation` and of propagation mount options.
pub fn propagation_flag(word: &str) -> Option<u64> {
    let rec = libc::MS_REC;
    Some(match word {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | rec,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | rec,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | rec,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

/// (set, clear) attribute bits of a plain mount option word.
fn attr_word(word: &str) -> Option<(u64, u64)> {
    let atime = |a| (a, MOUNT_ATTR__ATIME);
    Some(match word {
        "ro" => (MOUNT_ATTR_RDONLY, 0),
        "rw" => (0, MOUNT_ATTR_RDONLY),
        "nosuid" => (MOUNT_ATTR_NOSUID, 0),
        "suid" => (0, MOUNT_ATTR_NOSUID),
        "nodev" => (MOUNT_ATTR_NODEV, 0),
        "dev" => (0, MOUNT_ATTR_NODEV),
        "noexec" => (MOUNT_ATTR_NOEXEC, 0),
        "exec" => (0, MOUNT_ATTR_NOEXEC),
        "nodiratime" => (MOUNT_ATTR_NODIRATIME, 0),
        "diratime" => (0, MOUNT_ATTR_NODIRATIME),
        "nosymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, 0),
        "symfollow" => (0, MOUNT_ATTR_NOSYMFOLLOW),
        "relatime" => atime(MOUNT_ATTR_RELATIME),
        "noatime" => atime(MOUNT_ATTR_NOATIME),
        "strictatime" => atime(MOUNT_ATTR_STRICTATIME),
        "atime" | "norelatime" | "nostrictatime" => atime(MOUNT_ATTR_RELATIME),
        _ => return None,
    })
}

fn add(a: &mut MountAttr, (set, clr): (u64, u64)) {
    if clr == MOUNT_ATTR__ATIME {
        a.attr_set = (a.attr_set & !MOUNT_ATTR__ATIME) | set;
        a.attr_clr |= MOUNT_ATTR__ATIME;
        return;
    }
    a.attr_set = (a.attr_set & !clr) | set;
    a.attr_clr = (a.attr_clr & !set) | clr;
}

/// Superblock flag words of the mount option table, set or cleared through fsconfig.
const SB_FLAGS: &[&str] = &["sync", "async", "dirsync", "lazytime", "nolazytime"];

/// Cleans a destination lexically into a path relative to the root. `..` can never climb
/// above the root; symlinks are the kernel's job at resolution time (RESOLVE_IN_ROOT).
pub fn clean_dest(dest: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in dest.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Files under /proc that may be bind-mounted over (lxcfs and similar), as runc allows.
const PROC_ALLOWED: &[&str] = &[
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/net/dev",
    "proc/sys/kernel/ns_last_pid",
];

/// A bind mount: type `bind`, or a `bind`/`rbind` option.
pub fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|o| o == "bind" || o == "rbind")
}

/// True for the files under /proc that may be mounted over (`dest` relative to the root).
pub fn proc_allowed(dest: &Path) -> bool {
    PROC_ALLOWED.iter().any(|a| dest == Path::new(a))
}

/// Checks one mount before anything is touched (called by bundle validation).
pub fn check_mount(i: usize, m: &Mount) -> Result<()> {
    // Warned here, in the runtime, once: init plans the same mounts again later.
    if !m.destination().is_absolute() {
        crate::log::warn(&format!(
            "mounts[{i}].destination {:?} is relative: treated as /{}",
            m.destination(),
            clean_dest(m.destination()).display()
        ));
    }
    op(i, m, Path::new("/")).map(drop)
}

pub fn op(i: usize, m: &Mount, bundle: &Path) -> Result<MountOp> {
    let mut attr = MountAttr::default();
    let mut rattr = MountAttr::default();
    let mut propagation = Vec::new();
    let mut data = Vec::new();
    let mut sb_flags = Vec::new();
    let (mut bind, mut recursive, mut copy_up) = (false, false, false);
    for word in m.options().as_deref().unwrap_or_default() {
        let w = word.as_str();
        if w == "bind" || w == "rbind" {
            bind = true;
            recursive |= w == "rbind";
        } else if let Some(f) = propagation_flag(w) {
            propagation.push(f);
        } else if let Some(a) = attr_word(w) {
            add(&mut attr, a);
        } else if let Some(a) = w.strip_prefix('r').and_then(attr_word) {
            add(&mut rattr, a);
        } else if matches!(w, "idmap" | "ridmap") {
            // The idmapped tree is made by the runtime process (see idmap.rs); the kernel can
            // only idmap a bind mount (config.md "Mounts").
            if !is_bind(m) {
                bail!("mounts[{i}].options {w:?}: id-mapped mounts are only supported for bind-mounts");
            }
        } else if w == "tmpcopyup" {
            copy_up = true;
        } else if matches!(w, "remount" | "mand") {
            return Err(not_supported(format!("mounts[{i}].options {w:?}")));
        } else if SB_FLAGS.contains(&w) {
            sb_flags.push(w);
        } else if matches!(
            w,
            "defaults" | "loud" | "nomand" | "silent" | "iversion" | "noiversion"
        ) {
            // iversion/noiversion: filesystems that keep i_version (ext4, xfs, btrfs, tmpfs)
            // turn it on themselves and ignore the request; fsconfig has no key for it.
        } else {
            let (k, v) = match w.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (w.to_string(), None),
            };
            data.push((k, v));
        }
    }
    let fstype = m.typ().clone().unwrap_or_default();
    bind |= fstype == "bind";
    if copy_up && (bind || fstype != "tmpfs") {
        bail!("mounts[{i}].options \"tmpcopyup\": only a tmpfs mount can copy up, not {fstype:?}");
    }
    let dest = clean_dest(m.destination());
    let kind = if bind {
        if !data.is_empty() {
            bail!(
                "mounts[{i}]: bind mount of {:?} cannot take filesystem data options {:?}",
                m.source().clone().unwrap_or_default(),
                data_string(&data)
            );
        }
        let src = m.source().clone().unwrap_or_default();
        if src.as_os_str().is_empty() {
            bail!("mounts[{i}].source: a bind mount needs a source");
        }
        // A bind mount shares the source's superblock: setting its flags would change the
        // host's filesystem, so only the requests that keep the defaults are accepted.
        if let Some(w) = sb_flags
            .iter()
            .find(|w| !matches!(**w, "async" | "nolazytime"))
        {
            return Err(not_supported(format!(
                "mounts[{i}].options {w:?} on a bind mount (a superblock flag of the source filesystem)"
            )));
        }
        Kind::Bind {
            source: bundle.join(src),
            recursive,
        }
    } else {
        // Superblock flags travel with the filesystem data: fsconfig parses them (in order,
        // so "sync,async" ends asynchronous) before the filesystem sees the rest.
        data.extend(sb_flags.iter().map(|w| (w.to_string(), None)));
        if fstype.is_empty() {
            bail!("mounts[{i}].type: missing (and not a bind mount)");
        }
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty());
        Kind::Fs {
            fstype: fstype.clone(),
            source,
        }
    };
    check_proc_dest(i, &dest, &fstype)?;
    Ok(MountOp {
        dest,
        kind,
        attr,
        rattr,
        propagation,
        data,
        copy_up,
    })
}

/// CVE-2019-19921 and kin: only a procfs may sit at /proc, and only allow-listed files under it.
fn check_proc_dest(i: usize, dest: &Path, fstype: &str) -> Result<()> {
    if dest == Path::new("proc") && fstype != "proc" {
        bail!("mounts[{i}]: /proc must be a proc mount, not {fstype:?}");
    }
    if dest.starts_with("proc") && dest != Path::new("proc") && !proc_allowed(dest) {
        bail!(
            "mounts[{i}]: {} cannot be mounted because it is inside /proc",
            Path::new("/").join(dest).display()
        );
    }
    Ok(())
}

pub fn data_string(data: &[(String, Option<String>)]) -> String {
    data.iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(json: &str) -> Result<MountOp> {
        let m: Mount = serde_json::from_str(json).unwrap();
        op(0, &m, Path::new("/bundle"))
    }

    #[test]
    fn tmpfs_with_data_and_flags() {
        let o = m(r#"{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}"#).unwrap();
        assert_eq!(o.dest, PathBuf::from("dev"));
        assert_eq!(o.attr.attr_set, MOUNT_ATTR_NOSUID | MOUNT_ATTR_STRICTATIME);
        assert_eq!(o.attr.attr_clr, MOUNT_ATTR__ATIME);
        assert_eq!(data_string(&o.data), "mode=755,size=65536k");
        assert_eq!(
            o.kind,
            Kind::Fs {
                fstype: "tmpfs".into(),
                source: Some("tmpfs".into())
            }
        );
    }

    #[test]
    fn bind_relative_source_and_recursive_attrs() {
        let o = m(r#"{"destination":"/a/../b","source":"data","options":["rbind","ro","rnoexec","rprivate"]}"#).unwrap();
        assert_eq!(o.dest, PathBuf::from("b"));
        assert_eq!(
            o.kind,
            Kind::Bind {
                source: "/bundle/data".into(),
                recursive: true
            }
        );
        assert_eq!(o.attr.attr_set, MOUNT_ATTR_RDONLY);
        assert_eq!(o.rattr.attr_set, MOUNT_ATTR_NOEXEC);
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
    }

    #[test]
    fn later_words_win() {
        let o = m(r#"{"destination":"/x","type":"tmpfs","options":["ro","rw","noexec","exec"]}"#)
            .unwrap();
        assert_eq!(o.attr.attr_set, 0);
        assert_eq!(o.attr.attr_clr, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOEXEC);
    }

    #[test]
    fn tmpcopyup_is_a_flag_of_tmpfs_only() {
        let o =
            m(r#"{"destination":"/x","type":"tmpfs","options":["tmpcopyup","mode=755"]}"#).unwrap();
        assert!(o.copy_up);
        assert_eq!(data_string(&o.data), "mode=755");
        for bad in [
            r#"{"destination":"/x","source":"/y","options":["bind","tmpcopyup"]}"#,
            r#"{"destination":"/x","type":"proc","options":["tmpcopyup"]}"#,
        ] {
            let e = m(bad).unwrap_err();
            assert!(
                e.to_string().contains("only a tmpfs mount can copy up"),
                "{e}"
            );
        }
    }

    #[test]
    fn refusals() {
        let e = m(r#"{"destination":"/x","source":"/y","options":["bind","size=1"]}"#).unwrap_err();
        assert!(e.to_string().contains("data options"), "{e}");
        let e = m(r#"{"destination":"/proc","type":"tmpfs"}"#).unwrap_err();
        assert!(e.to_string().contains("proc mount"), "{e}");
        let e = m(r#"{"destination":"/proc/sys","source":"/x","options":["bind"]}"#).unwrap_err();
        assert!(e.to_string().contains("inside /proc"), "{e}");
        assert!(m(r#"{"destination":"/proc/uptime","source":"/x","options":["bind"]}"#).is_ok());
        assert!(m(r#"{"destination":"/x","source":"/y","options":["bind","idmap"]}"#).is_ok());
        let e = m(r#"{"destination":"/x","type":"tmpfs","options":["idmap"]}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("id-mapped mounts are only supported for bind-mounts"),
            "{e}"
        );
        assert!(m(r#"{"destination":"/x"}"#).is_err());
    }

    #[test]
    fn superblock_flags_are_filesystem_data_and_refused_on_binds() {
        let o = m(r#"{"destination":"/x","type":"tmpfs","options":["sync","dirsync","lazytime","async","iversion","size=1m"]}"#).unwrap();
        assert_eq!(data_string(&o.data), "size=1m,sync,dirsync,lazytime,async");
        let e = m(r#"{"destination":"/x","source":"/y","options":["bind","sync"]}"#).unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
        assert!(
            m(r#"{"destination":"/x","source":"/y","options":["bind","async","nolazytime"]}"#)
                .is_ok()
        );
    }

    #[test]
    fn relative_destination_is_under_root() {
        assert_eq!(clean_dest(Path::new("../../etc")), PathBuf::from("etc"));
        assert_eq!(clean_dest(Path::new("/")), PathBuf::new());
    }
}

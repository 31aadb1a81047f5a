//! Idmapped bind mounts (`mounts[].uidMappings`/`gidMappings`, the `idmap` and `ridmap`
//! options), made by the runtime process in the host's namespaces and handed to init as
//! detached mount fds, which init attaches in `mounts[]` order (see channel.rs).
//!
//! Why the runtime: `mount_setattr(MOUNT_ATTR_IDMAP)` needs CAP_SYS_ADMIN over the user
//! namespace that owns the source's filesystem (the host's), which init no longer has once it
//! is in the container's user namespace; and the mapping is a user namespace fd, which for
//! mappings of their own comes from a throwaway process whose maps the runtime writes.
//!
//! Semantics are runc 1.2's: mappings without an option idmap the top mount, `idmap` likewise,
//! `ridmap` the whole tree; an option without mappings takes the container's (its new user
//! namespace's maps, or the user namespace it joins by path).

use super::plan::{self, Kind};
use crate::sys::mount::{mount_setattr, open_tree, MountAttr, AT_RECURSIVE, OPEN_TREE_CLONE};
use crate::sys::process as sp;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
/// SCM_MAX_FD: the trees travel to init in one message.
const MAX: usize = 253;

/// Where a mount's mapping comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Userns {
    /// Mappings of its own: a throwaway user namespace with these maps.
    Maps(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>),
    /// The container's new user namespace (its maps are written before the trees are made).
    Container,
    /// The user namespace the container joins by path.
    Path(PathBuf),
}

/// One idmapped mount: `mounts[index]`, mapped through `userns`, the whole tree or the top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idmapped {
    pub index: usize,
    pub userns: Userns,
    pub recursive: bool,
}

fn options(m: &Mount) -> (bool, bool) {
    let o = m.options().as_deref().unwrap_or_default();
    (
        o.iter().any(|w| w == "idmap"),
        o.iter().any(|w| w == "ridmap"),
    )
}

fn wants_idmap(m: &Mount) -> bool {
    let (idmap, ridmap) = options(m);
    idmap || ridmap || m.uid_mappings().is_some() || m.gid_mappings().is_some()
}

/// Validates mount `i` (bundle validation, runc 1.2's checkIDMapMounts messages).
pub fn check(i: usize, m: &Mount) -> Result<()> {
    if !wants_idmap(m) {
        return Ok(());
    }
    if !plan::is_bind(m) {
        let what = if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            "uidMappings/gidMappings".to_string()
        } else {
            let (idmap, _) = options(m);
            format!("options {:?}", if idmap { "idmap" } else { "ridmap" })
        };
        bail!("mounts[{i}].{what}: id-mapped mounts are only supported for bind-mounts");
    }
    match (m.uid_mappings(), m.gid_mappings()) {
        (Some(u), Some(g)) => {
            crate::userns::check_ranges(&format!("mounts[{i}].uidMappings"), u)?;
            crate::userns::check_ranges(&format!("mounts[{i}].gidMappings"), g)?;
            if u.is_empty() || g.is_empty() {
                bail!(
                    "mounts[{i}]: id-mapped mounts must have both uid and gid mappings specified"
                );
            }
        }
        (None, None) => {}
        _ => bail!("mounts[{i}]: id-mapped mounts must have both uid and gid mappings specified"),
    }
    Ok(())
}

/// The idmapped mounts of `spec`, in `mounts[]` order (pure).
pub fn plan(spec: &Spec) -> Result<Vec<Idmapped>> {
    let linux = spec.linux().as_ref();
    let user = linux
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default()
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::User)
        .cloned();
    let own_maps = (
        linux.and_then(|l| l.uid_mappings().clone()),
        linux.and_then(|l| l.gid_mappings().clone()),
    );
    let mut out = Vec::new();
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if !wants_idmap(m) {
            continue;
        }
        check(i, m)?;
        let explicit = (m.uid_mappings().clone(), m.gid_mappings().clone());
        let userns = match (&explicit, &user) {
            (_, Some(u)) if explicit == own_maps && u.path().is_none() => Userns::Container,
            ((Some(uid), Some(gid)), _) => Userns::Maps(uid.clone(), gid.clone()),
            (_, Some(u)) => match u.path() {
                Some(p) => Userns::Path(p.clone()),
                None => Userns::Container,
            },
            _ => bail!(
                "mounts[{i}]: id-mapped mounts must have both uid and gid mappings specified (or a user namespace in linux.namespaces to take them from)"
            ),
        };
        out.push(Idmapped {
            index: i,
            userns,
            recursive: options(m).1,
        });
    }
    if out.len() > MAX {
        bail!(
            "mounts: {} id-mapped mounts, at most {MAX} are supported",
            out.len()
        );
    }
    Ok(out)
}

/// Makes the detached, idmapped trees (runtime process, host namespaces, as root), with their
/// other mount attributes already set; `init` is the container's init, whose user namespace
/// serves `Userns::Container`.
pub fn make(spec: &Spec, bundle: &Path, init: i32, list: &[Idmapped]) -> Result<Vec<OwnedFd>> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let mut userns: HashMap<String, OwnedFd> = HashMap::new();
    let mut out = Vec::new();
    for idm in list {
        let i = idm.index;
        let op = plan::op(i, &mounts[i], bundle)?;
        let Kind::Bind { source, recursive } = &op.kind else {
            bail!("mounts[{i}]: id-mapped mounts are only supported for bind-mounts");
        };
        let key = format!("{:?}", idm.userns);
        if !userns.contains_key(&key) {
            let fd = userns_fd(&idm.userns, init).with_context(|| format!("mounts[{i}]"))?;
            userns.insert(key.clone(), fd);
        }
        let what = || format!("mounts[{i}]: idmap {}", source.display());
        let flags = OPEN_TREE_CLONE | if *recursive { AT_RECURSIVE } else { 0 };
        let tree = open_tree(crate::sys::fs::cwd(), source, flags).with_context(what)?;
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            userns_fd: userns[&key].as_raw_fd() as u64,
            ..Default::default()
        };
        mount_setattr(tree.as_fd(), idm.recursive, &attr)
            .map_err(|e| {
                let hint = if e.raw_os_error() == Some(libc::EINVAL) {
                    " (the kernel cannot idmap this filesystem: tmpfs needs Linux 6.3)"
                } else {
                    ""
                };
                anyhow::anyhow!("{e}{hint}")
            })
            .with_context(what)?;
        super::apply::set_attrs(tree.as_fd(), &op).with_context(what)?;
        out.push(tree);
    }
    Ok(out)
}

fn userns_fd(u: &Userns, init: i32) -> Result<OwnedFd> {
    Ok(match u {
        Userns::Container => File::open(format!("/proc/{init}/ns/user"))
            .context("open the container's user namespace")?
            .into(),
        Userns::Path(p) => File::open(p)
            .with_context(|| format!("open user namespace {}", p.display()))?
            .into(),
        Userns::Maps(uid, gid) => throwaway_userns(uid, gid)?,
    })
}

/// A user namespace with `uid`/`gid` maps, held by a child that only waits to be killed.
fn throwaway_userns(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let pid = sp::clone_fork(libc::CLONE_NEWUSER as u64)
        .context("clone a process into a user namespace for the mount's mappings")?;
    if pid == 0 {
        let _ = sp::set_pdeathsig(libc::SIGKILL);
        sp::pause_forever();
    }
    let res = (|| -> Result<OwnedFd> {
        let caller = crate::userns::Caller::current();
        crate::userns::write_maps(&caller, pid, uid, gid)?;
        Ok(File::open(format!("/proc/{pid}/ns/user"))
            .context("open the mapping's user namespace")?
            .into())
    })();
    let _ = sp::kill(pid, libc::SIGKILL);
    let _ = sp::waitpid(pid, false);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(linux: &str, mounts: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.2.0","linux":{linux},"mounts":{mounts}}}"#
        ))
        .unwrap()
    }

    const NOUSER: &str = r#"{"namespaces":[{"type":"mount"}]}"#;
    const USERNS: &str = r#"{"namespaces":[{"type":"mount"},{"type":"user"}],
        "uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
        "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}"#;
    const MAPS: &str = r#""uidMappings":[{"containerID":0,"hostID":1000,"size":1}],
        "gidMappings":[{"containerID":0,"hostID":1000,"size":1}]"#;

    fn err(linux: &str, mounts: &str) -> String {
        plan(&spec(linux, mounts)).map_or_else(|e| format!("{e:#}"), |p| format!("{p:?}"))
    }

    #[test]
    fn explicit_mappings() {
        let p = plan(&spec(
            NOUSER,
            &format!(r#"[{{"destination":"/a","type":"tmpfs"}},{{"destination":"/d","source":"/s","options":["rbind","ridmap"],{MAPS}}}]"#),
        ))
        .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].index, 1);
        assert!(p[0].recursive);
        assert!(matches!(&p[0].userns, Userns::Maps(u, _) if u[0].host_id() == 1000));
        // Mappings alone idmap the top mount.
        let p = plan(&spec(
            NOUSER,
            &format!(r#"[{{"destination":"/d","source":"/s","options":["bind"],{MAPS}}}]"#),
        ))
        .unwrap();
        assert!(!p[0].recursive);
    }

    #[test]
    fn container_mappings() {
        let p = plan(&spec(
            USERNS,
            r#"[{"destination":"/d","source":"/s","options":["bind","idmap"]}]"#,
        ))
        .unwrap();
        assert_eq!(p[0].userns, Userns::Container);
        let joined =
            r#"{"namespaces":[{"type":"mount"},{"type":"user","path":"/proc/1/ns/user"}]}"#;
        let p = plan(&spec(
            joined,
            r#"[{"destination":"/d","source":"/s","options":["bind","idmap"]}]"#,
        ))
        .unwrap();
        assert_eq!(p[0].userns, Userns::Path("/proc/1/ns/user".into()));
    }

    #[test]
    fn runc_errors() {
        let e = err(
            NOUSER,
            r#"[{"destination":"/d","source":"/s","options":["bind","idmap"]}]"#,
        );
        assert!(
            e.contains("mounts[0]") && e.contains("both uid and gid mappings"),
            "{e}"
        );
        let e = err(
            USERNS,
            r#"[{"destination":"/d","source":"/s","options":["bind"],"uidMappings":[{"containerID":0,"hostID":1,"size":1}]}]"#,
        );
        assert!(e.contains("both uid and gid mappings"), "{e}");
        let e = err(
            USERNS,
            &format!(r#"[{{"destination":"/d","type":"tmpfs",{MAPS}}}]"#),
        );
        assert!(
            e.contains("mounts[0].uidMappings/gidMappings") && e.contains("bind"),
            "{e}"
        );
        let e = err(
            USERNS,
            r#"[{"destination":"/d","type":"tmpfs","options":["ridmap"]}]"#,
        );
        assert!(e.contains("\"ridmap\"") && e.contains("bind"), "{e}");
        let e = err(
            NOUSER,
            r#"[{"destination":"/d","source":"/s","options":["bind"],
            "uidMappings":[{"containerID":0,"hostID":1,"size":0}],
            "gidMappings":[{"containerID":0,"hostID":1,"size":1}]}]"#,
        );
        assert!(
            e.contains("mounts[0].uidMappings[0]") && e.contains("size"),
            "{e}"
        );
    }
}

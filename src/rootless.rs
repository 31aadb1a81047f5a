//! Rootless mode, in the runtime process: the `--rootless true|false|auto` switch (which, as in
//! runc, decides whether cgroups are used only where they are delegated) and the checks a
//! bundle must pass before an unprivileged caller touches anything (a user namespace, host ids
//! the caller owns, no host networking, no idmapped mounts).

use crate::errors::not_supported;
use crate::userns::{self, Caller};
use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxNamespaceType as T, Spec};

/// Parses the global `--rootless` value: Some(true|false), or None for auto (runc's
/// parseBoolOrAuto: Go's boolean spellings and "auto").
pub fn parse_flag(v: Option<&str>) -> Result<Option<bool>> {
    match v {
        None | Some("auto") => Ok(None),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(Some(true)),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(Some(false)),
        Some(other) => bail!("--rootless {other:?}: must be true, false or auto"),
    }
}

/// Whether cgroups are rootless (used only where delegated): the flag, else auto — an
/// unprivileged caller, or root inside a user namespace (podman's rootless mode runs the
/// runtime as root of a user namespace that owns no cgroup).
pub fn cgroups(flag: Option<bool>) -> bool {
    flag.unwrap_or_else(|| crate::sys::process::geteuid() != 0 || userns::in_user_namespace())
}

/// The checks runc calls rootlessEUIDCheck, plus what ruse cannot do without root on the host.
/// Nothing is checked for root.
pub fn check(spec: &Spec, caller: &Caller) -> Result<()> {
    let linux = spec.linux().as_ref();
    let namespaces = linux
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let user = namespaces.iter().find(|n| n.typ() == T::User);
    let uid = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let gid = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    if user.is_some_and(|u| u.path().is_none()) {
        // Root in a user namespace may only map what its own namespace maps.
        userns::check_owned(caller, &uid, &gid)?;
    }
    if caller.euid == 0 {
        return Ok(());
    }
    if user.is_none() {
        bail!(
            "linux.namespaces: a rootless container needs a user namespace (ruse spec --rootless writes one)"
        );
    }
    if namespaces
        .iter()
        .any(|n| n.typ() == T::Time && n.path().is_none())
    {
        return Err(not_supported(
            "linux.namespaces: a new time namespace in a rootless container",
        ));
    }
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let opts = m.options().as_deref().unwrap_or_default();
        if m.uid_mappings().is_some()
            || m.gid_mappings().is_some()
            || opts.iter().any(|o| o == "idmap" || o == "ridmap")
        {
            bail!("mounts[{i}]: id-mapped mounts are not supported for rootless containers");
        }
        if user.is_some_and(|u| u.path().is_none()) {
            check_mount_ids(i, opts, &uid, &gid)?;
        }
    }
    let ann = spec.annotations().clone().unwrap_or_default();
    if ann.get("ruse.network.mode").is_some_and(|m| m != "none") {
        bail!("annotations ruse.network.mode: a rootless container cannot build host networking (the veth, bridge and nft rules need root on the host)");
    }
    if linux
        .and_then(|l| l.net_devices().as_ref())
        .is_some_and(|d| !d.is_empty())
    {
        bail!("linux.netDevices: moving a host network device into a rootless container needs root on the host");
    }
    Ok(())
}

/// A `uid=`/`gid=` mount option must name an id the container maps (runc's rootlessEUIDMount):
/// the kernel would refuse an unmapped one with a bare EINVAL.
fn check_mount_ids(
    i: usize,
    opts: &[String],
    uid: &[oci_spec::runtime::LinuxIdMapping],
    gid: &[oci_spec::runtime::LinuxIdMapping],
) -> Result<()> {
    for o in opts {
        let (field, maps, v) = if let Some(v) = o.strip_prefix("uid=") {
            ("linux.uidMappings", uid, v)
        } else if let Some(v) = o.strip_prefix("gid=") {
            ("linux.gidMappings", gid, v)
        } else {
            continue;
        };
        let Ok(id) = v.parse::<u64>() else { continue };
        let mapped = maps.iter().any(|m| {
            let start = m.container_id() as u64;
            start <= id && id < start + m.size() as u64
        });
        if !mapped {
            bail!("mounts[{i}].options {o:?}: id {id} is not mapped by {field} (a rootless container can only use the ids it maps)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(linux: &str, extra: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.0.2","linux":{linux}{extra}}}"#
        ))
        .unwrap()
    }

    fn alice() -> Caller {
        Caller {
            euid: 4242,
            egid: 4242,
            name: "alice".into(),
        }
    }

    const USERNS: &str = r#"{"namespaces":[{"type":"user"},{"type":"mount"}],
        "uidMappings":[{"containerID":0,"hostID":4242,"size":1}],
        "gidMappings":[{"containerID":0,"hostID":4242,"size":1}]}"#;

    fn err(s: &Spec) -> String {
        check(s, &alice()).map_or_else(|e| format!("{e:#}"), |_| "ok".into())
    }

    #[test]
    fn flag_values() {
        assert_eq!(parse_flag(None).unwrap(), None);
        assert_eq!(parse_flag(Some("auto")).unwrap(), None);
        assert_eq!(parse_flag(Some("true")).unwrap(), Some(true));
        assert_eq!(parse_flag(Some("0")).unwrap(), Some(false));
        assert!(parse_flag(Some("yes")).is_err());
        assert!(cgroups(Some(true)) && !cgroups(Some(false)));
    }

    #[test]
    fn rootless_checks() {
        assert_eq!(err(&spec(USERNS, "")), "ok");
        let e = err(&spec(r#"{"namespaces":[{"type":"mount"}]}"#, ""));
        assert!(e.contains("needs a user namespace"), "{e}");
        let e = err(&spec(
            USERNS,
            r#","mounts":[{"destination":"/d","source":"/s","options":["bind","idmap"]}]"#,
        ));
        assert!(e.contains("mounts[0]") && e.contains("rootless"), "{e}");
        let e = err(&spec(
            USERNS,
            r#","mounts":[{"destination":"/d","type":"tmpfs","options":["uid=5"]}]"#,
        ));
        assert!(
            e.contains("\"uid=5\"") && e.contains("linux.uidMappings"),
            "{e}"
        );
        assert_eq!(
            err(&spec(
                USERNS,
                r#","mounts":[{"destination":"/d","type":"tmpfs","options":["gid=0","mode=755"]}]"#,
            )),
            "ok"
        );
        let e = err(&spec(
            USERNS,
            r#","annotations":{"ruse.network.mode":"bridge"}"#,
        ));
        assert!(e.contains("ruse.network.mode"), "{e}");
        let e = err(&spec(
            r#"{"namespaces":[{"type":"user"},{"type":"time"}],
            "uidMappings":[{"containerID":0,"hostID":4242,"size":1}],
            "gidMappings":[{"containerID":0,"hostID":4242,"size":1}]}"#,
            "",
        ));
        assert!(e.contains("time namespace"), "{e}");
        // Root is not checked here (in the initial user namespace).
        let root = Caller {
            euid: 0,
            egid: 0,
            name: "root".into(),
        };
        if !userns::in_user_namespace() {
            assert!(check(&spec(r#"{"namespaces":[]}"#, ""), &root).is_ok());
        }
    }
}

//! Loads a bundle's `config.json` and refuses, by field name, everything ruse cannot honour,
//! before anything on the system is touched (create's first step, in the calling process).

use crate::errors::not_supported;
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute rootfs directory (not a symlink).
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// linux.seccomp, compiled.
    pub seccomp: Option<crate::seccomp::Compiled>,
}

pub fn load(dir: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(dir).with_context(|| format!("bundle {}", dir.display()))?;
    let path = dir.join("config.json");
    let bytes = std::fs::read(&path).with_context(|| format!("open {}", path.display()))?;
    let spec = parse(&bytes).with_context(|| format!("parse {}", path.display()))?;
    let rootfs = check_root(&dir, &spec)?;
    validate(&spec)?;
    crate::rootless::check(&spec, &crate::userns::Caller::current())?;
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::check)
        .transpose()?;
    Ok(Bundle {
        dir,
        rootfs,
        spec,
        seccomp,
    })
}

/// JSON → Spec, with the position of syntax errors and the field path of type errors.
pub fn parse(bytes: &[u8]) -> Result<Spec> {
    let mut v: Value = serde_json::from_slice(bytes)?;
    if !v.is_object() {
        bail!("config must be a JSON object");
    }
    drop_unknown_caps(&mut v);
    crate::cgroups::drop_pids_without_limit(&mut v);
    let spec: Spec =
        serde_path_to_error::deserialize(v).map_err(|e| anyhow!("{}: {}", e.path(), e.inner()))?;
    Ok(spec)
}

/// runc warns about and ignores capability names the kernel or its library does not know,
/// so configs written for newer kernels still run; ruse does the same.
fn drop_unknown_caps(v: &mut Value) {
    let Some(caps) = v
        .pointer_mut("/process/capabilities")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (set, list) in caps.iter_mut() {
        let Some(list) = list.as_array_mut() else {
            continue;
        };
        list.retain(|c| {
            let known = c.as_str().is_some_and(|n| crate::caps::number(n).is_some());
            if !known {
                crate::log::warn(&format!(
                    "ignoring unknown capability {c} in process.capabilities.{set}"
                ));
            }
            known
        });
    }
}

fn check_root(dir: &Path, spec: &Spec) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| anyhow!("root: missing (root.path is required on Linux)"))?;
    if root.path().as_os_str().is_empty() {
        bail!("root.path: empty");
    }
    check_path("root.path", root.path())?;
    let rootfs = dir.join(root.path());
    let meta = std::fs::symlink_metadata(&rootfs)
        .with_context(|| format!("root.path {}", rootfs.display()))?;
    if meta.file_type().is_symlink() {
        bail!(
            "root.path {}: is a symlink; give the real directory",
            rootfs.display()
        );
    }
    if !meta.is_dir() {
        bail!("root.path {}: not a directory", rootfs.display());
    }
    Ok(rootfs)
}

fn validate(spec: &Spec) -> Result<()> {
    let major = spec.version().split('.').next().unwrap_or("");
    if major != "1" {
        bail!(
            "ociVersion {:?}: ruse supports runtime-spec 1.x",
            spec.version()
        );
    }
    validate_process(spec)?;
    validate_hooks(spec)?;
    validate_mounts(spec)?;
    for (field, name) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if name.as_deref().is_some_and(|n| n.contains('\0')) {
            bail!("{field}: contains a NUL byte");
        }
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        && !has_ns(spec, LinuxNamespaceType::Uts)
    {
        bail!("hostname: setting the hostname needs a new uts namespace in linux.namespaces");
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty())
        && !has_ns(spec, LinuxNamespaceType::Uts)
    {
        bail!("domainname: setting the domainname needs a new uts namespace in linux.namespaces");
    }
    validate_linux(spec)?;
    crate::rootfs::idmap::plan(spec)?;
    let net = crate::net::plan(spec, &crate::net::netns_of(spec))?;
    crate::net::check_joined(spec, &net)?;
    Ok(())
}

fn validate_process(spec: &Spec) -> Result<()> {
    let p = spec
        .process()
        .as_ref()
        .ok_or_else(|| anyhow!("process: missing"))?;
    check_process(p)
}

/// The checks of one `process` (the container's, or one `exec` starts).
pub fn check_process(p: &oci_spec::runtime::Process) -> Result<()> {
    let args = p.args().as_deref().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        bail!("process.args: must not be empty");
    }
    if args.iter().any(|a| a.contains('\0')) {
        bail!("process.args: contains a NUL byte");
    }
    if !p.cwd().is_absolute() {
        bail!("process.cwd {:?}: must be an absolute path", p.cwd());
    }
    check_path("process.cwd", p.cwd())?;
    if let Some(env) = p.env() {
        if let Some(bad) = env.iter().find(|e| !e.contains('=') || e.contains('\0')) {
            bail!("process.env {bad:?}: must be KEY=value without NUL");
        }
    }
    for r in p.rlimits().as_deref().unwrap_or_default() {
        if r.soft() > r.hard() {
            bail!(
                "process.rlimits {}: soft limit {} exceeds hard limit {}",
                r.typ(),
                r.soft(),
                r.hard()
            );
        }
    }
    let mut seen = HashSet::new();
    for r in p.rlimits().as_deref().unwrap_or_default() {
        if !seen.insert(r.typ().to_string()) {
            bail!("process.rlimits {}: duplicated", r.typ());
        }
    }
    if let Some(c) = p.capabilities() {
        let lost = crate::caps::CapMasks::from_spec(c).unraisable_ambient();
        if !lost.is_empty() {
            // runc's behaviour: a warning, and the container runs without them.
            crate::log::warn(&format!(
                "process.capabilities.ambient: {} not raised (an ambient capability must also be permitted and inheritable)",
                lost.join(", ")
            ));
        }
    }
    if let Some(adj) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            bail!("process.oomScoreAdj {adj}: must be within [-1000, 1000]");
        }
    }
    if p.apparmor_profile()
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(not_supported(
            "process.apparmorProfile (AppArmor is not enabled on this host)",
        ));
    }
    if p.selinux_label().as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(not_supported(
            "process.selinuxLabel (SELinux is not enabled on this host)",
        ));
    }
    Ok(())
}

fn validate_hooks(spec: &Spec) -> Result<()> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    #[allow(deprecated)]
    let kinds = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, hook) in list.as_deref().unwrap_or_default().iter().enumerate() {
            check_path(&format!("hooks.{kind}[{i}].path"), hook.path())?;
            if !hook.path().is_absolute() {
                bail!("hooks.{kind}[{i}].path {:?}: must be absolute", hook.path());
            }
            for (what, list) in [("args", hook.args()), ("env", hook.env())] {
                if list.iter().flatten().any(|a| a.contains('\0')) {
                    bail!("hooks.{kind}[{i}].{what}: contains a NUL byte");
                }
            }
            if hook.timeout().is_some_and(|t| t <= 0) {
                bail!("hooks.{kind}[{i}].timeout: must be greater than zero");
            }
        }
    }
    Ok(())
}

fn validate_mounts(spec: &Spec) -> Result<()> {
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let dst = m.destination();
        let s = dst.as_os_str().as_encoded_bytes();
        if s.contains(&0)
            || m.source()
                .as_ref()
                .is_some_and(|p| p.as_os_str().as_encoded_bytes().contains(&0))
        {
            bail!("mounts[{i}]: path contains a NUL byte");
        }
        if s.len() >= libc::PATH_MAX as usize {
            bail!("mounts[{i}].destination: longer than PATH_MAX");
        }
        if s.is_empty() {
            bail!("mounts[{i}].destination: empty");
        }
        crate::rootfs::idmap::check(i, m)?;
        crate::rootfs::plan::check_mount(i, m)?;
    }
    Ok(())
}

fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|n| n.typ() == t))
}

fn validate_linux(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let mut types = HashSet::new();
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        if !types.insert(ns.typ()) {
            bail!("linux.namespaces: {} listed twice", ns.typ());
        }
        if let Some(p) = ns.path() {
            let field = format!("linux.namespaces {} path", ns.typ());
            check_path(&field, p)?;
            if !p.is_absolute() {
                bail!("{field} {p:?}: must be an absolute path");
            }
        }
    }
    if let Some(p) = linux.cgroups_path() {
        check_path("linux.cgroupsPath", p)?;
    }
    let userns = has_ns(spec, LinuxNamespaceType::User);
    check_maps("linux.uidMappings", linux.uid_mappings().as_deref(), userns)?;
    check_maps("linux.gidMappings", linux.gid_mappings().as_deref(), userns)?;
    let user_path = linux
        .namespaces()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_some());
    if user_path && (linux.uid_mappings().is_some() || linux.gid_mappings().is_some()) {
        // containerd and CRI-O send the joined namespace's maps along; the kernel's are the
        // ones that count (runc warns too).
        crate::log::warn(
            "linux.uidMappings/gidMappings are ignored: the user namespace is joined by path",
        );
    }
    if userns && !user_path {
        if linux.uid_mappings().is_none() || linux.gid_mappings().is_none() {
            bail!(
                "linux.namespaces: a new user namespace needs linux.uidMappings and linux.gidMappings"
            );
        }
        // An empty list would leave every id unmapped: the kernel then refuses even init's
        // setgid(0) with a bare EINVAL.
        for (field, maps) in [
            ("linux.uidMappings", linux.uid_mappings()),
            ("linux.gidMappings", linux.gid_mappings()),
        ] {
            if maps.as_ref().is_some_and(|m| m.is_empty()) {
                bail!("{field}: empty; a new user namespace needs at least one range");
            }
        }
    }
    for key in linux
        .sysctl()
        .as_ref()
        .map(|m| m.keys().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        check_sysctl(spec, key)?;
    }
    if let Some(r) = linux.resources() {
        crate::cgroups::check(r)?;
    }
    if let Some(r) = linux.intel_rdt() {
        crate::intelrdt::check(r)?;
    }
    if linux.memory_policy().is_some() {
        return Err(not_supported("linux.memoryPolicy"));
    }
    if linux
        .mount_label()
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(not_supported(
            "linux.mountLabel (SELinux is not enabled on this host)",
        ));
    }
    if let Some(p) = linux.rootfs_propagation() {
        crate::rootfs::plan::propagation_flag(p)
            .ok_or_else(|| anyhow!("linux.rootfsPropagation {p:?}: unknown"))?;
    }
    for d in linux.devices().as_deref().unwrap_or_default() {
        check_path("linux.devices path", d.path())?;
        if !d.path().is_absolute() {
            bail!(
                "linux.devices {}: path must be absolute",
                d.path().display()
            );
        }
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
        && !has_ns(spec, LinuxNamespaceType::Time)
    {
        bail!("linux.timeOffsets: needs a new time namespace in linux.namespaces");
    }
    for k in linux
        .time_offsets()
        .as_ref()
        .map(|m| m.keys().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if k != "monotonic" && k != "boottime" {
            bail!("linux.timeOffsets {k:?}: only monotonic and boottime can be offset");
        }
    }
    check_mount_namespace(linux.namespaces().as_deref().unwrap_or_default())
}

/// ruse builds the rootfs in the container's own mount namespace, new or joined by path (as
/// runc and crun do, in the joined one). A new user namespace never owns a namespace joined
/// by path, so it could mount nothing in a joined mount namespace.
fn check_mount_namespace(list: &[oci_spec::runtime::LinuxNamespace]) -> Result<()> {
    let find = |t| list.iter().find(|n| n.typ() == t);
    let Some(mnt) = find(LinuxNamespaceType::Mount) else {
        bail!("linux.namespaces: ruse needs a mount namespace (new or joined by path) to build the rootfs");
    };
    let new_user = find(LinuxNamespaceType::User).is_some_and(|u| u.path().is_none());
    if let (Some(p), true) = (mnt.path(), new_user) {
        bail!(
            "linux.namespaces mount path {}: a mount namespace joined by path cannot be used with a new user namespace, which would not own it (join the user namespace that owns it)",
            p.display()
        );
    }
    Ok(())
}

/// A path field the kernel will see: a NUL byte would cut it short (and print raw in
/// messages), and the kernel refuses paths of PATH_MAX bytes or more.
fn check_path(field: &str, p: &Path) -> Result<()> {
    let b = p.as_os_str().as_encoded_bytes();
    if b.contains(&0) {
        bail!("{field}: contains a NUL byte");
    }
    if b.len() >= libc::PATH_MAX as usize {
        bail!("{field}: {} bytes, longer than PATH_MAX", b.len());
    }
    Ok(())
}

fn check_maps(field: &str, maps: Option<&[LinuxIdMapping]>, userns: bool) -> Result<()> {
    let Some(maps) = maps else { return Ok(()) };
    if !maps.is_empty() && !userns {
        bail!("{field}: id mappings need a user namespace in linux.namespaces");
    }
    crate::userns::check_ranges(field, maps)
}

/// A sysctl is only allowed when the namespace it belongs to is the container's own.
fn check_sysctl(spec: &Spec, key: &str) -> Result<()> {
    use LinuxNamespaceType as T;
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let need = if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        T::Ipc
    } else if key.starts_with("net.") {
        T::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        T::Uts
    } else {
        bail!("linux.sysctl {key:?}: not namespaced; setting it would change the host");
    };
    if key.contains("..") || key.contains('/') && key.contains("..") {
        bail!("linux.sysctl {key:?}: invalid name");
    }
    if !has_ns(spec, need) {
        bail!("linux.sysctl {key:?}: needs a new {need} namespace in linux.namespaces");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        match parse(json.as_bytes()).and_then(|s| validate(&s).map(|_| s)) {
            Ok(_) => String::from("ok"),
            Err(e) => format!("{e:#}"),
        }
    }

    const BASE: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"}"#;

    #[test]
    fn syntax_errors_carry_position() {
        assert!(err("{").contains("line 1"), "{}", err("{"));
        assert!(err("null").contains("JSON object"));
    }

    #[test]
    fn type_errors_name_the_field() {
        let e = err(r#"{"ociVersion":"1.0.2","process":{"args":"sh","cwd":"/"}}"#);
        assert!(e.contains("process.args"), "{e}");
        let e = err(
            r#"{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","user":{"uid":-1,"gid":0}}}"#,
        );
        assert!(e.contains("process.user.uid"), "{e}");
    }

    #[test]
    fn semantic_checks() {
        assert_eq!(err(&format!("{BASE}}}")), "ok");
        assert!(err(
            r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":[],"cwd":"/"}}"#
        )
        .contains("process.args"));
        assert!(err(r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"rel"}}"#).contains("process.cwd"));
        assert!(
            err(r#"{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/"}}"#).contains("user")
        );
        assert!(err(&format!("{BASE},\"hostname\":\"h\"}}")).contains("uts namespace"));
        let e = err(&format!(
            "{BASE},\"linux\":{{\"sysctl\":{{\"kernel.core_pattern\":\"x\"}}}}}}"
        ));
        assert!(e.contains("not namespaced"), "{e}");
        let e = err(&format!(
            "{BASE},\"linux\":{{\"namespaces\":[{{\"type\":\"pid\"}},{{\"type\":\"pid\"}}]}}}}"
        ));
        assert!(e.contains("twice"), "{e}");
        let e = err(&format!(
            "{BASE},\"linux\":{{\"namespaces\":[{{\"type\":\"network\",\"path\":\"proc/1/ns/net\"}}]}}}}"
        ));
        assert!(e.contains("absolute"), "{e}");
        let e = err(&format!(
            "{BASE},\"linux\":{{\"namespaces\":[{{\"type\":\"user\"}}]}}}}"
        ));
        assert!(e.contains("uidMappings"), "{e}");
        assert_eq!(
            err(&format!(
                "{BASE},\"linux\":{{\"namespaces\":[{{\"type\":\"mount\"}}],\"seccomp\":{{\"defaultAction\":\"SCMP_ACT_ALLOW\"}}}}}}"
            )),
            "ok"
        );
        let e = err(&format!(
            "{BASE},\"linux\":{{\"namespaces\":[{{\"type\":\"pid\"}}]}}}}"
        ));
        assert!(e.contains("needs a mount namespace"), "{e}");
        let e = err(&format!(
            "{BASE},\"linux\":{{\"namespaces\":[{{\"type\":\"mount\",\"path\":\"/m\"}},{{\"type\":\"user\"}}],\"uidMappings\":[{{\"containerID\":0,\"hostID\":1,\"size\":1}}],\"gidMappings\":[{{\"containerID\":0,\"hostID\":1,\"size\":1}}]}}}}"
        ));
        assert!(
            e.contains("mount path /m") && e.contains("new user namespace"),
            "{e}"
        );
        let e = err(&format!(
            "{BASE},\"linux\":{{\"seccomp\":{{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_BOGUS\"}}]}}}}}}"
        ));
        assert!(e.contains("linux.seccomp.syscalls[0].action"), "{e}");
    }

    #[test]
    fn unknown_fields_are_ignored_and_unknown_caps_dropped() {
        let j = r#"{"ociVersion":"1.0.2","future":1,"process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/","x":2,
            "capabilities":{"bounding":["CAP_CHOWN","CAP_NOT_A_CAP"]}}}"#;
        let s = parse(j.as_bytes()).unwrap();
        let caps = s
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
    }
}

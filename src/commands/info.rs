//! Verbs that only report: `list`, `spec`, `features`, `--version`.

use super::Globals;
use crate::cli::ListFormat;
use crate::container::{list_ids, peek_facts};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;

pub fn list(g: &Globals, format: ListFormat, quiet: bool) -> Result<()> {
    let mut rows = Vec::new();
    for id in list_ids(&g.root)? {
        // Entries may vanish, or be mid-create, while we look: skip those.
        let Some(f) = peek_facts(&g.root, &id) else {
            continue;
        };
        let status = f.status(&g.root.join(&id));
        rows.push((f.clone(), f.oci_state(status)));
    }
    if quiet {
        rows.iter().for_each(|(f, _)| println!("{}", f.id));
        return Ok(());
    }
    if format == ListFormat::Json {
        let v: Vec<&Value> = rows.iter().map(|(_, s)| s).collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    println!(
        "{:<12} {:<8} {:<10} {:<40} {:<31} OWNER",
        "ID", "PID", "STATUS", "BUNDLE", "CREATED"
    );
    for (f, s) in &rows {
        println!(
            "{:<12} {:<8} {:<10} {:<40} {:<31} {}",
            f.id,
            s["pid"].as_i64().unwrap_or(0),
            s["status"].as_str().unwrap_or(""),
            f.bundle.display(),
            f.created,
            f.owner
        );
    }
    Ok(())
}

/// runc's default spec (with ruse's hostname), or its rootless variant.
pub fn default_spec(rootless: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut s = json!({
        "ociVersion": crate::state::OCI_VERSION,
        "process": {
            "terminal": true, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "ruse",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        let (uid, gid) = (
            crate::sys::process::geteuid(),
            crate::sys::process::getegid(),
        );
        let linux = &mut s["linux"];
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}, {"type": "user"}]);
        // runc's ToRootless: no sysfs of our own (it needs a network namespace owned by the
        // user namespace) but the host's, bound read-only in its place; /sys/fs/cgroup stays,
        // read-only; devpts without gid=5, which only root's maps would cover.
        for m in s["mounts"].as_array_mut().expect("mounts is an array") {
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
                opts.retain(|o| {
                    !o.as_str()
                        .is_some_and(|o| o.starts_with("uid=") || o.starts_with("gid="))
                });
            }
        }
    }
    s
}

pub fn spec(bundle: Option<&Path>, rootless: bool, network: Option<&str>) -> Result<()> {
    let dir = bundle.unwrap_or(Path::new("."));
    let path = dir.join("config.json");
    if path.exists() {
        bail!("file {} exists: remove it first", path.display());
    }
    let mut s = default_spec(rootless);
    if network == Some("bridge") {
        if rootless {
            bail!("--network bridge: a rootless container cannot build host networking");
        }
        // Every setting spelled out with its default, ready to edit (see README "Networking").
        s["annotations"] = json!({
            "ruse.network.mode": "bridge",
            "ruse.network.bridge": "ruse0",
            "ruse.network.subnet": "10.89.0.0/24",
            "ruse.network.gateway": "10.89.0.1",
            "ruse.network.interface": "eth0",
            "ruse.network.ports": "",
            "ruse.network.masquerade": "false"
        });
    }
    let text = serde_json::to_string_pretty(&s)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))
}

/// runtime-spec features.md: only what ruse really implements.
pub fn features() -> Result<()> {
    let ns = [
        "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
    ];
    let opts = [
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "idmap",
        "iversion",
        "lazytime",
        "loud",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "noiversion",
        "nolazytime",
        "nostrictatime",
        "nosuid",
        "nosymfollow",
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
        "rbind",
        "ridmap",
        "relatime",
        "norelatime",
        "ro",
        "rw",
        "silent",
        "strictatime",
        "suid",
        "symfollow",
        "sync",
        "tmpcopyup",
        "rro",
        "rrw",
        "rnosuid",
        "rsuid",
        "rnodev",
        "rdev",
        "rnoexec",
        "rexec",
        "rnodiratime",
        "rdiratime",
        "rrelatime",
        "rnorelatime",
        "rnoatime",
        "ratime",
        "rstrictatime",
        "rnostrictatime",
        "rnosymfollow",
        "rsymfollow",
    ];
    let f = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::state::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": opts.to_vec(),
        "linux": {
            "namespaces": ns,
            "capabilities": crate::caps::all_names(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true},
            "seccomp": seccomp_features(),
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": true},
            "mountExtensions": {"idmap": {"enabled": true}},
            "netDevices": {"enabled": true}
        },
        "annotations": {"org.opencontainers.runtime-spec.features.ruse.version": env!("CARGO_PKG_VERSION")}
    });
    println!("{}", serde_json::to_string_pretty(&f)?);
    Ok(())
}

/// The seccomp actions, operators, architectures and flags ruse compiles; actions and flags
/// the running kernel lacks are left out (probed with seccomp(2), as libseccomp does).
fn seccomp_features() -> Value {
    use crate::sys::seccomp::{action_supported, flag_supported};
    let [actions, ops, archs, flags] = crate::seccomp::features();
    let ret = |a: &str| match a {
        "SCMP_ACT_KILL_PROCESS" => libc::SECCOMP_RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => libc::SECCOMP_RET_TRAP,
        "SCMP_ACT_ERRNO" => libc::SECCOMP_RET_ERRNO,
        "SCMP_ACT_NOTIFY" => libc::SECCOMP_RET_USER_NOTIF,
        "SCMP_ACT_TRACE" => libc::SECCOMP_RET_TRACE,
        "SCMP_ACT_LOG" => libc::SECCOMP_RET_LOG,
        "SCMP_ACT_ALLOW" => libc::SECCOMP_RET_ALLOW,
        _ => libc::SECCOMP_RET_KILL_THREAD,
    };
    let bit = |f: &str| match f {
        "SECCOMP_FILTER_FLAG_TSYNC" => libc::SECCOMP_FILTER_FLAG_TSYNC,
        "SECCOMP_FILTER_FLAG_LOG" => libc::SECCOMP_FILTER_FLAG_LOG,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        // The kernel accepts it only together with a listener.
        _ => libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
    };
    let actions: Vec<&str> = actions
        .into_iter()
        .filter(|a| action_supported(ret(a)))
        .collect();
    let supported: Vec<&str> = flags
        .iter()
        .copied()
        .filter(|f| flag_supported(bit(f)))
        .collect();
    json!({
        "enabled": true,
        "actions": actions,
        "operators": ops,
        "archs": archs,
        "knownFlags": flags,
        "supportedFlags": supported,
    })
}

pub fn version() {
    println!("ruse version {}", env!("CARGO_PKG_VERSION"));
    println!(
        "commit: {}",
        option_env!("RUSE_COMMIT").unwrap_or("unknown")
    );
    println!("spec: {}", crate::state::OCI_VERSION);
}

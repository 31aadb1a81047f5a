//! Makes crun runnable on hybrid cgroup hosts. crun 1.8 refuses to start containers when
//! `/sys/fs/cgroup/unified` (the cgroup2 tree of a hybrid host) has controllers enabled. For
//! crun only, before `main` (still single-threaded, which `unshare(CLONE_NEWNS)` requires),
//! the test process moves into a private mount namespace and covers that directory with an
//! empty tmpfs, as `scripts/bench.sh` does: the host's hierarchies are untouched, and every
//! runtime invocation of the suite inherits the namespace.
//!
//! The namespace's mounts are made slaves of the host's (nothing propagates back) and then
//! shared, so that containers created from it still receive mounts the checks make.

use std::ffi::CString;
use std::process::Command;

const UNIFIED: &str = "/sys/fs/cgroup/unified";

fn unified_has_controllers() -> bool {
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(&format!(" {UNIFIED} ")) && l.contains(" - cgroup2 "));
    mounted
        && std::fs::read_to_string(format!("{UNIFIED}/cgroup.controllers"))
            .is_ok_and(|c| !c.trim().is_empty())
}

fn is_crun() -> bool {
    Command::new(crate::runtime_path())
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).starts_with("crun "))
}

fn mount(src: &str, dst: &str, fstype: &str, flags: libc::c_ulong, data: &str) -> bool {
    let c = |s: &str| CString::new(s).unwrap();
    let (src, dst, fstype, data) = (c(src), c(dst), c(fstype), c(data));
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr() as *const libc::c_void,
        ) == 0
    }
}

/// Called before `main` by `oci_conformance::init!()`.
pub fn prepare_for_runtime() {
    if std::env::var_os("OCI_CONFORMANCE_NO_NS").is_some()
        || !crate::is_root()
        || !unified_has_controllers()
        || !is_crun()
    {
        return;
    }
    // SAFETY: unshare with a constant flag; we are single-threaded before main.
    let ok = unsafe { libc::unshare(libc::CLONE_NEWNS) } == 0
        && mount("none", "/", "", libc::MS_REC | libc::MS_SLAVE, "")
        && mount("none", "/", "", libc::MS_REC | libc::MS_SHARED, "")
        && mount("none", UNIFIED, "tmpfs", 0, "mode=755");
    if !ok {
        let e = std::io::Error::last_os_error();
        eprintln!("oci-conformance: private mount namespace for crun: {e}");
        std::process::exit(1);
    }
    eprintln!(
        "oci-conformance: crun on a hybrid cgroup host: running in a private mount namespace \
         with an empty tmpfs over {UNIFIED}"
    );
}

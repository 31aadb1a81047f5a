//! Linux capabilities: names ↔ numbers, the five sets of `process.capabilities`, and the order
//! the kernel needs them applied in (bounding first, then the uid change, then the rest).

use crate::sys::process::{capset, prctl};
use anyhow::{Context, Result};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

const NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of a capability name (`CAP_CHOWN` → 0), None for names this kernel table lacks.
pub fn number(name: &str) -> Option<u32> {
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .map(|i| i as u32)
}

/// Highest capability the running kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NAMES.len() as u32 - 1)
}

fn mask(set: &Option<Capabilities>) -> u64 {
    set.iter()
        .flatten()
        .filter_map(|c| number(&format!("CAP_{c}")))
        .fold(0u64, |m, n| m | (1u64 << n))
}

/// The five sets as bit masks, in the order bounding, effective, permitted, inheritable, ambient.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CapMasks {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapMasks {
    pub fn from_spec(c: &LinuxCapabilities) -> Self {
        CapMasks {
            bounding: mask(c.bounding()),
            effective: mask(c.effective()),
            permitted: mask(c.permitted()),
            inheritable: mask(c.inheritable()),
            ambient: mask(c.ambient()),
        }
    }
}

/// Drops every capability outside the bounding set. Must run while CAP_SETPCAP is held.
pub fn drop_bounding(m: &CapMasks) -> Result<()> {
    for cap in 0..=last_cap() {
        if m.bounding & (1 << cap) == 0 {
            prctl(libc::PR_CAPBSET_DROP, cap as u64, 0).with_context(|| {
                format!(
                    "drop {} from the bounding set",
                    NAMES.get(cap as usize).unwrap_or(&"?")
                )
            })?;
        }
    }
    Ok(())
}

/// Sets effective/permitted/inheritable, then raises the ambient ones that are both permitted
/// and inheritable. runc raises ambient capabilities one by one and only warns when the kernel
/// refuses one (a cap outside permitted ∩ inheritable, as in its own default spec), so configs
/// written for runc run unchanged; `bundle::load` warns about those before anything starts.
pub fn apply_sets(m: &CapMasks) -> Result<()> {
    capset(m.effective, m.permitted, m.inheritable).context("set capabilities")?;
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as u64,
        0,
    )
    .context("clear ambient capabilities")?;
    for cap in 0..=last_cap() {
        if m.raisable_ambient() & (1 << cap) != 0 {
            prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as u64,
                cap as u64,
            )
            .with_context(|| {
                format!("raise ambient {}", NAMES.get(cap as usize).unwrap_or(&"?"))
            })?;
        }
    }
    Ok(())
}

impl CapMasks {
    /// The ambient capabilities the kernel lets us raise: those also permitted and inheritable.
    pub fn raisable_ambient(&self) -> u64 {
        self.ambient & self.permitted & self.inheritable
    }

    /// Names of the ambient capabilities that will not be raised (for a warning).
    pub fn unraisable_ambient(&self) -> Vec<&'static str> {
        let lost = self.ambient & !self.raisable_ambient();
        (0..64u32)
            .filter(|c| lost & (1u64 << c) != 0)
            .filter_map(|c| NAMES.get(c as usize).copied())
            .collect()
    }
}

/// All capability names ruse knows (for `features`).
pub fn all_names() -> &'static [&'static str] {
    NAMES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("cap_sys_admin"), Some(21));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_BOGUS"), None);
    }

    #[test]
    fn masks_from_spec() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_KILL"]}"#,
        )
        .unwrap();
        let m = CapMasks::from_spec(&c);
        assert_eq!(m.bounding, 1 | 1 << 5);
        assert_eq!(m.effective, 1 << 5);
        assert_eq!(m.inheritable, 0);
    }

    #[test]
    fn ambient_needs_permitted_and_inheritable() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"permitted":["CAP_KILL","CAP_CHOWN"],"inheritable":["CAP_KILL"],"ambient":["CAP_KILL","CAP_CHOWN"]}"#,
        )
        .unwrap();
        let m = CapMasks::from_spec(&c);
        assert_eq!(m.raisable_ambient(), 1 << 5);
        assert_eq!(m.unraisable_ambient(), ["CAP_CHOWN"]);
    }
}

//! `linux.seccomp` → one classic-BPF program whose every decision equals the one runc 1.1 +
//! libseccomp 2.5 make for the same profile. Pure: `create` compiles it once while checking
//! the bundle (host namespaces, before anything is touched) and hands the program to init
//! with its config; init installs it (`sys::seccomp`).
//!
//! # Design
//! seccompiler's `SeccompFilter` has one match action per filter, one architecture (with a
//! KILL_PROCESS for any other), no SECCOMP_RET_USER_NOTIF and no notion of rule precedence.
//! Stacking one filter per action is not equivalent: the kernel runs every filter and keeps
//! the most restrictive result, so with `defaultAction: ERRNO` and a rule `ALLOW getpid`, the
//! "default" filter must itself allow getpid, and a syscall whose rules pick different
//! actions by argument cannot be split over filters without the negations seccompiler lacks.
//! So ruse installs a single filter and computes, per syscall, the one decision libseccomp
//! would, then lets seccompiler emit what it is good at:
//! - `profile.rs`: the spec's fields → actions (KILL is KILL_THREAD, ERRNO/TRACE default to
//!   EPERM, data truncated to 16 bits) and conditions (MASKED_EQ: `value` is the mask,
//!   `valueTwo` the datum), with errors that name the rule.
//! - `rules.rs`: per architecture and syscall number, runc's preprocessing (rules with the
//!   default action skipped, two conditions on one argument split into two rules, unknown
//!   names ignored) and, on i386, the socketcall(2)/ipc(2) twin of each socket and SysV IPC
//!   rule, as libseccomp adds it.
//! - `tree.rs`: libseccomp's per-syscall decision tree, rebuilt node for node: a rule without
//!   arguments decides alone (the first one); otherwise each comparison becomes 32-bit word
//!   nodes (high word, then low word on 64-bit ABIs), rules merge where nodes are equal, each
//!   level stays sorted as libseccomp sorts it (higher argument first, EQ/NE/MASKED_EQ before
//!   LT/LE before GT/GE, greater datum first, smaller for LT/LE), and the merges libseccomp
//!   refuses with EEXIST (where runc then fails) fail here too. The tree is flattened into
//!   its paths in walk order; since the two sides of a node exclude each other, "first path
//!   that holds" is exactly libseccomp's walk.
//! - `bpf.rs`: runc's -ENOSYS stub (for the listed architectures, a syscall numbered above
//!   every syscall the profile names returns ENOSYS unless the default action is ALLOW, LOG
//!   or TRACE), the architecture dispatch (the native ABI always, plus the listed ones that
//!   can run here; x32 shares x86_64's token and is told apart by its number bit; any other
//!   ABI is killed like libseccomp's bad-arch action), a binary search over syscall numbers,
//!   and per syscall a first-match chain of seccompiler rule blocks (one per tree path: a
//!   low-word node is a 32-bit seccompiler condition, a high-word node a 64-bit one against
//!   the word's bounds), each followed by the `ret` of its action, including
//!   SECCOMP_RET_USER_NOTIF, which seccompiler has no action for.
//!
//! The verdicts are checked against runc on this kernel by tests/seccomp*.rs. One deliberate
//! divergence: libseccomp 2.5.4's BPF generator assumes a node's accumulator still holds the
//! word the previous sibling node loaded, even when control falls through from that
//! sibling's subtree, which loaded other words; with overlapping rules on one syscall runc's
//! filter then compares the wrong argument word and applies a rule whose conditions do not
//! hold (about 1 call in 400 in tests/seccomp_random.rs). ruse loads every word it compares
//! and applies the tree as libseccomp defines it.

mod arch;
mod bpf;
#[cfg(test)]
mod interp;
mod profile;
mod rules;
mod tables;
mod tree;

pub use arch::Arch;
pub use profile::Profile;

use anyhow::{Context, Result};
use oci_spec::runtime::LinuxSeccomp;
use profile::Action;
use serde::{Deserialize, Serialize};

/// A compiled profile, ready for `sys::seccomp::install`; it crosses to init inside the
/// channel's config, each instruction packed in a u64.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Compiled {
    insns: Vec<u64>,
    /// SECCOMP_FILTER_FLAG_* for seccomp(2).
    pub flags: libc::c_ulong,
    /// Syscall names no table knows; ignored, as runc does.
    #[serde(skip)]
    pub unknown: Vec<String>,
}

impl Compiled {
    pub fn program(&self) -> Vec<seccompiler::sock_filter> {
        self.insns
            .iter()
            .map(|i| seccompiler::sock_filter {
                code: *i as u16,
                jt: (*i >> 16) as u8,
                jf: (*i >> 24) as u8,
                k: (*i >> 32) as u32,
            })
            .collect()
    }
}

pub fn compile(s: &LinuxSeccomp) -> Result<Compiled> {
    let p = Profile::from_oci(s)?;
    let mut arches = Vec::new();
    for a in p.filter_arches() {
        let plan = rules::plan(&p, a)?;
        arches.push((a, plan));
    }
    let enosys = if matches!(p.default, Action::Allow | Action::Log | Action::Trace(_)) {
        Vec::new()
    } else {
        enosys_max(&p)
    };
    let program = bpf::program(&bpf::Plan {
        default: p.default,
        arches: &arches,
        enosys: &enosys,
    })
    .context("linux.seccomp")?;
    let mut unknown: Vec<String> = p
        .rules
        .iter()
        .flat_map(|r| r.names.iter())
        .filter(|n| !arch::known(n))
        .cloned()
        .collect();
    unknown.dedup();
    let insns = program
        .iter()
        .map(|i| {
            u64::from(i.code) | u64::from(i.jt) << 16 | u64::from(i.jf) << 24 | u64::from(i.k) << 32
        })
        .collect();
    Ok(Compiled {
        insns,
        flags: flags(&p.flags, p.uses_notify()),
        unknown,
    })
}

/// runc's findLastSyscalls: per listed architecture, the greatest number among the names of
/// every rule (whatever its action or arguments).
fn enosys_max(p: &Profile) -> Vec<(Arch, u32)> {
    p.listed
        .iter()
        .filter_map(|a| {
            let max = p
                .rules
                .iter()
                .flat_map(|r| r.names.iter())
                .filter_map(|n| a.number(n))
                .max()?;
            Some((*a, max))
        })
        .collect()
}

fn flags(f: &profile::Flags, notify: bool) -> libc::c_ulong {
    let mut v = 0;
    if f.tsync {
        v |= libc::SECCOMP_FILTER_FLAG_TSYNC;
    }
    if f.log {
        v |= libc::SECCOMP_FILTER_FLAG_LOG;
    }
    if f.spec_allow {
        v |= libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    }
    if notify {
        v |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        // The kernel refuses TSYNC with a listener unless failures are reported as ESRCH,
        // and WAIT_KILLABLE_RECV without a listener (libseccomp sets it only with NOTIFY).
        if f.tsync {
            v |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
        if f.wait_killable_recv {
            v |= libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
        }
    }
    v
}

/// Compiles a bundle's profile (the parent, before anything is touched) and reports the
/// syscall names it ignores at debug level, as runc does.
pub fn check(s: &LinuxSeccomp) -> Result<Compiled> {
    let c = compile(s)?;
    for name in &c.unknown {
        crate::log::debug(&format!("unknown seccomp syscall {name:?} ignored"));
    }
    Ok(c)
}

/// What `features` reports: (actions, operators, archs, flags), before the kernel probes.
pub fn features() -> [Vec<&'static str>; 4] {
    let actions = [
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_TRAP",
    ];
    let ops = [
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_LE",
        "SCMP_CMP_LT",
        "SCMP_CMP_MASKED_EQ",
        "SCMP_CMP_NE",
    ];
    let flags = [
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ];
    let archs = Arch::ALL.iter().map(|a| a.scmp_name()).collect();
    [actions.to_vec(), ops.to_vec(), archs, flags.to_vec()]
}

#[cfg(test)]
mod tests;

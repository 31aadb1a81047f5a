//! `linux.seccomp` → a checked profile: actions with their data, conditions with libseccomp's
//! operand conventions, the architectures and flags. Every error names the field or the rule
//! (`linux.seccomp.syscalls[3]`). Pure; runs in `create` before anything is touched.

use super::arch::Arch;
use anyhow::{bail, Result};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as OciAction, LinuxSeccompFilterFlag as OciFlag,
    LinuxSeccompOperator as OciOp,
};

/// libseccomp accepts SCMP_ACT_ERRNO(0..=4094).
const MAX_ERRNO: u16 = 4094;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    KillProcess,
    KillThread,
    Trap,
    Errno(u16),
    Notify,
    Trace(u16),
    Log,
    Allow,
}

impl Action {
    /// The filter's return value (SECCOMP_RET_* | data).
    pub fn ret(self) -> u32 {
        match self {
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Errno(e) => libc::SECCOMP_RET_ERRNO | u32::from(e),
            Action::Notify => libc::SECCOMP_RET_USER_NOTIF,
            Action::Trace(d) => libc::SECCOMP_RET_TRACE | u32::from(d),
            Action::Log => libc::SECCOMP_RET_LOG,
            Action::Allow => libc::SECCOMP_RET_ALLOW,
        }
    }

    /// runc's mapping: KILL is KILL_THREAD; ERRNO and TRACE default to EPERM; the data is
    /// truncated to 16 bits as runc does, and libseccomp refuses an errno above 4094.
    fn from_oci(a: OciAction, errno_ret: Option<u32>, field: &str) -> Result<Action> {
        let data = |v: Option<u32>| v.map_or(libc::EPERM as u16, |e| e as u16);
        if errno_ret.is_some() && !matches!(a, OciAction::ScmpActErrno | OciAction::ScmpActTrace) {
            bail!("{field}: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {a}");
        }
        if a == OciAction::ScmpActErrno && data(errno_ret) > MAX_ERRNO {
            bail!(
                "{field} {}: above {MAX_ERRNO}, the largest errno libseccomp lets a filter return",
                errno_ret.unwrap_or(0)
            );
        }
        Ok(match a {
            OciAction::ScmpActKill | OciAction::ScmpActKillThread => Action::KillThread,
            OciAction::ScmpActKillProcess => Action::KillProcess,
            OciAction::ScmpActTrap => Action::Trap,
            OciAction::ScmpActErrno => Action::Errno(data(errno_ret)),
            OciAction::ScmpActNotify => Action::Notify,
            OciAction::ScmpActTrace => Action::Trace(data(errno_ret)),
            OciAction::ScmpActLog => Action::Log,
            OciAction::ScmpActAllow => Action::Allow,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// One argument comparison. For MASKED_EQ, `mask` is the spec's `value` and `datum` its
/// `valueTwo` (libseccomp's operand order); for the others `mask` is all ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cond {
    pub arg: u8,
    pub op: Op,
    pub datum: u64,
    pub mask: u64,
}

#[derive(Clone, Debug)]
pub struct Rule {
    /// Position in linux.seccomp.syscalls, for messages.
    pub index: usize,
    pub names: Vec<String>,
    pub action: Action,
    pub conds: Vec<Cond>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub tsync: bool,
    pub log: bool,
    pub spec_allow: bool,
    pub wait_killable_recv: bool,
}

#[derive(Clone, Debug)]
pub struct Profile {
    pub default: Action,
    /// The architectures listed in the profile that can run here (they get runc's -ENOSYS
    /// stub); the filter itself also always covers the native one, as libseccomp's does.
    pub listed: Vec<Arch>,
    pub flags: Flags,
    pub rules: Vec<Rule>,
}

impl Profile {
    pub fn from_oci(s: &LinuxSeccomp) -> Result<Profile> {
        let default = Action::from_oci(
            s.default_action(),
            s.default_errno_ret(),
            "linux.seccomp.defaultErrnoRet",
        )?;
        if default == Action::Notify {
            bail!("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (the runtime's own last syscalls would wait for the agent), as in runc");
        }
        let mut listed = Vec::new();
        for a in s.architectures().as_deref().unwrap_or_default() {
            if let Some(a) = Arch::from_oci(*a).filter(|a| a.runnable_here()) {
                if !listed.contains(&a) {
                    listed.push(a);
                }
            }
        }
        let mut flags = Flags::default();
        for f in s.flags().as_deref().unwrap_or_default() {
            match f {
                OciFlag::SeccompFilterFlagTsync => flags.tsync = true,
                OciFlag::SeccompFilterFlagLog => flags.log = true,
                OciFlag::SeccompFilterFlagSpecAllow => flags.spec_allow = true,
                OciFlag::SeccompFilterFlagWaitKillableRecv => flags.wait_killable_recv = true,
            }
        }
        let mut rules = Vec::new();
        for (i, sc) in s
            .syscalls()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let field = format!("linux.seccomp.syscalls[{i}]");
            let action =
                Action::from_oci(sc.action(), sc.errno_ret(), &format!("{field}.errnoRet"))?;
            if let Some(j) = sc.names().iter().position(|n| n.is_empty()) {
                bail!("{field}.names[{j}]: empty syscall name");
            }
            if action == Action::Notify && sc.names().iter().any(|n| n == "sendmsg") {
                bail!("{field}: SCMP_ACT_NOTIFY cannot be used for sendmsg (the runtime sends the listener fd with it)");
            }
            let mut conds = Vec::new();
            for (j, a) in sc.args().as_deref().unwrap_or_default().iter().enumerate() {
                if a.index() > 5 {
                    bail!(
                        "{field}.args[{j}].index {}: syscalls have 6 arguments (0-5)",
                        a.index()
                    );
                }
                let (op, datum, mask) = match a.op() {
                    OciOp::ScmpCmpMaskedEq => (Op::MaskedEq, a.value_two().unwrap_or(0), a.value()),
                    op => (plain_op(op), a.value(), u64::MAX),
                };
                conds.push(Cond {
                    arg: a.index() as u8,
                    op,
                    datum,
                    mask,
                });
            }
            rules.push(Rule {
                index: i,
                names: sc.names().clone(),
                action,
                conds,
            });
        }
        if let Some(r) = rules.iter().find(|r| r.action == Action::Notify) {
            if s.listener_path()
                .as_deref()
                .map_or(true, |p| p.as_os_str().is_empty())
            {
                bail!("linux.seccomp.listenerPath: required by SCMP_ACT_NOTIFY in linux.seccomp.syscalls[{}]", r.index);
            }
        }
        Ok(Profile {
            default,
            listed,
            flags,
            rules,
        })
    }

    pub fn uses_notify(&self) -> bool {
        self.rules.iter().any(|r| r.action == Action::Notify)
    }

    /// Native first, then the listed ones, without repeats.
    pub fn filter_arches(&self) -> Vec<Arch> {
        let mut v = vec![Arch::native()];
        v.extend(self.listed.iter().filter(|a| **a != Arch::native()));
        v
    }
}

fn plain_op(op: OciOp) -> Op {
    match op {
        OciOp::ScmpCmpNe => Op::Ne,
        OciOp::ScmpCmpLt => Op::Lt,
        OciOp::ScmpCmpLe => Op::Le,
        OciOp::ScmpCmpEq => Op::Eq,
        OciOp::ScmpCmpGe => Op::Ge,
        OciOp::ScmpCmpGt => Op::Gt,
        OciOp::ScmpCmpMaskedEq => Op::MaskedEq,
    }
}

#[cfg(test)]
pub(crate) fn parse(json: &str) -> Result<Profile> {
    let s: LinuxSeccomp = serde_json::from_str(json)?;
    Profile::from_oci(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        format!("{:#}", parse(json).unwrap_err())
    }

    #[test]
    fn actions_and_defaults_follow_runc() {
        let p = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["a"],"action":"SCMP_ACT_KILL"},
            {"names":["b"],"action":"SCMP_ACT_TRACE"},
            {"names":["c"],"action":"SCMP_ACT_ERRNO","errnoRet":65541},
            {"names":["d"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":255,"valueTwo":3,"op":"SCMP_CMP_MASKED_EQ"},{"index":0,"value":9,"op":"SCMP_CMP_LE"}]}]}"#,
        )
        .unwrap();
        assert_eq!(p.default, Action::Errno(1));
        assert_eq!(p.rules[0].action, Action::KillThread);
        assert_eq!(p.rules[1].action, Action::Trace(1));
        assert_eq!(p.rules[2].action, Action::Errno(5));
        let c = &p.rules[3].conds;
        assert_eq!((c[0].op, c[0].datum, c[0].mask), (Op::MaskedEq, 3, 255));
        assert_eq!((c[1].op, c[1].datum, c[1].mask), (Op::Le, 9, u64::MAX));
        assert_eq!(Action::Errno(38).ret(), 0x0005_0026);
        assert_eq!(Action::Notify.ret(), 0x7fc0_0000);
    }

    #[test]
    fn bad_profiles_name_the_rule() {
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_KILL","errnoRet":1}]}"#,
        );
        assert!(
            e.contains("linux.seccomp.syscalls[0]") && e.contains("errnoRet"),
            "{e}"
        );
        let e = err(r#"{"defaultAction":"SCMP_ACT_KILL","defaultErrnoRet":1}"#);
        assert!(e.contains("linux.seccomp.defaultErrnoRet"), "{e}");
        let e = err(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":5000}"#);
        assert!(
            e.contains("linux.seccomp.defaultErrnoRet") && e.contains("4094"),
            "{e}"
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","errnoRet":4095}]}"#,
        );
        assert!(e.contains("linux.seccomp.syscalls[0].errnoRet 4095"), "{e}");
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO"},{"names":["getpid"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert!(
            e.contains("linux.seccomp.syscalls[1].args[0].index 6"),
            "{e}"
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(
            e.contains("listenerPath") && e.contains("syscalls[0]"),
            "{e}"
        );
        let e = err(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#);
        assert!(e.contains("defaultAction"), "{e}");
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x","syscalls":[{"names":["sendmsg"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(e.contains("sendmsg"), "{e}");
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[""],"action":"SCMP_ACT_LOG"}]}"#,
        );
        assert!(e.contains("syscalls[0].names[0]"), "{e}");
    }

    #[test]
    fn arches_keep_only_what_runs_here() {
        let p = parse(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86","SCMP_ARCH_MIPS","SCMP_ARCH_X86","SCMP_ARCH_X32"]}"#).unwrap();
        if Arch::native() == Arch::X86_64 {
            assert_eq!(p.listed, vec![Arch::X86, Arch::X32]);
            assert_eq!(p.filter_arches(), vec![Arch::X86_64, Arch::X86, Arch::X32]);
        }
    }
}

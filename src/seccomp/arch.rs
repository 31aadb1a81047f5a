//! Seccomp architectures: the kernel's AUDIT_ARCH tokens, the syscall tables of each, which ones
//! a process on this host can enter the kernel with, and i386's multiplexed socket/ipc calls.
//! Pure data; used by the compiler in `create` (host namespaces) and in tests.

use oci_spec::runtime::Arch as OciArch;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// x32 syscalls enter as AUDIT_ARCH_X86_64 with this bit set in the number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
}

impl Arch {
    pub const ALL: [Arch; 5] = [Arch::X86_64, Arch::X86, Arch::X32, Arch::Aarch64, Arch::Arm];

    /// The architecture ruse itself runs as.
    pub fn native() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    /// The ABIs a process on this host can make syscalls with: the native one and its compat
    /// modes. Filters for any other architecture could never match, so they are not compiled.
    pub fn runnable_here(self) -> bool {
        match Arch::native() {
            Arch::Aarch64 => matches!(self, Arch::Aarch64 | Arch::Arm),
            _ => matches!(self, Arch::X86_64 | Arch::X86 | Arch::X32),
        }
    }

    pub fn audit(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => AUDIT_ARCH_X86_64,
            Arch::X86 => AUDIT_ARCH_I386,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
            Arch::Arm => AUDIT_ARCH_ARM,
        }
    }

    /// libseccomp compares 64-bit arguments whole on 64-bit ABIs and only the low 32 bits on
    /// 32-bit ones (x32 counts as 32-bit there, as in libseccomp).
    pub fn wide_args(self) -> bool {
        matches!(self, Arch::X86_64 | Arch::Aarch64)
    }

    pub fn scmp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::X32 => "SCMP_ARCH_X32",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
            Arch::Arm => "SCMP_ARCH_ARM",
        }
    }

    /// Maps an OCI architecture to one of ours; None for the ones that have no table here
    /// (mips, ppc, s390, riscv, …), which can never run on an x86_64 or aarch64 host.
    pub fn from_oci(a: OciArch) -> Option<Arch> {
        Some(match a {
            OciArch::ScmpArchNative => Arch::native(),
            OciArch::ScmpArchX86_64 => Arch::X86_64,
            OciArch::ScmpArchX86 => Arch::X86,
            OciArch::ScmpArchX32 => Arch::X32,
            OciArch::ScmpArchAarch64 => Arch::Aarch64,
            OciArch::ScmpArchArm => Arch::Arm,
            _ => return None,
        })
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        use super::tables;
        match self {
            Arch::X86_64 => tables::x86_64::TABLE,
            Arch::X86 => tables::x86::TABLE,
            Arch::X32 => tables::x32::TABLE,
            Arch::Aarch64 => tables::aarch64::TABLE,
            Arch::Arm => tables::arm::TABLE,
        }
    }

    /// The syscall's number on this ABI (x32 numbers include X32_SYSCALL_BIT).
    pub fn number(self, name: &str) -> Option<u32> {
        let t = self.table();
        t.binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| t[i].1)
    }
}

/// True when some ABI knows the name (libseccomp resolves any name it has a table entry for,
/// on any architecture; others are ignored with a debug message, as runc does).
pub fn known(name: &str) -> bool {
    Arch::ALL.iter().any(|a| a.number(name).is_some()) || multiplexed(name).is_some()
}

/// i386 reaches the socket and SysV IPC calls through socketcall(2)/ipc(2) with the call's
/// number in the first argument; libseccomp filters that path too. (socketcall/ipc number,
/// sub-call, whether the direct syscall is one libseccomp pairs with it.)
pub struct Mux {
    pub syscall: u32,
    pub call: u64,
    pub paired_direct: bool,
}

pub fn multiplexed(name: &str) -> Option<Mux> {
    const SOCKETCALL: u32 = 102;
    const IPC: u32 = 117;
    // libseccomp pairs only the direct syscalls numbered 359..=373 (socket) and 393..=402
    // (ipc); recvmmsg and sendmmsg have older direct numbers and no socketcall rule.
    let (syscall, call, paired_direct) = match name {
        "socket" => (SOCKETCALL, 1, true),
        "bind" => (SOCKETCALL, 2, true),
        "connect" => (SOCKETCALL, 3, true),
        "listen" => (SOCKETCALL, 4, true),
        "accept" => (SOCKETCALL, 5, false),
        "getsockname" => (SOCKETCALL, 6, true),
        "getpeername" => (SOCKETCALL, 7, true),
        "socketpair" => (SOCKETCALL, 8, true),
        "send" => (SOCKETCALL, 9, false),
        "recv" => (SOCKETCALL, 10, false),
        "sendto" => (SOCKETCALL, 11, true),
        "recvfrom" => (SOCKETCALL, 12, true),
        "shutdown" => (SOCKETCALL, 13, true),
        "setsockopt" => (SOCKETCALL, 14, true),
        "getsockopt" => (SOCKETCALL, 15, true),
        "sendmsg" => (SOCKETCALL, 16, true),
        "recvmsg" => (SOCKETCALL, 17, true),
        "accept4" => (SOCKETCALL, 18, true),
        "semop" => (IPC, 1, false),
        "semget" => (IPC, 2, true),
        "semctl" => (IPC, 3, true),
        "semtimedop" => (IPC, 4, false),
        "msgsnd" => (IPC, 11, true),
        "msgrcv" => (IPC, 12, true),
        "msgget" => (IPC, 13, true),
        "msgctl" => (IPC, 14, true),
        "shmat" => (IPC, 21, true),
        "shmdt" => (IPC, 22, true),
        "shmget" => (IPC, 23, true),
        "shmctl" => (IPC, 24, true),
        _ => return None,
    };
    Some(Mux {
        syscall,
        call,
        paired_direct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_resolve() {
        for a in Arch::ALL {
            let t = a.table();
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{a:?} not sorted");
        }
        assert_eq!(Arch::X86_64.number("getpid"), Some(39));
        assert_eq!(Arch::X86.number("getpid"), Some(20));
        assert_eq!(Arch::X32.number("getpid"), Some(39 | X32_SYSCALL_BIT));
        assert_eq!(Arch::Aarch64.number("getpid"), Some(172));
        assert_eq!(Arch::Arm.number("getpid"), Some(20));
        assert_eq!(Arch::X86.number("socket"), Some(359));
        assert_eq!(Arch::X86_64.number("_llseek"), None);
        assert_eq!(Arch::X86_64.number("cachestat"), Some(451));
        assert!(known("_llseek") && known("accept") && !known("no_such_call"));
    }

    #[test]
    fn direct_socket_and_ipc_numbers_match_the_paired_range() {
        for name in ["socket", "accept4", "shutdown", "semget", "msgctl", "shmdt"] {
            let n = Arch::X86.number(name).unwrap();
            assert!(multiplexed(name).unwrap().paired_direct);
            assert!(
                (359..=373).contains(&n) || (393..=402).contains(&n),
                "{name} {n}"
            );
        }
        for name in ["accept", "send", "recv", "semop", "semtimedop"] {
            assert!(Arch::X86.number(name).is_none(), "{name}");
        }
    }
}

//! Whole-program tests: compile profiles and run the BPF in the test interpreter. Expected
//! verdicts are the ones runc 1.1.5 + libseccomp 2.5.4 gave on this machine's kernel.

use super::interp::{run, Data};
use super::*;

const X86_64: u32 = 0xc000_003e;
const I386: u32 = 0x4000_0003;
const ALLOW: u32 = 0x7fff_0000;
const LOG: u32 = 0x7ffc_0000;
const KILL_THREAD: u32 = 0;
const KILL_PROCESS: u32 = 0x8000_0000;
const TRAP: u32 = 0x0003_0000;
const NOTIFY: u32 = 0x7fc0_0000;

fn errno(e: u32) -> u32 {
    0x0005_0000 | e
}

fn compiled(json: &str) -> Compiled {
    let s: LinuxSeccomp = serde_json::from_str(json).unwrap();
    compile(&s).unwrap()
}

fn verdict(c: &Compiled, arch: u32, nr: u32, args: &[u64]) -> u32 {
    run(&c.program(), &Data::new(arch, nr, args))
}

#[test]
fn default_errno_with_allow_and_log_rules() {
    // The case naive per-action filter stacking gets wrong.
    let c = compiled(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["getpid"],"action":"SCMP_ACT_ALLOW"},
        {"names":["getppid"],"action":"SCMP_ACT_LOG"},
        {"names":["getuid"],"action":"SCMP_ACT_KILL_PROCESS"},
        {"names":["getgid"],"action":"SCMP_ACT_TRAP"},
        {"names":["geteuid"],"action":"SCMP_ACT_KILL"},
        {"names":["getegid"],"action":"SCMP_ACT_TRACE","errnoRet":7}]}"#,
    );
    assert_eq!(verdict(&c, X86_64, 39, &[]), ALLOW);
    assert_eq!(verdict(&c, X86_64, 110, &[]), LOG);
    assert_eq!(verdict(&c, X86_64, 102, &[]), KILL_PROCESS);
    assert_eq!(verdict(&c, X86_64, 104, &[]), TRAP);
    assert_eq!(verdict(&c, X86_64, 107, &[]), KILL_THREAD);
    assert_eq!(verdict(&c, X86_64, 108, &[]), 0x7ff0_0007);
    assert_eq!(verdict(&c, X86_64, 0, &[]), errno(1));
    assert_eq!(c.flags, 0);
}

#[test]
fn arguments_compare_all_64_bits() {
    let h = 1u64 << 32;
    let c = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{"index":0,"value":5,"op":"SCMP_CMP_GT"}]},
        {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":2,"args":[{"index":0,"value":5,"op":"SCMP_CMP_LT"}]},
        {"names":["getuid"],"action":"SCMP_ACT_ERRNO","errnoRet":3,"args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_LE"}]},
        {"names":["getgid"],"action":"SCMP_ACT_ERRNO","errnoRet":4,"args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_GE"}]},
        {"names":["geteuid"],"action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{"index":1,"value":255,"valueTwo":257,"op":"SCMP_CMP_MASKED_EQ"}]},
        {"names":["getegid"],"action":"SCMP_ACT_ERRNO","errnoRet":6,"args":[{"index":5,"value":7,"op":"SCMP_CMP_NE"}]}]}"#,
    );
    let cases: &[(u32, &[u64], u32)] = &[
        (39, &[3], ALLOW),
        (39, &[6], errno(1)),
        (39, &[h], errno(1)),
        (39, &[h + 3], errno(1)),
        (110, &[3], errno(2)),
        (110, &[h], ALLOW),
        (102, &[h + 5], errno(3)),
        (102, &[h + 6], ALLOW),
        (102, &[2 * h], ALLOW),
        (102, &[6], errno(3)),
        (104, &[h + 4], ALLOW),
        (104, &[h + 5], errno(4)),
        (104, &[2 * h], errno(4)),
        (104, &[6], ALLOW),
        (107, &[0, 1], errno(5)),
        (107, &[0, h + 0x301], errno(5)),
        (107, &[0, 2], ALLOW),
        (108, &[0, 0, 0, 0, 0, 7], ALLOW),
        (108, &[0, 0, 0, 0, 0, h + 7], errno(6)),
    ];
    for (nr, args, want) in cases {
        assert_eq!(
            verdict(&c, X86_64, *nr, args),
            *want,
            "nr {nr} args {args:x?}"
        );
    }
}

#[test]
fn overlapping_rules_follow_libseccomp_order() {
    let c = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]},
        {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":2,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
        {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":3,"args":[{"index":0,"value":5,"op":"SCMP_CMP_GT"}]},
        {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":4,"args":[{"index":0,"value":10,"op":"SCMP_CMP_GT"}]},
        {"names":["getgid"],"action":"SCMP_ACT_ERRNO","errnoRet":7,"args":[{"index":0,"value":5,"op":"SCMP_CMP_NE"}]},
        {"names":["getgid"],"action":"SCMP_ACT_ERRNO","errnoRet":8,"args":[{"index":0,"value":7,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    assert_eq!(verdict(&c, X86_64, 39, &[1, 2]), errno(1));
    assert_eq!(verdict(&c, X86_64, 39, &[1, 0]), errno(2));
    assert_eq!(verdict(&c, X86_64, 110, &[7]), errno(3));
    assert_eq!(verdict(&c, X86_64, 110, &[11]), errno(4));
    assert_eq!(verdict(&c, X86_64, 104, &[7]), errno(8));
    assert_eq!(verdict(&c, X86_64, 104, &[6]), errno(7));
    assert_eq!(verdict(&c, X86_64, 104, &[5]), ALLOW);
}

#[test]
fn architectures_and_the_enosys_stub() {
    // Only x86_64 listed: i386 and x32 are foreign (killed), except the skipped syscall -1.
    let c = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
        "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    assert_eq!(verdict(&c, X86_64, 39, &[]), errno(1));
    assert_eq!(verdict(&c, I386, 20, &[]), KILL_THREAD);
    assert_eq!(verdict(&c, X86_64, 39 | 0x4000_0000, &[]), KILL_THREAD);
    assert_eq!(verdict(&c, X86_64, u32::MAX, &[]), ALLOW);
    assert_eq!(verdict(&c, 0xc000_00b7, 172, &[]), KILL_THREAD);
    // All three listed, restrictive default: per-ABI numbers, ENOSYS above the greatest one.
    let c = compiled(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
        "syscalls":[{"names":["getpid","faccessat2","execve"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(verdict(&c, X86_64, 39, &[]), ALLOW);
    assert_eq!(verdict(&c, X86_64, 300, &[]), errno(1));
    assert_eq!(verdict(&c, X86_64, 440, &[]), errno(38));
    assert_eq!(verdict(&c, X86_64, 0x8000_0000, &[]), errno(38));
    assert_eq!(verdict(&c, I386, 20, &[]), ALLOW);
    assert_eq!(verdict(&c, I386, 9999, &[]), errno(38));
    assert_eq!(verdict(&c, I386, u32::MAX, &[]), errno(38));
    assert_eq!(verdict(&c, X86_64, 39 | 0x4000_0000, &[]), ALLOW);
    assert_eq!(verdict(&c, X86_64, 440 | 0x4000_0000, &[]), errno(1));
    assert_eq!(verdict(&c, X86_64, 600 | 0x4000_0000, &[]), errno(38));
    // Not listed: no stub for it (runc only patches listed architectures).
    let c = compiled(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(verdict(&c, X86_64, 9999, &[]), errno(1));
}

#[test]
fn i386_compares_the_low_word_and_filters_socketcall() {
    let c = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"syscalls":[
        {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_EQ"}]},
        {"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":2}]}"#,
    );
    assert_eq!(verdict(&c, I386, 20, &[5]), errno(1));
    assert_eq!(verdict(&c, X86_64, 39, &[5]), ALLOW);
    assert_eq!(verdict(&c, I386, 359, &[]), errno(2));
    assert_eq!(verdict(&c, I386, 102, &[1]), errno(2));
    assert_eq!(verdict(&c, I386, 102, &[2]), ALLOW);
}

#[test]
fn notify_flags_and_listener() {
    let c = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","listenerMetadata":"m",
        "flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV","SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    assert_eq!(verdict(&c, X86_64, 110, &[]), NOTIFY);
    let want = libc::SECCOMP_FILTER_FLAG_LOG
        | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
        | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
        | libc::SECCOMP_FILTER_FLAG_TSYNC
        | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    assert_eq!(c.flags, want);
    // Without NOTIFY, WAIT_KILLABLE_RECV is left out (the kernel refuses it alone).
    let c = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
    );
    assert_eq!(c.flags, 0);
}

#[test]
fn every_syscall_on_three_abis_fits_the_kernel_limit() {
    let mut names: Vec<&str> = tables::x86::TABLE.iter().map(|x| x.0).collect();
    names.extend(tables::x86_64::TABLE.iter().map(|x| x.0));
    let json = serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]
    });
    let c = compiled(&json.to_string());
    assert!(c.program().len() < bpf::MAX_INSNS, "{}", c.program().len());
    for (name, nr) in tables::x86_64::TABLE {
        assert_eq!(verdict(&c, X86_64, *nr, &[]), ALLOW, "{name}");
    }
    for (name, nr) in tables::x86::TABLE {
        assert_eq!(verdict(&c, I386, *nr, &[]), ALLOW, "{name}");
    }
    assert_eq!(verdict(&c, X86_64, 1000, &[]), errno(38));
}

#[test]
fn unknown_names_are_reported_not_fatal() {
    let c = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["no_such","getpid"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    assert_eq!(c.unknown, vec!["no_such".to_string()]);
    assert_eq!(verdict(&c, X86_64, 39, &[]), errno(1));
}

/// The kernel's bpf_check_classic rules the programs must pass (seccomp_check_filter adds
/// the opcode whitelist, which the interpreter enforces).
fn check_like_the_kernel(p: &[seccompiler::sock_filter]) {
    let n = p.len();
    assert!(n > 0 && n <= bpf::MAX_INSNS);
    for (pc, i) in p.iter().enumerate() {
        match i.code {
            0x05 => assert!((i.k as usize) < n - pc - 1, "ja out of range at {pc}"),
            0x15 | 0x25 | 0x35 | 0x45 => assert!(
                pc + i.jt as usize + 1 < n && pc + i.jf as usize + 1 < n,
                "jump out of range at {pc}"
            ),
            0x20 => assert!(i.k < 64 && i.k % 4 == 0, "load at {pc}"),
            _ => {}
        }
    }
    assert_eq!(p[n - 1].code, 0x06, "last instruction must return");
}

#[test]
fn programs_pass_the_kernel_checks() {
    let profiles = [
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[
            {"names":["getpid","execve"],"action":"SCMP_ACT_ALLOW"},
            {"names":["getppid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#,
        r#"{"defaultAction":"SCMP_ACT_KILL","architectures":["SCMP_ARCH_X32"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    ];
    for p in profiles {
        check_like_the_kernel(&compiled(p).program());
    }
}

#[test]
fn high_word_merges_follow_libseccomp_tree() {
    // Rules that share a high-word node: inputs decided there take the first rule's action
    // (NE, LT) or the greater datum's (GT); inputs decided on the low word follow the
    // low-word order. Verdicts observed with runc 1.1.5 + libseccomp 2.5.4.
    let h = 1u64 << 32;
    let c = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["getpgrp"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{"index":0,"value":4294967306,"op":"SCMP_CMP_LT"}]},
        {"names":["getpgrp"],"action":"SCMP_ACT_ERRNO","errnoRet":2,"args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_LT"}]},
        {"names":["getsid"],"action":"SCMP_ACT_ERRNO","errnoRet":7,"args":[{"index":0,"value":5,"op":"SCMP_CMP_NE"}]},
        {"names":["getsid"],"action":"SCMP_ACT_ERRNO","errnoRet":8,"args":[{"index":0,"value":7,"op":"SCMP_CMP_NE"}]},
        {"names":["sched_getscheduler"],"action":"SCMP_ACT_ERRNO","errnoRet":11,"args":[{"index":0,"value":5,"op":"SCMP_CMP_NE"},{"index":1,"value":1,"op":"SCMP_CMP_EQ"}]},
        {"names":["sched_getscheduler"],"action":"SCMP_ACT_ERRNO","errnoRet":12,"args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_LT"},{"index":2,"value":2,"op":"SCMP_CMP_GT"}]}]}"#,
    );
    let cases: &[(u32, &[u64], u32)] = &[
        (111, &[3], errno(1)),
        (111, &[h + 3], errno(2)),
        (111, &[h + 7], errno(1)),
        (111, &[2 * h], ALLOW),
        (124, &[3], errno(8)),
        (124, &[h + 3], errno(7)),
        (124, &[5], errno(8)),
        (124, &[7], errno(7)),
        (145, &[3, 1], errno(11)),
        (145, &[5, 1, 3], errno(12)),
        (145, &[h + 5, 1, 3], errno(11)),
        (145, &[h + 5, 0, 3], ALLOW),
        (145, &[7, 0, 1], ALLOW),
    ];
    for (nr, args, want) in cases {
        assert_eq!(
            verdict(&c, X86_64, *nr, args),
            *want,
            "nr {nr} args {args:x?}"
        );
    }
}

#[test]
fn no_rule_applies_when_its_conditions_do_not_hold() {
    // runc 1.1.5 + libseccomp 2.5.4 return ERRNO(59) for getppid(-1, 1, 0xffffffff): its BPF
    // compares arg2's low word where rule 1 asks for arg1's high word (stale accumulator).
    // Neither rule holds, so the default action applies.
    let c = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":59,"args":[{"index":1,"value":3,"op":"SCMP_CMP_GE"}]},
        {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":47,"args":[{"index":2,"value":4294967295,"op":"SCMP_CMP_LT"},{"index":1,"value":4294967301,"op":"SCMP_CMP_LE"}]}]}"#,
    );
    assert_eq!(verdict(&c, X86_64, 110, &[u64::MAX, 1, 0xffff_ffff]), ALLOW);
    assert_eq!(verdict(&c, X86_64, 110, &[0, 3, 0xffff_ffff]), errno(59));
    assert_eq!(verdict(&c, X86_64, 110, &[0, 1, 5]), errno(47));
}

/// The aarch64 and arm tables compile to working filters too (portability: ruse on an arm64
/// host). Built for those architectures explicitly, since `compile` keeps only the ABIs this
/// host can enter the kernel with; numbers from the kernel's asm-generic and arm tables.
#[test]
fn aarch64_and_arm_filters() {
    const AARCH64: u32 = 0xc000_00b7;
    const ARM: u32 = 0x4000_0028;
    let s: LinuxSeccomp = serde_json::from_str(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
        "architectures":["SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"],"syscalls":[
        {"names":["getpid","openat"],"action":"SCMP_ACT_ALLOW"},
        {"names":["mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
        {"names":["getppid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":7,"op":"SCMP_CMP_EQ"}]}]}"#,
    )
    .unwrap();
    let p = profile::Profile::from_oci(&s).unwrap();
    let arches: Vec<_> = [arch::Arch::Aarch64, arch::Arch::Arm]
        .into_iter()
        .map(|a| (a, rules::plan(&p, a).unwrap()))
        .collect();
    let prog = bpf::program(&bpf::Plan {
        default: p.default,
        arches: &arches,
        enosys: &[],
    })
    .unwrap();
    let v = |audit, nr, args: &[u64]| run(&prog, &Data::new(audit, nr, args));
    // aarch64: getpid 172, openat 56, mkdirat 34, getppid 173, write 64.
    assert_eq!(v(AARCH64, 172, &[]), ALLOW);
    assert_eq!(v(AARCH64, 56, &[]), ALLOW);
    assert_eq!(v(AARCH64, 34, &[]), errno(38));
    assert_eq!(v(AARCH64, 173, &[7]), ALLOW);
    assert_eq!(v(AARCH64, 173, &[8]), errno(1));
    assert_eq!(v(AARCH64, 64, &[]), errno(1));
    // arm (EABI): getpid 20, openat 322, mkdirat 323, write 4.
    assert_eq!(v(ARM, 20, &[]), ALLOW);
    assert_eq!(v(ARM, 322, &[]), ALLOW);
    assert_eq!(v(ARM, 323, &[]), errno(38));
    assert_eq!(v(ARM, 4, &[]), errno(1));
    // An ABI the filter does not list: libseccomp's bad-architecture action.
    assert_eq!(v(X86_64, 39, &[]), KILL_THREAD);
}

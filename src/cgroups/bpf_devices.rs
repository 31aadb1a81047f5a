//! The cgroup v2 device filter: the rule list of `devices_v1.rs` compiled to a linear eBPF
//! program (pure, unit-tested with a small interpreter), and its attachment to the
//! container's directory (runtime process, host namespaces).
//!
//! Semantics: default deny; for each access bit asked for (read, write, mknod), the **last**
//! rule that matches the device and names that bit decides; every asked bit must be allowed.
//! That is how runc's v1 rule list reads, without v1's quirk that a deny cannot punch a hole
//! in a wildcard allow. The program has no loops (the verifier forbids them): per bit, one
//! block per rule, newest first, each jumping to the next on a mismatch.

use super::devices_v1::{Rule, ACC_MKNOD, ACC_READ, ACC_WRITE};
use anyhow::{Context, Result};
use std::os::fd::AsFd;
use std::path::Path;

/// One `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    /// The kernel's little-endian encoding (dst in the low nibble of byte 1).
    pub fn raw(&self) -> u64 {
        u64::from(self.code)
            | u64::from(self.dst & 0xf | (self.src & 0xf) << 4) << 8
            | u64::from(self.off as u16) << 16
            | u64::from(self.imm as u32) << 32
    }
}

pub const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub const RSH32_K: u8 = 0x74;
pub const MOV32_K: u8 = 0xb4;
pub const MOV32_X: u8 = 0xbc;
pub const JA: u8 = 0x05;
pub const JEQ_K: u8 = 0x15;
pub const JNE_K: u8 = 0x55;
pub const EXIT: u8 = 0x95;

/// `bpf_cgroup_dev_ctx.access_type` low half.
pub const DEV_BLOCK: i32 = 1;
pub const DEV_CHAR: i32 = 2;

// Registers: r1 context (then scratch), r2 type, r3 access, r4 major, r5 minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// A program under construction: jumps name labels, resolved at the end.
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<usize>,
    fixups: Vec<(usize, usize)>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(usize::MAX);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = self.insns.len();
    }
    fn jump(&mut self, code: u8, reg: u8, imm: i32, l: usize) {
        self.fixups.push((self.insns.len(), l));
        self.insns.push(ins(code, reg, 0, 0, imm));
    }
    fn ret(&mut self, v: i32) {
        self.insns.push(ins(MOV32_K, R0, 0, 0, v));
        self.insns.push(ins(EXIT, 0, 0, 0, 0));
    }
    fn finish(mut self) -> Vec<Insn> {
        for (at, l) in self.fixups {
            self.insns[at].off = (self.labels[l] as i64 - at as i64 - 1) as i16;
        }
        self.insns
    }
}

/// Compiles `rules` (in config order) to a device program.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut a = Asm {
        insns: vec![
            ins(LDX_W, R2, R1, 0, 0),
            ins(AND32_K, R2, 0, 0, 0xffff),
            ins(LDX_W, R3, R1, 0, 0),
            ins(RSH32_K, R3, 0, 0, 16),
            ins(LDX_W, R4, R1, 4, 0),
            ins(LDX_W, R5, R1, 8, 0),
        ],
        labels: Vec::new(),
        fixups: Vec::new(),
    };
    for bit in [ACC_READ, ACC_WRITE, ACC_MKNOD] {
        let next_bit = a.label();
        a.insns.push(ins(MOV32_X, R1, R3, 0, 0));
        a.insns.push(ins(AND32_K, R1, 0, 0, i32::from(bit)));
        a.jump(JEQ_K, R1, 0, next_bit);
        let mut decided = false;
        for r in rules.iter().rev().filter(|r| r.access & bit != 0) {
            let next_rule = a.label();
            let typ = match r.typ {
                'b' => Some(DEV_BLOCK),
                'c' => Some(DEV_CHAR),
                _ => None,
            };
            let conds = [
                (R2, typ),
                (R4, r.major.map(|m| m as i32)),
                (R5, r.minor.map(|m| m as i32)),
            ];
            let mut any = false;
            for (reg, v) in conds {
                if let Some(v) = v {
                    a.jump(JNE_K, reg, v, next_rule);
                    any = true;
                }
            }
            if r.allow {
                a.jump(JA, 0, 0, next_bit);
            } else {
                a.ret(0);
            }
            a.bind(next_rule);
            if !any {
                // Matches every device: older rules cannot be reached for this bit.
                decided = true;
                break;
            }
        }
        if !decided {
            a.ret(0);
        }
        a.bind(next_bit);
    }
    a.ret(1);
    a.finish()
}

/// Loads `prog` and attaches it to the cgroup v2 directory `dir` in place of the device
/// programs already there, as runc does: a cgroup that is reused (an existing `cgroupsPath`)
/// or updated keeps exactly one. A single old program is swapped atomically (BPF_F_REPLACE);
/// several, or a kernel without BPF_F_REPLACE (< 5.6), get the new one attached before the
/// old ones are detached, so the container is never left without a filter.
pub fn attach(dir: &Path, prog: &[Insn]) -> Result<()> {
    use crate::sys::bpf;
    let raw: Vec<u64> = prog.iter().map(Insn::raw).collect();
    let cg = std::fs::File::open(dir).with_context(|| format!("open {}", dir.display()))?;
    let ids = bpf::device_program_ids(cg.as_fd())
        .with_context(|| format!("list the BPF device programs of {}", dir.display()))?;
    let mut old = Vec::new();
    for id in ids {
        match bpf::device_program_by_id(id) {
            Ok(fd) => old.push(fd),
            // runc skips programs an LSM hides from it: device programs only add denials.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            Err(e) => return Err(e).with_context(|| format!("open BPF program {id}")),
        }
    }
    let fd =
        bpf::load_device_program(&raw, "ruse_devices").context("load the BPF device program")?;
    let attach_err = || format!("attach the BPF device program to {}", dir.display());
    if let [one] = old.as_slice() {
        match bpf::attach_device_program(cg.as_fd(), fd.as_fd(), Some(one.as_fd())) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e).with_context(attach_err),
        }
    }
    bpf::attach_device_program(cg.as_fd(), fd.as_fd(), None).with_context(attach_err)?;
    for o in &old {
        bpf::detach_device_program(cg.as_fd(), o.as_fd())
            .with_context(|| format!("detach an old BPF device program from {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::devices_v1::parse;
    use super::*;

    /// Runs a program on (type, access bits, major, minor): the subset of eBPF it emits.
    fn run(p: &[Insn], typ: i32, access: u8, major: u32, minor: u32) -> u32 {
        let ctx = [
            (i64::from(access) << 16 | i64::from(typ)) as u32,
            major,
            minor,
        ];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 100_000 && pc < p.len(), "ran off the program");
            let i = p[pc];
            let (d, s) = (i.dst as usize, i.src as usize);
            pc += 1;
            let jump = |cond: bool, pc: &mut usize| {
                if cond {
                    *pc = (*pc as i64 + i64::from(i.off)) as usize;
                }
            };
            match i.code {
                LDX_W => {
                    assert_eq!(s, 1, "loads only from the context");
                    r[d] = u64::from(ctx[(i.off / 4) as usize]);
                }
                AND32_K => r[d] = (r[d] as u32 & i.imm as u32) as u64,
                RSH32_K => r[d] = ((r[d] as u32) >> i.imm) as u64,
                MOV32_K => r[d] = i.imm as u32 as u64,
                MOV32_X => r[d] = r[s] as u32 as u64,
                JA => jump(true, &mut pc),
                JEQ_K => jump(r[d] == i.imm as u32 as u64, &mut pc),
                JNE_K => jump(r[d] != i.imm as u32 as u64, &mut pc),
                EXIT => return r[0] as u32,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    /// The reference semantics, written plainly.
    fn reference(rules: &[Rule], typ: char, access: u8, major: u32, minor: u32) -> bool {
        [ACC_READ, ACC_WRITE, ACC_MKNOD]
            .into_iter()
            .filter(|b| access & b != 0)
            .all(|bit| {
                rules
                    .iter()
                    .rev()
                    .find(|r| {
                        r.access & bit != 0
                            && (r.typ == 'a' || r.typ == typ)
                            && r.major.map_or(true, |m| m == major)
                            && r.minor.map_or(true, |m| m == minor)
                    })
                    .is_some_and(|r| r.allow)
            })
    }

    fn rules(list: &[(&str, bool)]) -> Vec<Rule> {
        list.iter().map(|(s, a)| parse(s, *a).unwrap()).collect()
    }

    #[test]
    fn default_deny_and_simple_allow() {
        let p = program(&rules(&[("c 1:3 rw", true)]));
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_MKNOD, 1, 3), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 1, 3), 0);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 5), 0);
        assert_eq!(run(&program(&[]), DEV_CHAR, ACC_READ, 1, 3), 0);
    }

    #[test]
    fn last_match_wins_per_bit() {
        let r = rules(&[("a *:* rwm", true), ("b 8:* rw", false), ("b 8:1 r", true)]);
        let p = program(&r);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 1), 1);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ | ACC_WRITE, 8, 1), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_MKNOD, 8, 0), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 4, 4), 1);
    }

    #[test]
    fn agrees_with_the_reference_on_many_rule_sets() {
        let pool = [
            "a *:* rwm",
            "a *:* r",
            "c *:* m",
            "b *:* m",
            "c 1:3 rwm",
            "c 1:* w",
            "b 8:0 r",
            "b 8:* rw",
            "c 136:* rwm",
            "c 5:2 rm",
            "a 1:3 w",
            "b *:1 rwm",
        ];
        let mut seed = 0x2545_f491_u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..300 {
            let n = next() % 7;
            let rs: Vec<Rule> = (0..n)
                .map(|_| parse(pool[next() % pool.len()], next() % 2 == 0).unwrap())
                .collect();
            let p = program(&rs);
            for (typ, t) in [('b', DEV_BLOCK), ('c', DEV_CHAR)] {
                for (ma, mi) in [(1, 3), (1, 5), (8, 0), (8, 1), (136, 4), (5, 2), (9, 9)] {
                    for acc in 1..8u8 {
                        let want = reference(&rs, typ, acc, ma, mi);
                        assert_eq!(
                            run(&p, t, acc, ma, mi) == 1,
                            want,
                            "{rs:?} {typ} {ma}:{mi} {acc}"
                        );
                    }
                }
            }
        }
    }

    /// The kernel's verifier accepts every shape the compiler emits (skipped without root).
    #[test]
    fn kernel_verifier_accepts_the_programs() {
        if crate::sys::process::geteuid() != 0 {
            return;
        }
        let sets: [&[(&str, bool)]; 5] = [
            &[],
            &[("a *:* rwm", true)],
            &[("a *:* rwm", false)],
            &[("c 1:3 rwm", true), ("a *:* m", true), ("b 8:* w", false)],
            &[("a *:* rwm", true), ("b 8:0 rwm", false), ("c *:* m", true)],
        ];
        for set in sets {
            for defaults in [false, true] {
                let mut rs = rules(set);
                if defaults {
                    rs.extend(super::super::devices_v1::with_defaults(&[]).unwrap());
                }
                let raw: Vec<u64> = program(&rs).iter().map(Insn::raw).collect();
                crate::sys::bpf::load_device_program(&raw, "ruse_test")
                    .unwrap_or_else(|e| panic!("{set:?} defaults {defaults}: {e}"));
            }
        }
    }

    #[test]
    fn encoding_and_jump_offsets() {
        let i = ins(JNE_K, R4, 0, -2, 136);
        assert_eq!(i.raw(), 0x55 | 4 << 8 | 0xfffe << 16 | 136 << 32);
        let p = program(&rules(&[("c 1:3 r", true)]));
        for (pc, i) in p.iter().enumerate() {
            if matches!(i.code, JA | JEQ_K | JNE_K) {
                let t = pc as i64 + 1 + i64::from(i.off);
                assert!(t > pc as i64 && (t as usize) < p.len(), "forward, in range");
            }
        }
        assert_eq!(p.last().unwrap().code, EXIT);
    }
}

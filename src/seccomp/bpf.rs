//! Emits the classic-BPF program: runc's -ENOSYS stub, the architecture dispatch, a binary
//! search over syscall numbers, and per-syscall rule chains whose argument tests are
//! seccompiler's rule blocks. A small label assembler keeps every conditional jump short
//! (cBPF offsets are 8 bits) and puts long distances on `ja` (32 bits). Pure.

use super::arch::{Arch, X32_SYSCALL_BIT};
use super::profile::Action;
use super::rules::Body;
use super::tree::{NodeOp, Step};
use anyhow::{anyhow, bail, Result};
use seccompiler::{
    sock_filter, BpfProgram, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule,
};
use std::collections::BTreeMap;

// BPF_LD|BPF_W|BPF_ABS, BPF_RET|BPF_K, BPF_JMP|BPF_JA, BPF_JMP|BPF_J*|BPF_K.
const LD_W_ABS: u16 = 0x20;
const RET_K: u16 = 0x06;
const JA: u16 = 0x05;
const JEQ: u16 = 0x15;
const JGT: u16 = 0x25;
const JGE: u16 = 0x35;
const JSET: u16 = 0x45;
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// The kernel's BPF_MAXINSNS.
pub const MAX_INSNS: usize = 4096;
/// Syscalls per leaf of the dispatch search: a leaf is a run of `jeq`s.
const LEAF: usize = 8;

type Label = usize;
/// A syscall's rule chain, emitted after the search tree.
type Chain<'b> = (Label, &'b [(Vec<Step>, Action)]);

#[derive(Clone, Copy)]
enum Tgt {
    Next,
    Skip(u8),
    To(Label),
}

enum Ins {
    Ld(u32),
    Ret(u32),
    Jcc { op: u16, k: u32, jt: Tgt, jf: Tgt },
    Ja(Label),
    Mark(Label),
    Raw(BpfProgram),
}

#[derive(Default)]
pub struct Asm {
    ins: Vec<Ins>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        self.labels - 1
    }
    fn mark(&mut self, l: Label) {
        self.ins.push(Ins::Mark(l));
    }
    fn ld(&mut self, off: u32) {
        self.ins.push(Ins::Ld(off));
    }
    fn ret(&mut self, v: u32) {
        self.ins.push(Ins::Ret(v));
    }
    fn jcc(&mut self, op: u16, k: u32, jt: Tgt, jf: Tgt) {
        self.ins.push(Ins::Jcc { op, k, jt, jf });
    }
    /// `if (A op k) goto l`, for any distance.
    fn jump_if(&mut self, op: u16, k: u32, l: Label) {
        self.jcc(op, k, Tgt::Next, Tgt::Skip(1));
        self.ins.push(Ins::Ja(l));
    }
    fn ja(&mut self, l: Label) {
        self.ins.push(Ins::Ja(l));
    }

    pub fn finish(self) -> Result<Vec<sock_filter>> {
        let mut at = vec![usize::MAX; self.labels];
        let mut pos = 0;
        for i in &self.ins {
            match i {
                Ins::Mark(l) => at[*l] = pos,
                Ins::Raw(v) => pos += v.len(),
                _ => pos += 1,
            }
        }
        if pos > MAX_INSNS {
            bail!("the compiled filter has {pos} instructions, more than the kernel's limit of {MAX_INSNS}");
        }
        let mut out = Vec::with_capacity(pos);
        for i in self.ins {
            let here = out.len();
            let dist = |l: Label| -> Result<usize> {
                at[l]
                    .checked_sub(here + 1)
                    .ok_or_else(|| anyhow!("internal: backward jump in seccomp program"))
            };
            let short = |t: Tgt| -> Result<u8> {
                match t {
                    Tgt::Next => Ok(0),
                    Tgt::Skip(n) => Ok(n),
                    Tgt::To(l) => u8::try_from(dist(l)?)
                        .map_err(|_| anyhow!("internal: conditional jump too long")),
                }
            };
            match i {
                Ins::Mark(_) => {}
                Ins::Raw(v) => out.extend(v),
                Ins::Ld(k) => out.push(insn(LD_W_ABS, 0, 0, k)),
                Ins::Ret(k) => out.push(insn(RET_K, 0, 0, k)),
                Ins::Ja(l) => out.push(insn(JA, 0, 0, dist(l)? as u32)),
                Ins::Jcc { op, k, jt, jf } => out.push(insn(op, short(jt)?, short(jf)?, k)),
            }
        }
        Ok(out)
    }
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Everything the program is made of.
pub struct Plan<'a> {
    pub default: Action,
    /// Per filtered architecture (native first), what each syscall does.
    pub arches: &'a [(Arch, BTreeMap<u32, Body>)],
    /// runc's -ENOSYS stub: per listed architecture, the greatest syscall number the profile
    /// names; anything above it gets ENOSYS (a syscall newer than the profile), not the
    /// default action. Empty when the stub does not apply.
    pub enosys: &'a [(Arch, u32)],
}

pub fn program(p: &Plan) -> Result<Vec<sock_filter>> {
    let mut a = Asm::default();
    let main = a.label();
    if !p.enosys.is_empty() {
        enosys_stub(&mut a, p.enosys, main);
    }
    a.mark(main);
    a.ld(OFF_ARCH);
    let audits = audit_groups(p.arches);
    let sections: Vec<Label> = audits.iter().map(|_| a.label()).collect();
    for (audit, l) in audits.iter().zip(&sections) {
        a.jump_if(JEQ, *audit, *l);
    }
    // libseccomp's default bad-architecture action.
    a.ret(Action::KillThread.ret());
    let find = |arch: Arch| p.arches.iter().find(|(x, _)| *x == arch).map(|(_, m)| m);
    for (audit, l) in audits.iter().zip(&sections) {
        a.mark(*l);
        a.ld(OFF_NR);
        let of_audit = |arch: Arch| find(arch).filter(|_| arch.audit() == *audit);
        if let Some(x64) = of_audit(Arch::X86_64) {
            if let Some(x32) = of_audit(Arch::X32) {
                let l32 = a.label();
                a.jump_if(JGE, X32_SYSCALL_BIT, l32);
                dispatch(&mut a, x64, p.default)?;
                a.mark(l32);
                dispatch(&mut a, x32, p.default)?;
            } else {
                // x32 numbers are a foreign ABI here, except -1 (a skipped syscall).
                a.jcc(JGE, X32_SYSCALL_BIT, Tgt::Next, Tgt::Skip(2));
                a.jcc(JEQ, u32::MAX, Tgt::Skip(1), Tgt::Next);
                a.ret(Action::KillThread.ret());
                dispatch(&mut a, x64, p.default)?;
            }
        } else {
            let arch = p
                .arches
                .iter()
                .find(|(x, _)| x.audit() == *audit)
                .map(|x| x.0);
            let arch = arch.ok_or_else(|| anyhow!("internal: no architecture for a section"))?;
            dispatch(&mut a, find(arch).unwrap_or(&BTreeMap::new()), p.default)?;
        }
    }
    a.finish()
}

fn audit_groups(arches: &[(Arch, BTreeMap<u32, Body>)]) -> Vec<u32> {
    let mut v: Vec<u32> = Vec::new();
    for (arch, _) in arches {
        if !v.contains(&arch.audit()) {
            v.push(arch.audit());
        }
    }
    v
}

/// runc's patchbpf stub, same decisions: per AUDIT_ARCH, `nr > max` → ENOSYS; on x86_64 the
/// x32 bit picks which maximum applies, and a mode that is not listed skips the check.
fn enosys_stub(a: &mut Asm, max: &[(Arch, u32)], main: Label) {
    let enosys = a.label();
    let get = |arch: Arch| max.iter().find(|(x, _)| *x == arch).map(|x| x.1);
    let mut audits: Vec<u32> = Vec::new();
    for (x, _) in max {
        if !audits.contains(&x.audit()) {
            audits.push(x.audit());
        }
    }
    let sections: Vec<Label> = audits.iter().map(|_| a.label()).collect();
    a.ld(OFF_ARCH);
    for (audit, l) in audits.iter().zip(&sections) {
        a.jump_if(JEQ, *audit, *l);
    }
    a.ja(main);
    for (audit, l) in audits.iter().zip(&sections) {
        a.mark(*l);
        a.ld(OFF_NR);
        if *audit == Arch::X86_64.audit() {
            let (x64, x32) = (get(Arch::X86_64), get(Arch::X32));
            let l32 = a.label();
            match x32 {
                Some(_) => a.jump_if(JSET, X32_SYSCALL_BIT, l32),
                None => a.jump_if(JSET, X32_SYSCALL_BIT, main),
            }
            if let Some(m) = x64 {
                a.jump_if(JGT, m, enosys);
            }
            a.ja(main);
            a.mark(l32);
            if let Some(m) = x32 {
                a.jump_if(JGT, m, enosys);
            }
            a.ja(main);
        } else {
            let m = max
                .iter()
                .find(|(x, _)| x.audit() == *audit)
                .map_or(0, |x| x.1);
            a.jump_if(JGT, m, enosys);
            a.ja(main);
        }
    }
    a.mark(enosys);
    a.ret(Action::Errno(libc::ENOSYS as u16).ret());
}

/// Binary search over the syscall numbers, leaves of up to LEAF `jeq`s jumping to nearby
/// returns, then the rule chains of the syscalls that have argument conditions.
fn dispatch(a: &mut Asm, bodies: &BTreeMap<u32, Body>, default: Action) -> Result<()> {
    let keys: Vec<u32> = bodies.keys().copied().collect();
    let mut chains = Vec::new();
    search(a, &keys, bodies, default, &mut chains);
    for (l, paths) in chains {
        a.mark(l);
        for (steps, action) in paths {
            for block in path_blocks(steps)? {
                a.ins.push(Ins::Raw(block));
                a.ret(action.ret());
            }
        }
        a.ret(default.ret());
        // seccompiler's blocks carry a "next rule" jump (used only by their long-condition
        // trampolines) that points one past the following return: give the last one a
        // target inside the program, as the kernel's checker requires.
        a.ret(default.ret());
    }
    Ok(())
}

fn search<'b>(
    a: &mut Asm,
    keys: &[u32],
    bodies: &'b BTreeMap<u32, Body>,
    default: Action,
    chains: &mut Vec<Chain<'b>>,
) {
    if keys.len() > LEAF {
        let mid = keys.len() / 2;
        let right = a.label();
        a.jump_if(JGE, keys[mid], right);
        search(a, &keys[..mid], bodies, default, chains);
        a.mark(right);
        search(a, &keys[mid..], bodies, default, chains);
        return;
    }
    // Leaf: each jeq jumps to a return (shared by equal actions) or to its rule chain.
    let mut locals: Vec<(Label, Result<u32, Label>)> = Vec::new();
    let mut targets = Vec::new();
    for k in keys {
        let want = match &bodies[k] {
            Body::Always(act) => Ok(act.ret()),
            Body::FirstMatch(rules) => {
                let l = a.label();
                chains.push((l, rules.as_slice()));
                Err(l)
            }
        };
        let local = match locals.iter().find(|(_, w)| *w == want) {
            Some((l, _)) => *l,
            None => {
                let l = a.label();
                locals.push((l, want));
                l
            }
        };
        targets.push(local);
    }
    for (k, l) in keys.iter().zip(targets) {
        a.jcc(JEQ, *k, Tgt::To(l), Tgt::Next);
    }
    a.ret(default.ret());
    for (l, want) in locals {
        a.mark(l);
        match want {
            Ok(ret) => a.ret(ret),
            Err(chain) => a.ja(chain),
        }
    }
}

/// seccompiler's blocks for one path of the decision tree: each block is an AND of whole-
/// argument conditions that falls through to the next instruction when all hold and skips it
/// otherwise. A tree node compares one 32-bit word; on 64-bit ABIs the high word is expressed
/// as a 64-bit comparison with the low word's extremes, and "high word differs" needs two
/// blocks (below or above), hence a list.
fn path_blocks(steps: &[Step]) -> Result<Vec<BpfProgram>> {
    let mut alts: Vec<Vec<SeccompCondition>> = vec![Vec::new()];
    for s in steps {
        let options = step_conditions(s)?;
        let mut next = Vec::with_capacity(alts.len() * options.len());
        for a in &alts {
            for o in &options {
                let mut v = a.clone();
                v.push(o.clone());
                next.push(v);
            }
        }
        alts = next;
    }
    alts.into_iter()
        .map(|conds| {
            if conds.is_empty() {
                bail!("internal: empty seccomp path");
            }
            let rule = SeccompRule::new(conds).map_err(|e| anyhow!("{e}"))?;
            Ok(rule.into())
        })
        .collect()
}

/// The seccompiler conditions (alternatives) equivalent to one step; empty when the step can
/// never hold.
fn step_conditions(s: &Step) -> Result<Vec<SeccompCondition>> {
    use SeccompCmpOp::*;
    let (len, h) = if s.hi {
        (SeccompCmpArgLen::Qword, u64::from(s.datum) << 32)
    } else {
        (SeccompCmpArgLen::Dword, u64::from(s.datum))
    };
    let top = h | 0xffff_ffff;
    let ops: Vec<(SeccompCmpOp, u64)> = match (s.hi, s.op, s.taken) {
        (false, NodeOp::Eq, t) => vec![(if t { Eq } else { Ne }, h)],
        (false, NodeOp::Gt, t) => vec![(if t { Gt } else { Le }, h)],
        (false, NodeOp::Ge, t) => vec![(if t { Ge } else { Lt }, h)],
        (false, NodeOp::MaskedEq, true) => vec![(MaskedEq(u64::from(s.mask)), h)],
        (true, NodeOp::Eq, true) => vec![(MaskedEq(0xffff_ffff_0000_0000), h)],
        (true, NodeOp::Eq, false) => {
            let mut v = Vec::new();
            if s.datum > 0 {
                v.push((Lt, h));
            }
            if s.datum < u32::MAX {
                v.push((Gt, top));
            }
            v
        }
        (true, NodeOp::Gt, true) if s.datum == u32::MAX => vec![],
        (true, NodeOp::Gt, t) => vec![(if t { Gt } else { Le }, top)],
        (true, NodeOp::Ge, t) => vec![(if t { Ge } else { Lt }, h)],
        (true, NodeOp::MaskedEq, true) => vec![(MaskedEq(u64::from(s.mask) << 32), h)],
        (_, NodeOp::MaskedEq, false) => bail!("internal: no rule acts on a failed MASKED_EQ"),
    };
    ops.into_iter()
        .map(|(op, v)| {
            SeccompCondition::new(s.arg, len.clone(), op, v)
                .map_err(|e| anyhow!("argument {}: {e}", s.arg))
        })
        .collect()
}

//! What each syscall does on one architecture, decided exactly as runc + libseccomp decide it:
//! runc's preprocessing (rules with the default action dropped, conditions on one argument
//! split into separate rules, unknown names ignored), i386's socketcall/ipc twins, and
//! libseccomp's merge of the rules of one syscall (see the module comment in mod.rs).

use super::arch::{self, Arch};
use super::profile::{Action, Cond, Op, Profile, Rule};
use anyhow::{bail, Result};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// The decision for one syscall number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Whatever the arguments.
    Always(Action),
    /// The first entry whose conditions all hold decides; none: the default action.
    FirstMatch(Vec<(Vec<Cond>, Action)>),
}

struct Entry {
    conds: Vec<Cond>,
    action: Action,
    rule: usize,
}

#[derive(Default)]
struct Acc {
    always: Option<Action>,
    entries: Vec<Entry>,
}

pub fn plan(p: &Profile, arch: Arch) -> Result<BTreeMap<u32, Body>> {
    let mut acc: BTreeMap<u32, Acc> = BTreeMap::new();
    for rule in &p.rules {
        // runc skips rules that only restate the default (libseccomp would refuse them).
        if rule.action == p.default {
            continue;
        }
        for name in &rule.names {
            for (nr, chain) in targets(arch, name, rule) {
                acc.entry(nr).or_default().add(chain, rule, name)?;
            }
        }
    }
    let wide = arch.wide_args();
    Ok(acc
        .into_iter()
        .map(|(nr, a)| {
            let body = match a.always {
                Some(act) => Body::Always(act),
                None => {
                    let mut e = a.entries;
                    // Stable: libseccomp keeps insertion order between nodes it ranks equal.
                    e.sort_by(|x, y| order(&x.conds, &y.conds, wide));
                    Body::FirstMatch(e.into_iter().map(|e| (e.conds, e.action)).collect())
                }
            };
            (nr, body)
        })
        .collect())
}

/// (syscall number, conditions) pairs a rule becomes for one name on one architecture.
fn targets(arch: Arch, name: &str, rule: &Rule) -> Vec<(u32, Vec<Cond>)> {
    let chains = split(&rule.conds);
    let mut out = Vec::new();
    let mux = (arch == Arch::X86)
        .then(|| arch::multiplexed(name))
        .flatten();
    if let Some(m) = &mux {
        // libseccomp's rule on socketcall/ipc: the call number replaces the first argument.
        for c in &chains {
            let mut c: Vec<Cond> = c.iter().copied().filter(|c| c.arg != 0).collect();
            c.insert(
                0,
                Cond {
                    arg: 0,
                    op: Op::Eq,
                    datum: m.call,
                    mask: u64::MAX,
                },
            );
            out.push((m.syscall, c));
        }
    }
    if let Some(nr) = arch.number(name) {
        if mux.as_ref().map_or(true, |m| m.paired_direct) {
            out.extend(chains.into_iter().map(|c| (nr, c)));
        }
    }
    out
}

/// runc: conditions that compare one argument twice become one rule each (an OR); otherwise
/// one rule with all conditions (an AND), in argument order as libseccomp stores them.
fn split(conds: &[Cond]) -> Vec<Vec<Cond>> {
    let repeated = (0..6u8).any(|a| conds.iter().filter(|c| c.arg == a).count() > 1);
    if repeated {
        return conds.iter().map(|c| vec![*c]).collect();
    }
    let mut v = conds.to_vec();
    v.sort_by_key(|c| c.arg);
    vec![v]
}

impl Acc {
    /// libseccomp's db_rule_add for one syscall: an argument-free rule wins over everything
    /// (the first one added); a rule extending an existing one is dead; a rule that is a
    /// prefix of existing ones replaces them when they share its action and is refused
    /// (EEXIST, which fails runc) when they do not; identical conditions with another action
    /// are refused too.
    fn add(&mut self, conds: Vec<Cond>, rule: &Rule, name: &str) -> Result<()> {
        if self.always.is_some() {
            return Ok(());
        }
        if conds.is_empty() {
            self.always = Some(rule.action);
            self.entries.clear();
            return Ok(());
        }
        for x in &self.entries {
            if x.conds == conds && x.action != rule.action {
                bail!(conflict(rule, name, x.rule));
            }
            if conds.starts_with(&x.conds) {
                return Ok(());
            }
        }
        if let Some(x) = self
            .entries
            .iter()
            .find(|x| x.conds.starts_with(&conds) && x.action != rule.action)
        {
            bail!(conflict(rule, name, x.rule));
        }
        self.entries.retain(|x| !x.conds.starts_with(&conds));
        self.entries.push(Entry {
            conds,
            action: rule.action,
            rule: rule.index,
        });
        Ok(())
    }
}

fn conflict(rule: &Rule, name: &str, other: usize) -> String {
    format!(
        "linux.seccomp.syscalls[{}]: the rule for {name} conflicts with linux.seccomp.syscalls[{other}] (same leading argument conditions, another action; libseccomp refuses this too)",
        rule.index
    )
}

/// One node of libseccomp's per-syscall decision tree: a comparison of one 32-bit word.
#[derive(Clone, Copy)]
struct Node {
    /// arg * 2, + 1 for the high word.
    slot: u8,
    op: Op,
    datum: u32,
    mask: u32,
    /// The rule's operator, which ranks nodes.
    orig: Op,
}

/// The nodes libseccomp builds for a condition: on 64-bit ABIs the high word (GT for the
/// ordered operators, EQ/MASKED_EQ else) then the low word; on 32-bit ones the low word only.
fn nodes(c: &Cond, wide: bool) -> Vec<Node> {
    let lo_op = match c.op {
        Op::Eq | Op::Ne => Op::Eq,
        Op::MaskedEq => Op::MaskedEq,
        Op::Gt | Op::Le => Op::Gt,
        Op::Ge | Op::Lt => Op::Ge,
    };
    let node = |slot, op, shift: u32| Node {
        slot,
        op,
        datum: ((c.datum & c.mask) >> shift) as u32,
        mask: (c.mask >> shift) as u32,
        orig: c.op,
    };
    let lo = node(c.arg * 2, lo_op, 0);
    if !wide {
        return vec![lo];
    }
    let hi_op = match c.op {
        Op::Eq | Op::Ne => Op::Eq,
        Op::MaskedEq => Op::MaskedEq,
        _ => Op::Gt,
    };
    vec![node(c.arg * 2 + 1, hi_op, 32), lo]
}

fn op_rank(op: Op) -> u8 {
    match op {
        Op::MaskedEq | Op::Eq | Op::Ne => 3,
        Op::Le | Op::Lt => 2,
        Op::Ge | Op::Gt => 1,
    }
}

/// libseccomp's _db_chain_eq: the rule's own operator does not count (NE shares EQ's node).
fn node_eq(a: &Node, b: &Node) -> bool {
    a.slot == b.slot && a.op == b.op && a.datum == b.datum && a.mask == b.mask
}

/// libseccomp's _db_chain_lt.
fn node_lt(a: &Node, b: &Node) -> bool {
    if a.slot != b.slot {
        return a.slot < b.slot;
    }
    if op_rank(a.orig) != op_rank(b.orig) {
        return op_rank(a.orig) < op_rank(b.orig);
    }
    match a.orig {
        Op::Le | Op::Lt => a.datum > b.datum,
        _ => a.datum < b.datum,
    }
}

/// Evaluation order of two rules of one syscall: libseccomp keeps each tree level sorted
/// from the greatest node down, so at the first node where two rules part, the greater node
/// is tried first; nodes it ranks equal keep the order the rules were added in.
fn order(a: &[Cond], b: &[Cond], wide: bool) -> Ordering {
    let na: Vec<Node> = a.iter().flat_map(|c| nodes(c, wide)).collect();
    let nb: Vec<Node> = b.iter().flat_map(|c| nodes(c, wide)).collect();
    for (x, y) in na.iter().zip(&nb) {
        if node_eq(x, y) {
            continue;
        }
        if node_lt(x, y) {
            return Ordering::Greater;
        }
        if node_lt(y, x) {
            return Ordering::Less;
        }
        return Ordering::Equal;
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::profile::parse;

    fn body(json: &str, arch: Arch, nr: u32) -> Body {
        plan(&parse(json).unwrap(), arch)
            .unwrap()
            .remove(&nr)
            .unwrap()
    }

    fn errnos(b: &Body) -> Vec<u16> {
        match b {
            Body::FirstMatch(v) => v
                .iter()
                .map(|(_, a)| match a {
                    Action::Errno(e) => *e,
                    _ => 0,
                })
                .collect(),
            Body::Always(a) => panic!("always {a:?}"),
        }
    }

    fn rule(n: u16, args: &str) -> String {
        format!(
            r#"{{"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":{n},"args":[{args}]}}"#
        )
    }

    fn profile(rules: &[String]) -> String {
        format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{}]}}"#,
            rules.join(",")
        )
    }

    #[test]
    fn unconditional_rules_win_and_the_first_one_counts() {
        let p = profile(&[
            rule(3, r#"{"index":0,"value":1,"op":"SCMP_CMP_EQ"}"#),
            rule(4, ""),
            rule(5, ""),
        ]);
        assert_eq!(body(&p, Arch::X86_64, 39), Body::Always(Action::Errno(4)));
    }

    #[test]
    fn libseccomp_order_higher_argument_and_datum_first() {
        // Observed with runc 1.1.5 + libseccomp 2.5.4: arg1 before arg0; GT 10 before GT 5;
        // LT 5 before LT 10; EQ 7 before NE 5.
        let eq = |a: u8, v: u64, op: &str| {
            format!(r#"{{"index":{a},"value":{v},"op":"SCMP_CMP_{op}"}}"#)
        };
        let b = body(
            &profile(&[rule(1, &eq(1, 2, "EQ")), rule(2, &eq(0, 1, "EQ"))]),
            Arch::X86_64,
            39,
        );
        assert_eq!(errnos(&b), vec![1, 2]);
        let b = body(
            &profile(&[rule(3, &eq(0, 5, "GT")), rule(4, &eq(0, 10, "GT"))]),
            Arch::X86_64,
            39,
        );
        assert_eq!(errnos(&b), vec![4, 3]);
        let b = body(
            &profile(&[rule(5, &eq(0, 10, "LT")), rule(6, &eq(0, 5, "LT"))]),
            Arch::X86_64,
            39,
        );
        assert_eq!(errnos(&b), vec![6, 5]);
        let b = body(
            &profile(&[rule(7, &eq(0, 5, "NE")), rule(8, &eq(0, 7, "EQ"))]),
            Arch::X86_64,
            39,
        );
        assert_eq!(errnos(&b), vec![8, 7]);
    }

    #[test]
    fn prefixes_repeats_and_conflicts() {
        let a0 = r#"{"index":0,"value":1,"op":"SCMP_CMP_EQ"}"#;
        let a01 = format!(r#"{a0},{{"index":1,"value":1,"op":"SCMP_CMP_EQ"}}"#);
        // Shorter first: the longer one is dead.
        let b = body(&profile(&[rule(7, a0), rule(8, &a01)]), Arch::X86_64, 39);
        assert_eq!(errnos(&b), vec![7]);
        // Longer first with another action, or the same conditions twice: refused.
        for rules in [[rule(8, &a01), rule(7, a0)], [rule(8, a0), rule(7, a0)]] {
            let e = plan(&parse(&profile(&rules)).unwrap(), Arch::X86_64)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("linux.seccomp.syscalls[1]") && e.contains("syscalls[0]"),
                "{e}"
            );
        }
        // Longer first, same action: the shorter replaces it.
        let b = body(&profile(&[rule(8, &a01), rule(8, a0)]), Arch::X86_64, 39);
        assert_eq!(errnos(&b), vec![8]);
        // One argument compared twice: runc splits it into two rules (OR).
        let twice =
            r#"{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}"#;
        let b = body(&profile(&[rule(9, twice)]), Arch::X86_64, 39);
        assert_eq!(errnos(&b), vec![9, 9]);
    }

    #[test]
    fn default_action_rules_and_unknown_names_are_dropped() {
        let p = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["getpid"],"action":"SCMP_ACT_ERRNO"},
            {"names":["no_such_syscall","getppid"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let m = plan(&p, Arch::X86_64).unwrap();
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![110]);
    }

    #[test]
    fn i386_socket_calls_also_filter_socketcall() {
        let p = parse(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{"index":0,"value":16,"op":"SCMP_CMP_EQ"},{"index":2,"value":9,"op":"SCMP_CMP_EQ"}]},
            {"names":["accept"],"action":"SCMP_ACT_ERRNO","errnoRet":6}]}"#)
        .unwrap();
        let m = plan(&p, Arch::X86).unwrap();
        let Body::FirstMatch(sc) = &m[&102] else {
            panic!()
        };
        // Greater datum first: accept's call number 5 before socket's 1.
        assert_eq!(sc.len(), 2);
        assert_eq!(
            sc[0],
            (
                vec![Cond {
                    arg: 0,
                    op: Op::Eq,
                    datum: 5,
                    mask: u64::MAX
                }],
                Action::Errno(6)
            )
        );
        assert_eq!(
            sc[1].0[0],
            Cond {
                arg: 0,
                op: Op::Eq,
                datum: 1,
                mask: u64::MAX
            }
        );
        assert_eq!(sc[1].0[1].arg, 2);
        let Body::FirstMatch(direct) = &m[&359] else {
            panic!()
        };
        assert_eq!(direct[0].0.len(), 2);
        assert!(!m.contains_key(&43), "accept has no direct i386 syscall");
    }
}

//! What each syscall does on one architecture, decided exactly as runc + libseccomp decide it:
//! runc's preprocessing (rules with the default action dropped, conditions on one argument
//! split into separate rules, unknown names ignored), i386's socketcall/ipc twins, and
//! libseccomp's merge of the rules of one syscall (`tree.rs`).

use super::arch::{self, Arch};
use super::profile::{Action, Cond, Op, Profile, Rule};
use super::tree::{self, Branch, Level, Step};
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// The decision for one syscall number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Whatever the arguments.
    Always(Action),
    /// The first path whose comparisons all hold decides; none: the default action.
    FirstMatch(Vec<(Vec<Step>, Action)>),
}

#[derive(Default)]
struct Sys {
    always: Option<Action>,
    tree: Option<Level>,
}

pub fn plan(p: &Profile, arch: Arch) -> Result<BTreeMap<u32, Body>> {
    let mut acc: BTreeMap<u32, Sys> = BTreeMap::new();
    let wide = arch.wide_args();
    for rule in &p.rules {
        // runc skips rules that only restate the default (libseccomp would refuse them).
        if rule.action == p.default {
            continue;
        }
        for name in &rule.names {
            for (nr, conds) in targets(arch, name, rule) {
                let branch = tree::chain(&conds, wide, rule.action);
                if acc.entry(nr).or_default().add(branch).is_err() {
                    bail!(
                        "linux.seccomp.syscalls[{}]: the rule for {name} conflicts with an earlier rule for it (the same argument checks would decide another action; libseccomp refuses this too)",
                        rule.index
                    );
                }
            }
        }
    }
    Ok(acc
        .into_iter()
        .map(|(nr, s)| {
            let body = match (s.always, s.tree) {
                (Some(act), _) => Body::Always(act),
                (None, Some(t)) => Body::FirstMatch(tree::paths(&t)),
                (None, None) => Body::FirstMatch(Vec::new()),
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

impl Sys {
    /// libseccomp's db_rule_add for one syscall: the first argument-free rule decides alone
    /// (it replaces earlier conditional ones and later ones are dropped); conditional rules
    /// merge into the tree.
    fn add(&mut self, b: Branch) -> Result<(), tree::Conflict> {
        if self.always.is_some() {
            return Ok(());
        }
        match (b, &self.tree) {
            (Branch::Act(a), _) => {
                self.always = Some(a);
                self.tree = None;
            }
            (Branch::Level(l), None) => self.tree = Some(l),
            (Branch::Level(l), Some(t)) => {
                let first = l.borrow()[0].clone();
                tree::add(t, &first)?;
            }
            (Branch::Next, _) => {}
        }
        Ok(())
    }
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
        // A MASKED_EQ with a zero mask compares nothing: the rule is unconditional.
        let p = profile(&[rule(
            6,
            r#"{"index":0,"value":0,"valueTwo":3,"op":"SCMP_CMP_MASKED_EQ"}"#,
        )]);
        assert_eq!(body(&p, Arch::X86_64, 39), Body::Always(Action::Errno(6)));
    }

    #[test]
    fn conflicts_are_refused_like_libseccomp() {
        let a0 = r#"{"index":0,"value":1,"op":"SCMP_CMP_EQ"}"#;
        let a01 = format!(r#"{a0},{{"index":1,"value":1,"op":"SCMP_CMP_EQ"}}"#);
        // Longer first with another action, or the same conditions twice: refused.
        for rules in [[rule(8, &a01), rule(7, a0)], [rule(8, a0), rule(7, a0)]] {
            let e = plan(&parse(&profile(&rules)).unwrap(), Arch::X86_64)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("linux.seccomp.syscalls[1]") && e.contains("getpid"),
                "{e}"
            );
        }
        // Shorter first, or longer first with the same action: fine.
        for rules in [[rule(7, a0), rule(8, &a01)], [rule(8, &a01), rule(8, a0)]] {
            assert!(plan(&parse(&profile(&rules)).unwrap(), Arch::X86_64).is_ok());
        }
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
        // Greater datum first: accept's call number 5 before socket's 1 (then arg 2 == 9).
        assert_eq!(sc.len(), 2);
        assert_eq!(
            (sc[0].0.len(), sc[0].0[0].datum, sc[0].1),
            (1, 5, Action::Errno(6))
        );
        assert_eq!((sc[1].0.len(), sc[1].0[0].datum, sc[1].0[1].arg), (2, 1, 2));
        let Body::FirstMatch(direct) = &m[&359] else {
            panic!()
        };
        assert_eq!(direct[0].0.len(), 2);
        assert!(!m.contains_key(&43), "accept has no direct i386 syscall");
    }
}

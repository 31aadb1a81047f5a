//! libseccomp's per-syscall decision tree (db.c), rebuilt node for node so that overlapping
//! rules resolve exactly as they do under runc: each argument comparison becomes 32-bit word
//! nodes (high word then low word on 64-bit ABIs), rules merge where nodes are equal, each
//! tree level is kept sorted (greatest node first), and the conflicts libseccomp refuses with
//! EEXIST are refused. The tree is then flattened into first-match paths. Pure.
//!
//! Levels are shared as libseccomp shares them: a comparison that accepts on two exits (GT,
//! GE: "high word greater" or "equal and low word greater"; NE, LT, LE likewise) links both
//! to one next level, so a later rule merged through one exit shows through the other too —
//! runc's observable behaviour depends on it.

use super::profile::{Action, Cond, Op};
use std::cell::RefCell;
use std::rc::Rc;

/// A tree level, possibly reached from several parents.
pub type Level = Rc<RefCell<Vec<Node>>>;

fn level(nodes: Vec<Node>) -> Branch {
    Branch::Level(Rc::new(RefCell::new(nodes)))
}

/// What a node compares its 32-bit word with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeOp {
    Eq,
    Gt,
    Ge,
    MaskedEq,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub arg: u8,
    pub hi: bool,
    pub op: NodeOp,
    pub datum: u32,
    pub mask: u32,
    /// The rule's operator and whole datum: they rank nodes and settle some merges.
    orig: Op,
    full: u64,
    pub t: Branch,
    pub f: Branch,
}

#[derive(Clone, Debug)]
pub enum Branch {
    /// Try the next node of the enclosing level.
    Next,
    Act(Action),
    Level(Level),
}

/// libseccomp refused the rule (EEXIST: it would take another action where an existing rule
/// already decides).
#[derive(Debug)]
pub struct Conflict;

impl Node {
    fn new(c: &Cond, hi: bool, op: NodeOp) -> Node {
        let shift = if hi { 32 } else { 0 };
        let mask = (c.mask >> shift) as u32;
        Node {
            arg: c.arg,
            hi,
            op,
            datum: ((c.datum >> shift) as u32) & mask,
            mask,
            orig: c.op,
            full: c.datum,
            t: Branch::Next,
            f: Branch::Next,
        }
    }

    fn slot(&self) -> u8 {
        self.arg * 2 + u8::from(self.hi)
    }

    fn leaf(&self) -> bool {
        !matches!(self.t, Branch::Level(_)) && !matches!(self.f, Branch::Level(_))
    }
}

/// The branch a rule's conditions make, ending in its action (_db_rule_gen): `Act` alone
/// when no condition is left (a MASKED_EQ with a zero mask compares nothing).
pub fn chain(conds: &[Cond], wide: bool, action: Action) -> Branch {
    let Some((c, rest)) = conds.split_first() else {
        return Branch::Act(action);
    };
    let accept = chain(rest, wide, action);
    let masked = c.op == Op::MaskedEq;
    if masked && (!wide || c.mask >> 32 == 0) && c.mask as u32 == 0 {
        return accept;
    }
    let lo_op = match c.op {
        Op::Eq | Op::Ne => NodeOp::Eq,
        Op::MaskedEq => NodeOp::MaskedEq,
        Op::Gt | Op::Le => NodeOp::Gt,
        Op::Ge | Op::Lt => NodeOp::Ge,
    };
    // NE, LT and LE accept on the false side of their comparison.
    let negated = matches!(c.op, Op::Ne | Op::Lt | Op::Le);
    let mut lo = Node::new(c, false, lo_op);
    if negated {
        lo.f = accept.clone();
    } else {
        lo.t = accept.clone();
    }
    if !wide {
        return level(vec![lo]);
    }
    let top = match c.op {
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            // hi > Rh decides; hi == Rh defers to the low word; hi < Rh decides the other way.
            let mut eq = Node::new(c, true, NodeOp::Eq);
            eq.t = level(vec![lo]);
            let mut gt = Node::new(c, true, NodeOp::Gt);
            if negated {
                eq.f = accept;
            } else {
                gt.t = accept;
            }
            gt.f = level(vec![eq]);
            gt
        }
        _ => {
            let mut h = Node::new(c, true, if masked { NodeOp::MaskedEq } else { NodeOp::Eq });
            h.t = level(vec![lo]);
            if negated {
                h.f = accept;
            }
            h
        }
    };
    level(vec![top])
}

fn op_rank(op: Op) -> u8 {
    match op {
        Op::MaskedEq | Op::Eq | Op::Ne => 3,
        Op::Le | Op::Lt => 2,
        Op::Ge | Op::Gt => 1,
    }
}

/// _db_chain_lt.
fn lt(a: &Node, b: &Node) -> bool {
    if a.slot() != b.slot() {
        return a.slot() < b.slot();
    }
    if op_rank(a.orig) != op_rank(b.orig) {
        return op_rank(a.orig) < op_rank(b.orig);
    }
    match a.orig {
        Op::Le | Op::Lt => a.datum > b.datum,
        _ => a.datum < b.datum,
    }
}

/// _db_chain_eq: the rule's own operator does not count (NE shares EQ's nodes).
fn same(a: &Node, b: &Node) -> bool {
    a.slot() == b.slot() && a.op == b.op && a.datum == b.datum && a.mask == b.mask
}

/// _db_tree_act_check: every action below agrees with `act`.
fn all_act(b: &Branch, act: Action) -> bool {
    match b {
        Branch::Next => true,
        Branch::Act(a) => *a == act,
        Branch::Level(l) => l
            .borrow()
            .iter()
            .all(|n| all_act(&n.t, act) && all_act(&n.f, act)),
    }
}

/// _db_tree_add: merges the new rule's tree `n` into `level`.
pub fn add(level: &Level, n: &Node) -> Result<(), Conflict> {
    let mut level = level.borrow_mut();
    let mut i = 0;
    loop {
        if same(&level[i], n) {
            return merge(&mut level[i], n);
        }
        if lt(&level[i], n) {
            level.insert(i, n.clone());
            return Ok(());
        }
        if i + 1 == level.len() {
            level.push(n.clone());
            return Ok(());
        }
        i += 1;
    }
}

fn merge(x: &mut Node, n: &Node) -> Result<(), Conflict> {
    for side in [true, false] {
        let Branch::Act(na) = *(if side { &n.t } else { &n.f }) else {
            continue;
        };
        let (x_full, x_leaf) = (x.full, x.leaf());
        let xb = if side { &mut x.t } else { &mut x.f };
        match xb {
            Branch::Act(xa) if *xa != na => {
                // For GT/GE on the high word the greater datum's action wins (libseccomp
                // keeps the rule that also decides the low-word cases first).
                if side && n.hi && n.full > x_full {
                    *xb = Branch::Act(na);
                }
                if x_leaf || n.leaf() {
                    return Err(Conflict);
                }
            }
            Branch::Act(_) => {}
            _ => {
                if !all_act(xb, na) {
                    return Err(Conflict);
                }
                *xb = Branch::Act(na);
            }
        }
    }
    for side in [true, false] {
        let nb = if side { &n.t } else { &n.f };
        let Branch::Level(nl) = nb else { continue };
        let xb = if side { &mut x.t } else { &mut x.f };
        match xb {
            // Reached again through a shared level: already merged.
            Branch::Level(xl) if Rc::ptr_eq(xl, nl) => {}
            Branch::Level(xl) => {
                let first = nl.borrow()[0].clone();
                add(xl, &first)?;
            }
            Branch::Next => *xb = Branch::Level(nl.clone()),
            // The existing rule is shorter: it decides, the new one is dead.
            Branch::Act(_) => return Ok(()),
        }
    }
    Ok(())
}

/// One comparison on a path: a node and the side taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub arg: u8,
    pub hi: bool,
    pub op: NodeOp,
    pub datum: u32,
    pub mask: u32,
    pub taken: bool,
}

/// Every path to an action, in the order the filter tries them (level order, true side then
/// false side; the sides exclude each other, so first match equals libseccomp's walk).
pub fn paths(level: &Level) -> Vec<(Vec<Step>, Action)> {
    let mut out = Vec::new();
    walk(level, &mut Vec::new(), &mut out);
    out
}

fn walk(level: &Level, prefix: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, Action)>) {
    for n in level.borrow().iter() {
        for (taken, b) in [(true, &n.t), (false, &n.f)] {
            let step = Step {
                arg: n.arg,
                hi: n.hi,
                op: n.op,
                datum: n.datum,
                mask: n.mask,
                taken,
            };
            match b {
                Branch::Next => {}
                Branch::Act(a) => {
                    prefix.push(step);
                    out.push((prefix.clone(), *a));
                    prefix.pop();
                }
                Branch::Level(l) => {
                    prefix.push(step);
                    walk(l, prefix, out);
                    prefix.pop();
                }
            }
        }
    }
}

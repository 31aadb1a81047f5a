//! Device access rules, shared by both versions (pure): `linux.resources.devices` checked and
//! normalised, runc's default-allowed devices appended, and the v1 `devices.allow`/`deny` text.
//!
//! Policy, as runc applies it on v1: deny everything, then the config's rules in order, then the
//! devices every container needs. The v2 BPF program (`bpf_devices.rs`) evaluates the same list.

use super::resources::{w, Step};
use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;

/// One normalised rule. `typ` is `a`, `b` or `c`; None for a number means any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub typ: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// ACC_* bits.
    pub access: u8,
}

/// The devices every container needs, allowed after the config's rules (runc's list):
/// mknod of any device, null, zero, full, random, urandom, tty, console, ptmx, the pty
/// slaves, and tun.
const DEFAULT_ALLOWED: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

fn access_bits(s: &str) -> Option<u8> {
    let mut bits = 0;
    for c in s.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return None,
        };
    }
    (bits != 0).then_some(bits)
}

/// Parses the v1 text form `c 1:3 rwm` (used for the built-in list and in tests).
pub fn parse(s: &str, allow: bool) -> Option<Rule> {
    let mut f = s.split(' ');
    let typ = f.next()?.chars().next()?;
    let (ma, mi) = f.next()?.split_once(':')?;
    let num = |n: &str| -> Option<Option<u32>> {
        if n == "*" {
            Some(None)
        } else {
            n.parse().ok().map(Some)
        }
    };
    Some(Rule {
        allow,
        typ,
        major: num(ma)?,
        minor: num(mi)?,
        access: access_bits(f.next()?)?,
    })
}

pub fn normalise(i: usize, d: &LinuxDeviceCgroup) -> Result<Rule> {
    let field = format!("linux.resources.devices[{i}]");
    let typ = match d.typ().unwrap_or_default() {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => bail!("{field}.type \"p\": FIFOs are not subject to device rules"),
    };
    let num = |n: Option<i64>, what: &str| -> Result<Option<u32>> {
        match n {
            None => Ok(None),
            Some(n) if n < 0 => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| anyhow::anyhow!("{field}.{what} {n}: out of range")),
        }
    };
    let access = d.access().as_deref().unwrap_or("rwm");
    let Some(bits) = access_bits(access) else {
        bail!("{field}.access {access:?}: must be letters of \"rwm\"");
    };
    Ok(Rule {
        allow: d.allow(),
        typ,
        major: num(d.major(), "major")?,
        minor: num(d.minor(), "minor")?,
        access: bits,
    })
}

/// The config's rules followed by the default-allowed devices.
pub fn with_defaults(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut out = Vec::with_capacity(rules.len() + DEFAULT_ALLOWED.len());
    for (i, d) in rules.iter().enumerate() {
        out.push(normalise(i, d)?);
    }
    out.extend(DEFAULT_ALLOWED.iter().filter_map(|s| parse(s, true)));
    Ok(out)
}

/// The v1 text of a rule.
pub fn text(r: &Rule) -> String {
    let n = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_else(|| "*".into());
    let mut acc = String::new();
    for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
        if r.access & bit != 0 {
            acc.push(c);
        }
    }
    format!("{} {}:{} {acc}", r.typ, n(r.major), n(r.minor))
}

/// v1 writes: deny all first (a new cgroup inherits its parent's list, often allow-all),
/// then every rule in order.
pub fn steps(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Step>> {
    let mut out = vec![Step::Write(w("devices.deny", "a *:* rwm", "devices"))];
    let n = rules.len();
    for (i, r) in with_defaults(rules)?.iter().enumerate() {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        let field = if i < n {
            format!("devices[{i}]")
        } else {
            "devices (default allowed devices)".into()
        };
        out.push(Step::Write(w(file, text(r), field)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_text_and_defaults() {
        let d: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"r"},
                {"allow":false,"type":"b","major":8,"minor":-1}]"#,
        )
        .unwrap();
        let s = steps(&d).unwrap();
        let text: Vec<String> = s
            .iter()
            .map(|s| match s {
                Step::Write(x) => format!("{} {}", x.file, x.value),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(text[0], "devices.deny a *:* rwm");
        assert_eq!(text[1], "devices.deny a *:* rwm");
        assert_eq!(text[2], "devices.allow c 1:3 r");
        assert_eq!(text[3], "devices.deny b 8:* rwm");
        assert_eq!(text[4], "devices.allow c *:* m");
        assert_eq!(text.last().unwrap(), "devices.allow c 10:200 rwm");
        assert_eq!(text.len(), 4 + DEFAULT_ALLOWED.len());
    }

    #[test]
    fn bad_rules_are_refused_by_field() {
        for (json, want) in [
            (r#"{"allow":true,"access":"rx"}"#, "devices[0].access"),
            (r#"{"allow":true,"access":""}"#, "devices[0].access"),
            (r#"{"allow":true,"type":"p"}"#, "devices[0].type"),
            (r#"{"allow":true,"major":99999999999}"#, "devices[0].major"),
        ] {
            let d: LinuxDeviceCgroup = serde_json::from_str(json).unwrap();
            let e = normalise(0, &d).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        assert_eq!(parse("c 136:* rwm", true).unwrap().minor, None);
        assert!(parse("c 1:x rwm", true).is_none());
    }
}

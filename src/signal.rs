//! Signal names as runc accepts them: `TERM`, `SIGTERM`, any case, numbers 1–64,
//! `RTMIN+n`, `RTMAX-n`.

use anyhow::{bail, Result};

const NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

const RTMIN: i32 = 34;
const RTMAX: i32 = 64;

pub fn parse(s: &str) -> Result<i32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        if (1..=RTMAX as i64).contains(&n) {
            return Ok(n as i32);
        }
        bail!("unknown signal {s:?}: numbers go from 1 to {RTMAX}");
    }
    let up = t.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(&(_, n)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(n);
    }
    let rt = |base: i32, off: &str, sign: i32| -> Option<i32> {
        let n = if off.is_empty() {
            0
        } else {
            off.parse::<i32>().ok()?
        };
        // Checked: an offset near i32::MAX must be refused, not wrap (or panic in debug).
        let v = base.checked_add(sign.checked_mul(n)?)?;
        (RTMIN..=RTMAX).contains(&v).then_some(v)
    };
    let v = if let Some(rest) = name.strip_prefix("RTMIN") {
        rest.strip_prefix('+')
            .or((rest.is_empty()).then_some(""))
            .and_then(|o| rt(RTMIN, o, 1))
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rest.strip_prefix('-')
            .or((rest.is_empty()).then_some(""))
            .and_then(|o| rt(RTMAX, o, -1))
    } else {
        None
    };
    match v {
        Some(v) => Ok(v),
        None => bail!("unknown signal {s:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn names_numbers_and_realtime() {
        assert_eq!(parse("TERM").unwrap(), 15);
        assert_eq!(parse("sigkill").unwrap(), 9);
        assert_eq!(parse("SIGUSR1").unwrap(), 10);
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("64").unwrap(), 64);
        assert_eq!(parse("RTMIN").unwrap(), 34);
        assert_eq!(parse("SIGRTMIN+3").unwrap(), 37);
        assert_eq!(parse("RTMAX-1").unwrap(), 63);
        for bad in [
            "FOO", "999", "0", "-1", "RTMIN+31", "RTMAX-31", "", "SIG", "RTMIN+x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn huge_realtime_offsets_are_refused_not_overflowed() {
        // Found by fuzz/fuzz_targets/signal.rs: `base + sign * n` overflowed i32.
        for bad in [
            "sigrtmax--2147483647",
            "RTMAX--2147483648",
            "RTMIN+2147483647",
            "RTMIN+2147483614",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

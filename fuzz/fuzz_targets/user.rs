//! User ids: `ruse exec --user UID[:GID]`, and the id maps of `linux.uidMappings` /
//! `gidMappings` as create checks them: ranges (`check_ranges`), then what the caller may map
//! (`/etc/subuid`-format grants through `parse_subids`, a `/proc/<pid>/uid_map` through
//! `parse_proc_map`, `check_granted`), and the map text written to the kernel.
//!
//! Input: the first byte picks the parser; for the maps, the next byte is the number of
//! ranges, then 12 bytes per range (containerID, hostID, size), then the grant file's text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};
use ruse::userns::{self, Caller, Grant, Kind};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        user_flag(rest);
    } else {
        maps(rest);
    }
});

fn user_flag(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((uid, gid)) = ruse::commands::exec_process::parse_user(s) else {
        return;
    };
    assert!(
        uid != u32::MAX && gid != Some(u32::MAX),
        "{s:?}: (uid_t)-1 accepted"
    );
    // Decimal digits only, one ':' at most, each part exactly the id it gave.
    let parts: Vec<&str> = s.split(':').collect();
    assert!(parts.len() <= 2, "{s:?} accepted");
    for (p, id) in parts.iter().zip([Some(uid), gid]) {
        assert!(
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
            "{s:?} accepted"
        );
        assert_eq!(p.parse::<u64>().ok(), id.map(u64::from), "{s:?}");
    }
}

fn maps(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n % 8) as usize;
    if rest.len() < n * 12 {
        return;
    }
    let (raw, text) = rest.split_at(n * 12);
    let word = |c: &[u8], i: usize| u32::from_le_bytes(c[i * 4..i * 4 + 4].try_into().unwrap());
    let maps: Vec<LinuxIdMapping> = raw
        .chunks(12)
        .map(|c| {
            LinuxIdMappingBuilder::default()
                .container_id(word(c, 0))
                .host_id(word(c, 1))
                .size(word(c, 2))
                .build()
                .unwrap()
        })
        .collect();
    let text = String::from_utf8_lossy(text);

    // Grants are parsed whether or not the maps are valid: the files are read as they are.
    let subids = userns::parse_subids(&text, "fuzz", 1000);
    assert!(subids.iter().all(|&(_, c)| c > 0), "zero-size grant kept");
    let proc_ranges = userns::parse_proc_map(&text);

    if userns::check_ranges("linux.uidMappings", &maps).is_err() {
        return;
    }
    for (i, m) in maps.iter().enumerate() {
        assert!(m.size() > 0);
        assert!(m.container_id().checked_add(m.size()).is_some());
        assert!(m.host_id().checked_add(m.size()).is_some());
        for o in &maps[..i] {
            let apart = |a: u32, b: u32, sa: u32, sb: u32| {
                u64::from(a) + u64::from(sa) <= u64::from(b)
                    || u64::from(b) + u64::from(sb) <= u64::from(a)
            };
            assert!(
                apart(m.container_id(), o.container_id(), m.size(), o.size()),
                "overlap accepted"
            );
            assert!(
                apart(m.host_id(), o.host_id(), m.size(), o.size()),
                "overlap accepted"
            );
        }
    }
    // What the kernel is sent reads back as the same ranges.
    let written = userns::format_map(&maps);
    let back: Vec<(u64, u64)> = maps
        .iter()
        .map(|m| (m.container_id().into(), m.size().into()))
        .collect();
    assert_eq!(userns::parse_proc_map(&written), back, "{written:?}");

    let caller = Caller {
        euid: 1000,
        egid: 1000,
        name: "fuzz".into(),
    };
    let grants = [
        Grant {
            own: Some(1000),
            ranges: subids,
            source: "/etc/subuid".into(),
        },
        Grant {
            own: None,
            ranges: proc_ranges,
            source: "/proc/self/uid_map".into(),
        },
    ];
    for g in &grants {
        let ok = userns::check_granted(&caller, Kind::Uid, &maps, g).is_ok();
        assert_eq!(ok, oracle(&maps, g), "maps {maps:?} grant {g:?}");
    }
    let _ = userns::method(&caller, Kind::Uid, &maps);
}

/// Every host range is the caller's own id alone, or inside the union of the granted ranges
/// (in u128, so no grant can overflow).
fn oracle(maps: &[LinuxIdMapping], g: &Grant) -> bool {
    let mut r: Vec<(u128, u128)> = g
        .ranges
        .iter()
        .map(|&(s, c)| (u128::from(s), u128::from(s) + u128::from(c)))
        .collect();
    r.sort();
    let mut merged: Vec<(u128, u128)> = Vec::new();
    for (s, e) in r {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    maps.iter().all(|m| {
        let (s, n) = (u128::from(m.host_id()), u128::from(m.size()));
        (n == 1 && g.own.map(u128::from) == Some(s))
            || merged.iter().any(|&(a, b)| a <= s && s + n <= b)
    })
}

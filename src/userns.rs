//! User-namespace id maps: validated and formatted here (pure), written by the parent from
//! outside the new namespace (the kernel requires a process outside, or the child itself with
//! a single self-mapping).

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxIdMapping;

/// Rejects zero-size ranges, overflows and ranges that overlap inside or outside.
pub fn check_ranges(field: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    if maps.len() > 340 {
        bail!("{field}: at most 340 ranges are allowed by the kernel");
    }
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            bail!("{field}[{i}]: size must be greater than zero");
        }
        for (what, start) in [("containerID", m.container_id()), ("hostID", m.host_id())] {
            if start.checked_add(m.size()).is_none() {
                bail!("{field}[{i}]: {what} + size overflows 32 bits");
            }
        }
        for (j, o) in maps.iter().enumerate().take(i) {
            let overlap = |a: u32, b: u32| a < b + o.size() && b < a + m.size();
            if overlap(m.container_id(), o.container_id()) {
                bail!("{field}[{i}]: containerID range overlaps {field}[{j}]");
            }
            if overlap(m.host_id(), o.host_id()) {
                bail!("{field}[{i}]: hostID range overlaps {field}[{j}]");
            }
        }
    }
    Ok(())
}

/// The `/proc/<pid>/uid_map` text: one `inside outside count` line per range.
pub fn format_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes the maps of the child `pid` (the parent does this as root, from outside).
pub fn write_maps(pid: i32, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<()> {
    std::fs::write(format!("/proc/{pid}/uid_map"), format_map(uid)).context("write uid_map")?;
    std::fs::write(format!("/proc/{pid}/gid_map"), format_map(gid)).context("write gid_map")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    fn m(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .unwrap()
    }

    #[test]
    fn ranges() {
        assert!(check_ranges("u", &[m(0, 1000, 1), m(1, 100000, 65536)]).is_ok());
        assert!(check_ranges("u", &[m(0, 1000, 0)])
            .unwrap_err()
            .to_string()
            .contains("size"));
        assert!(check_ranges("u", &[m(0, 1000, 10), m(5, 5000, 10)])
            .unwrap_err()
            .to_string()
            .contains("containerID"));
        assert!(check_ranges("u", &[m(0, 1000, 10), m(50, 1005, 10)])
            .unwrap_err()
            .to_string()
            .contains("hostID"));
        assert!(check_ranges("u", &[m(u32::MAX, 0, 2)]).is_err());
        assert_eq!(
            format_map(&[m(0, 1000, 1), m(1, 100000, 65536)]),
            "0 1000 1\n1 100000 65536\n"
        );
    }
}

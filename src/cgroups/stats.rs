//! `events` statistics, read from whichever hierarchy serves each controller, v1 or v2
//! (runtime process, host namespaces), into runc's shape (`stats_json.rs`).

pub use super::stats_json::*;
use super::{files, resources::dir_for, Cgroup};
use std::collections::BTreeMap;
use std::path::Path;

/// Reads every statistic the container's hierarchies offer.
pub fn read(cg: &Cgroup) -> Stats {
    let mut s = Stats::default();
    let v2 = cg.dirs.iter().find(|d| d.v2).map(|d| d.path.as_path());
    if let Some(d) = dir_for(cg, "cpuacct", "cpu") {
        if d.v2 {
            cpu_v2(&d.path, &mut s.cpu);
        } else {
            cpuacct_v1(&d.path, &mut s.cpu.usage);
        }
    }
    if let Some(d) = dir_for(cg, "cpu", "cpu").filter(|d| !d.v2) {
        let st = files::read_keyed(&d.path, "cpu.stat");
        s.cpu.throttling = Throttling {
            periods: st.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: st.get("throttled_time").copied().unwrap_or(0),
        };
    }
    if let Some(d) = dir_for(cg, "cpuset", "cpuset") {
        cpuset(&d.path, d.v2, &mut s.cpuset);
    }
    if let Some(d) = dir_for(cg, "memory", "memory") {
        if d.v2 {
            memory_v2(&d.path, &mut s.memory);
        } else {
            memory_v1(&d.path, &mut s.memory);
        }
    }
    if let Some(d) = dir_for(cg, "pids", "pids") {
        s.pids.current = files::read_u64(&d.path, "pids.current").unwrap_or(0);
        s.pids.limit = files::read_u64(&d.path, "pids.max")
            .filter(|m| *m != u64::MAX)
            .unwrap_or(0);
    }
    if let Some(d) = dir_for(cg, "blkio", "io") {
        if d.v2 {
            io_v2(&d.path, &mut s.blkio);
        } else {
            blkio_v1(&d.path, &mut s.blkio);
        }
    }
    if let Some(d) = dir_for(cg, "hugetlb", "hugetlb") {
        hugetlb(&d.path, d.v2, &mut s.hugetlb);
    }
    if let Some(g) = &cg.rdt {
        s.intel_rdt = crate::intelrdt::stats(g);
    }
    // Pressure stall information lives in the v2 tree (hybrid hosts have it too).
    if let Some(v2) = v2 {
        s.cpu.psi = psi(v2, "cpu.pressure");
        s.memory.psi = psi(v2, "memory.pressure");
        s.blkio.psi = psi(v2, "io.pressure");
    }
    s
}

fn list_u64(dir: &Path, name: &str) -> Vec<u64> {
    let text = files::read(dir, name).unwrap_or_default();
    text.split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

fn cpuacct_v1(dir: &Path, u: &mut CpuUsage) {
    u.total = files::read_u64(dir, "cpuacct.usage").unwrap_or(0);
    u.percpu = list_u64(dir, "cpuacct.usage_percpu");
    u.percpu_kernel = list_u64(dir, "cpuacct.usage_percpu_sys");
    u.percpu_user = list_u64(dir, "cpuacct.usage_percpu_user");
    match (
        files::read_u64(dir, "cpuacct.usage_sys"),
        files::read_u64(dir, "cpuacct.usage_user"),
    ) {
        (Some(k), Some(us)) => (u.kernel, u.user) = (k, us),
        _ => {
            // USER_HZ ticks (100 per second on Linux) → nanoseconds, as runc converts.
            let st = files::read_keyed(dir, "cpuacct.stat");
            u.kernel = st.get("system").copied().unwrap_or(0) * 10_000_000;
            u.user = st.get("user").copied().unwrap_or(0) * 10_000_000;
        }
    }
}

fn cpu_v2(dir: &Path, c: &mut Cpu) {
    let st = files::read_keyed(dir, "cpu.stat");
    let g = |k: &str| st.get(k).copied().unwrap_or(0);
    c.usage.total = g("usage_usec") * 1000;
    c.usage.user = g("user_usec") * 1000;
    c.usage.kernel = g("system_usec") * 1000;
    c.throttling = Throttling {
        periods: g("nr_periods"),
        throttled_periods: g("nr_throttled"),
        throttled_time: g("throttled_usec") * 1000,
    };
}

/// `0-3,7` → [0, 1, 2, 3, 7].
pub fn parse_list(s: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
            out.extend(a..=b.max(a));
        }
    }
    out
}

fn cpuset(dir: &Path, v2: bool, c: &mut CpuSet) {
    let (cpus, mems) = if v2 {
        ("cpuset.cpus.effective", "cpuset.mems.effective")
    } else {
        ("cpuset.cpus", "cpuset.mems")
    };
    c.cpus = parse_list(&files::read(dir, cpus).unwrap_or_default());
    c.mems = parse_list(&files::read(dir, mems).unwrap_or_default());
    if v2 {
        return;
    }
    let g = |f: &str| files::read_u64(dir, f).unwrap_or(0);
    c.cpu_exclusive = g("cpuset.cpu_exclusive");
    c.mem_hardwall = g("cpuset.mem_hardwall");
    c.mem_exclusive = g("cpuset.mem_exclusive");
    c.memory_migrate = g("cpuset.memory_migrate");
    c.memory_spread_page = g("cpuset.memory_spread_page");
    c.memory_spread_slab = g("cpuset.memory_spread_slab");
    c.memory_pressure = g("cpuset.memory_pressure");
    c.sched_load_balance = g("cpuset.sched_load_balance");
    c.sched_relax_domain_level = files::read(dir, "cpuset.sched_relax_domain_level")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
}

fn entry_v1(dir: &Path, prefix: &str) -> MemoryEntry {
    let g = |f: &str| files::read_u64(dir, &format!("{prefix}.{f}")).unwrap_or(0);
    MemoryEntry {
        limit: g("limit_in_bytes"),
        usage: g("usage_in_bytes"),
        max: g("max_usage_in_bytes"),
        failcnt: g("failcnt"),
    }
}

fn memory_v1(dir: &Path, m: &mut Memory) {
    m.raw = files::read_keyed(dir, "memory.stat");
    m.cache = m.raw.get("cache").copied().unwrap_or(0);
    m.usage = entry_v1(dir, "memory");
    m.swap = entry_v1(dir, "memory.memsw");
    m.kernel = entry_v1(dir, "memory.kmem");
    m.kernel_tcp = entry_v1(dir, "memory.kmem.tcp");
}

fn memory_v2(dir: &Path, m: &mut Memory) {
    m.raw = files::read_keyed(dir, "memory.stat");
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    let g = |f: &str| files::read_u64(dir, f).unwrap_or(0);
    m.usage = MemoryEntry {
        limit: g("memory.max"),
        usage: g("memory.current"),
        max: g("memory.peak"),
        failcnt: 0,
    };
    // v1 reports memory+swap; runc adds the two v2 numbers up for the same meaning.
    let swap_limit = g("memory.swap.max");
    m.swap = MemoryEntry {
        limit: if swap_limit == u64::MAX || m.usage.limit == u64::MAX {
            u64::MAX
        } else {
            swap_limit + m.usage.limit
        },
        usage: g("memory.swap.current") + m.usage.usage,
        max: 0,
        failcnt: 0,
    };
}

/// `8:0 Read 123` lines (v1 blkio) → entries; the closing `Total` line is dropped.
pub fn parse_blkio(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, v] = f[..] else { return None };
            let (ma, mi) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: ma.parse().ok()?,
                minor: mi.parse().ok()?,
                op: op.to_string(),
                value: v.parse().ok()?,
            })
        })
        .collect()
}

fn blkio_v1(dir: &Path, b: &mut Blkio) {
    let prefix = if dir.join("blkio.bfq.io_service_bytes_recursive").exists() {
        "blkio.bfq"
    } else {
        "blkio.throttle"
    };
    let r = |f: &str| files::read(dir, &format!("{prefix}.{f}")).unwrap_or_default();
    b.io_service_bytes_recursive = parse_blkio(&r("io_service_bytes_recursive"));
    b.io_serviced_recursive = parse_blkio(&r("io_serviced_recursive"));
}

/// `8:0 rbytes=1 wbytes=2 rios=3 wios=4 …` (v2 io.stat) → runc's Read/Write entries.
pub fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((ma, mi)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "dbytes" => (&mut bytes, "Discard"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                "dios" => (&mut ios, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    (bytes, ios)
}

fn io_v2(dir: &Path, b: &mut Blkio) {
    let (bytes, ios) = parse_io_stat(&files::read(dir, "io.stat").unwrap_or_default());
    b.io_service_bytes_recursive = bytes;
    b.io_serviced_recursive = ios;
}

/// Page sizes as cgroup file names (`2MB`, `1GB`), from /sys/kernel/mm/hugepages.
pub fn hugepage_sizes() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let kb: u64 = n
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(match kb {
                k if k >= 1 << 20 => format!("{}GB", k >> 20),
                k if k >= 1 << 10 => format!("{}MB", k >> 10),
                k => format!("{k}KB"),
            })
        })
        .collect();
    out.sort();
    out
}

fn hugetlb(dir: &Path, v2: bool, out: &mut BTreeMap<String, Hugetlb>) {
    for size in hugepage_sizes() {
        let g = |f: &str| files::read_u64(dir, &format!("hugetlb.{size}.{f}")).unwrap_or(0);
        let h = if v2 {
            Hugetlb {
                usage: g("current"),
                max: 0,
                failcnt: files::read_keyed(dir, &format!("hugetlb.{size}.events"))
                    .get("max")
                    .copied()
                    .unwrap_or(0),
            }
        } else {
            Hugetlb {
                usage: g("usage_in_bytes"),
                max: g("max_usage_in_bytes"),
                failcnt: g("failcnt"),
            }
        };
        out.insert(size, h);
    }
}

/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` (and `full …`) → Psi.
pub fn parse_psi(text: &str) -> Option<Psi> {
    let mut p = Psi::default();
    let mut any = false;
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let d = match f.next() {
            Some("some") => &mut p.some,
            Some("full") => &mut p.full,
            _ => continue,
        };
        any = true;
        for kv in f {
            match kv.split_once('=') {
                Some(("avg10", v)) => d.avg10 = v.parse().unwrap_or(0.0),
                Some(("avg60", v)) => d.avg60 = v.parse().unwrap_or(0.0),
                Some(("avg300", v)) => d.avg300 = v.parse().unwrap_or(0.0),
                Some(("total", v)) => d.total = v.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    any.then_some(p)
}

fn psi(dir: &Path, name: &str) -> Option<Psi> {
    parse_psi(&files::read(dir, name).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_list("0-3,7"), [0, 1, 2, 3, 7]);
        assert_eq!(parse_list(""), Vec::<u16>::new());
        let b = parse_blkio("8:0 Read 10\n8:0 Write 20\nTotal 30\n");
        assert_eq!(b.len(), 2);
        assert_eq!((b[1].major, b[1].op.as_str(), b[1].value), (8, "Write", 20));
        let (bytes, ios) =
            parse_io_stat("254:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n");
        assert_eq!(
            bytes[0],
            BlkioEntry {
                major: 254,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
        assert_eq!(ios[0].value, 1);
        let p = parse_psi("some avg10=1.50 avg60=0.00 avg300=0.00 total=123\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n").unwrap();
        assert_eq!((p.some.avg10, p.some.total, p.full.total), (1.5, 123, 7));
    }
}

//! The cgroup v2 [`Driver`]: resource groups → unified-hierarchy files (pure). Where the spec
//! speaks v1, values are converted as runc and crun do (shares → `cpu.weight`, blkio weight →
//! `io.weight`, memory+swap → `memory.swap.max`); what v2 has no knob for is refused by name.

use super::bpf_devices;
use super::resources::{optional, w, Driver, Step};
use anyhow::{bail, Result};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
    LinuxThrottleDevice,
};

pub struct V2;

/// The four throttle lists with their v1 file suffix and config name; v2 key follows.
pub fn throttles(b: &LinuxBlockIo) -> [(&'static str, &[LinuxThrottleDevice], &'static str); 4] {
    fn l(v: &Option<Vec<LinuxThrottleDevice>>) -> &[LinuxThrottleDevice] {
        v.as_deref().unwrap_or_default()
    }
    [
        (
            "read_bps_device",
            l(b.throttle_read_bps_device()),
            "throttleReadBpsDevice",
        ),
        (
            "write_bps_device",
            l(b.throttle_write_bps_device()),
            "throttleWriteBpsDevice",
        ),
        (
            "read_iops_device",
            l(b.throttle_read_iops_device()),
            "throttleReadIOPSDevice",
        ),
        (
            "write_iops_device",
            l(b.throttle_write_iops_device()),
            "throttleWriteIOPSDevice",
        ),
    ]
}

/// v1 shares [2, 262144] → v2 weight [1, 10000], as runc ≥ 1.3.2 (opencontainers/cgroups'
/// ConvertCPUSharesToCgroupV2Value) and crun ≥ 1.23 do: 10^((l² + 125·l)/612 − 7/34) rounded
/// up, with l = log2(shares), a curve through both minimums, both maximums and both defaults
/// (1024 → 100). The old linear formula sent the v1 default to weight 39.
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0..=2 => 1,
        262_144.. => 10_000,
        s => {
            let l = (s as f64).log2();
            let w = 10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0);
            // 1024 is the one value whose exact result is an integer (100): keep float noise
            // from rounding it up to 101.
            if (w - w.round()).abs() < 1e-9 {
                w.round() as u64
            } else {
                w.ceil() as u64
            }
        }
    }
}

/// v1 blkio weight [10, 1000] → v2 io.weight [1, 10000] (runc's formula).
pub fn blkio_to_io_weight(w: u16) -> u64 {
    1 + (u64::from(w.clamp(10, 1000)) - 10) * 9999 / 990
}

/// The spec's memory+swap total → v2's swap-only `memory.swap.max` (runc's
/// ConvertMemorySwapToCgroupV2Value). None: leave the file alone.
pub fn swap_max(swap: i64, limit: i64) -> Result<Option<String>> {
    let v = match (swap, limit) {
        (0, -1) => -1,
        (-1 | 0, _) => swap,
        (_, -1) => swap,
        (_, 0) => bail!("linux.resources.memory.swap: needs memory.limit on cgroup v2 (swap there excludes memory)"),
        (s, l) if l < 0 || s < l => {
            bail!("linux.resources.memory.swap: {s} is below memory.limit {l} (swap is memory+swap)")
        }
        (s, l) => s - l,
    };
    Ok(match v {
        0 if swap == 0 => None,
        -1 => Some("max".into()),
        v => Some(v.to_string()),
    })
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

fn unsupported(field: &str, why: &str) -> anyhow::Error {
    crate::errors::not_supported(format!("linux.resources.{field} on cgroup v2 ({why})"))
}

impl Driver for V2 {
    #[allow(deprecated)]
    fn memory(&self, m: &LinuxMemory) -> Result<Vec<Step>> {
        let mut out = Vec::new();
        if m.kernel().is_some_and(|v| v != -1 && v != 0) {
            return Err(unsupported("memory.kernel", "no kernel memory limit"));
        }
        if m.kernel_tcp().is_some_and(|v| v != -1 && v != 0) {
            return Err(unsupported(
                "memory.kernelTCP",
                "no kernel TCP memory limit",
            ));
        }
        if m.swappiness().is_some() {
            return Err(unsupported("memory.swappiness", "no per-cgroup swappiness"));
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(unsupported(
                "memory.disableOOMKiller",
                "the OOM killer cannot be disabled",
            ));
        }
        if m.use_hierarchy() == Some(false) {
            return Err(unsupported(
                "memory.useHierarchy",
                "accounting is always hierarchical",
            ));
        }
        let limit = m.limit().unwrap_or(0);
        let swap = m.swap().unwrap_or(0);
        if m.check_before_update() == Some(true) {
            if limit > 0 {
                out.push(Step::UsageBelow {
                    files: vec!["memory.current".into()],
                    limit: limit as u64,
                    field: "memory.limit".into(),
                });
            }
            if swap > 0 {
                out.push(Step::UsageBelow {
                    files: vec!["memory.current".into(), "memory.swap.current".into()],
                    limit: swap as u64,
                    field: "memory.swap".into(),
                });
            }
        }
        if let Some(v) = swap_max(swap, limit)? {
            // Without swap accounting there is no file: "max" or "0" then change nothing.
            let x = w("memory.swap.max", &v, "memory.swap");
            out.push(Step::Write(if v == "max" || v == "0" {
                optional(x)
            } else {
                x
            }));
        }
        if limit != 0 {
            out.push(Step::Write(w("memory.max", max_or(limit), "memory.limit")));
        }
        if let Some(r) = m.reservation().filter(|r| *r != 0) {
            out.push(Step::Write(w(
                "memory.low",
                max_or(r),
                "memory.reservation",
            )));
        }
        Ok(out)
    }

    fn cpu(&self, c: &LinuxCpu) -> Result<Vec<Step>> {
        if c.realtime_runtime().is_some_and(|v| v != 0)
            || c.realtime_period().is_some_and(|v| v != 0)
        {
            return Err(unsupported(
                "cpu.realtimeRuntime/realtimePeriod",
                "no realtime group scheduling",
            ));
        }
        let mut out = Vec::new();
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            super::v1::check_shares(s)?;
            out.push(Step::Write(w(
                "cpu.weight",
                shares_to_weight(s),
                "cpu.shares",
            )));
        }
        if let Some(i) = c.idle() {
            out.push(Step::Write(w("cpu.idle", i, "cpu.idle")));
        }
        let (q, p) = (c.quota().unwrap_or(0), c.period().unwrap_or(0));
        let mut max = Vec::new();
        if let Some(b) = c.burst() {
            max.push(w("cpu.max.burst", b, "cpu.burst"));
        }
        if q != 0 || p != 0 {
            let mut v = if q > 0 { q.to_string() } else { "max".into() };
            if p != 0 {
                v.push_str(&format!(" {p}"));
            }
            max.push(w("cpu.max", v, "cpu.quota/period"));
        }
        if !max.is_empty() {
            out.push(Step::Together(max));
        }
        Ok(out)
    }

    fn block_io(&self, b: &LinuxBlockIo) -> Result<Vec<Step>> {
        if b.leaf_weight().is_some_and(|v| v != 0)
            || b.weight_device()
                .iter()
                .flatten()
                .any(|d| d.leaf_weight().is_some())
        {
            return Err(unsupported(
                "blockIO.leafWeight",
                "CFQ leaf weights do not exist",
            ));
        }
        let mut out = Vec::new();
        if let Some(v) = b.weight().filter(|v| *v != 0) {
            // BFQ takes the blkio value as it is; io.weight has its own scale.
            out.push(Step::FirstOf(vec![
                w("io.bfq.weight", v, "blockIO.weight"),
                w("io.weight", blkio_to_io_weight(v), "blockIO.weight"),
            ]));
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            let field = format!("blockIO.weightDevice[{i}]");
            let Some(v) = d.weight() else {
                bail!("linux.resources.{field}: give a weight");
            };
            let line = format!("{}:{} {v}", d.major(), d.minor());
            out.push(Step::Write(w("io.bfq.weight", line, field)));
        }
        for ((_, list, name), key) in throttles(b)
            .into_iter()
            .zip(["rbps", "wbps", "riops", "wiops"])
        {
            for (i, t) in list.iter().enumerate() {
                let v = format!("{}:{} {key}={}", t.major(), t.minor(), t.rate());
                out.push(Step::Write(w("io.max", v, format!("blockIO.{name}[{i}]"))));
            }
        }
        Ok(out)
    }

    fn hugetlb(&self, l: &[LinuxHugepageLimit]) -> Result<Vec<Step>> {
        let mut out = Vec::new();
        for (i, h) in l.iter().enumerate() {
            super::v1::check_page_size(i, h.page_size())?;
            let v = max_or(h.limit());
            let field = format!("hugepageLimits[{i}]");
            let base = format!("hugetlb.{}", h.page_size());
            out.push(Step::Write(w(format!("{base}.max"), &v, &field)));
            out.push(Step::Write(optional(w(
                format!("{base}.rsvd.max"),
                &v,
                &field,
            ))));
        }
        Ok(out)
    }

    fn net_cls(&self, _: &LinuxNetwork) -> Result<Vec<Step>> {
        Err(unsupported(
            "network.classID",
            "net_cls is a v1 controller; use BPF",
        ))
    }

    fn net_prio(&self, _: &LinuxNetwork) -> Result<Vec<Step>> {
        Err(unsupported(
            "network.priorities",
            "net_prio is a v1 controller; use BPF",
        ))
    }

    fn devices(&self, rules: &[LinuxDeviceCgroup]) -> Result<Vec<Step>> {
        let all = super::devices_v1::with_defaults(rules)?;
        Ok(vec![Step::DeviceProgram(bpf_devices::program(&all))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(steps: &[Step]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for s in steps {
            match s {
                Step::Write(x) => out.push((x.file.clone(), x.value.clone())),
                Step::Together(l) | Step::FirstOf(l) => l
                    .iter()
                    .for_each(|x| out.push((x.file.clone(), x.value.clone()))),
                _ => {}
            }
        }
        out
    }

    fn has(steps: &[Step], file: &str, value: &str) -> bool {
        writes(steps).contains(&(file.to_string(), value.to_string()))
    }

    #[test]
    fn conversions_match_runc() {
        // opencontainers/cgroups' own cases, and a few more of the curve.
        for (shares, weight) in [
            (2, 1),
            (3, 2),
            (1024, 100),
            (256, 35),
            (512, 59),
            (2000, 170),
            (4096, 303),
            (100_000, 4340),
            (262_143, 10_000),
            (262_144, 10_000),
            (300_000, 10_000),
        ] {
            assert_eq!(shares_to_weight(shares), weight, "{shares}");
        }
        let mut last = 0;
        for s in 2..=262_144 {
            let w = shares_to_weight(s);
            assert!((1..=10_000).contains(&w) && w >= last, "{s} -> {w}");
            last = w;
        }
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(swap_max(0, 0).unwrap(), None);
        assert_eq!(swap_max(0, -1).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_max(-1, 100).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_max(300, 100).unwrap().as_deref(), Some("200"));
        assert_eq!(swap_max(100, 100).unwrap().as_deref(), Some("0"));
        assert_eq!(swap_max(500, -1).unwrap().as_deref(), Some("500"));
        assert!(swap_max(50, 100).is_err());
        assert!(swap_max(50, 0).is_err());
    }

    #[test]
    fn memory_files() {
        let m: LinuxMemory = serde_json::from_str(
            r#"{"limit":1048576,"swap":3145728,"reservation":-1,"checkBeforeUpdate":true,
                "useHierarchy":true,"disableOOMKiller":false}"#,
        )
        .unwrap();
        let s = V2.memory(&m).unwrap();
        assert!(has(&s, "memory.max", "1048576"));
        assert!(has(&s, "memory.swap.max", "2097152"));
        assert!(has(&s, "memory.low", "max"));
        assert!(matches!(&s[0], Step::UsageBelow { limit: 1048576, .. }));
        for bad in [
            r#"{"swappiness":10}"#,
            r#"{"disableOOMKiller":true}"#,
            r#"{"useHierarchy":false}"#,
            r#"{"kernel":1048576}"#,
        ] {
            let m: LinuxMemory = serde_json::from_str(bad).unwrap();
            let e = V2.memory(&m).unwrap_err().to_string();
            assert!(
                e.starts_with("not supported: linux.resources.memory."),
                "{e}"
            );
        }
    }

    #[test]
    fn cpu_files() {
        let c: LinuxCpu =
            serde_json::from_str(r#"{"shares":1024,"quota":50000,"period":100000,"burst":10}"#)
                .unwrap();
        let s = V2.cpu(&c).unwrap();
        assert!(has(&s, "cpu.weight", "100"));
        assert!(has(&s, "cpu.max", "50000 100000"));
        assert!(has(&s, "cpu.max.burst", "10"));
        let unl: LinuxCpu = serde_json::from_str(r#"{"quota":-1}"#).unwrap();
        assert!(has(&V2.cpu(&unl).unwrap(), "cpu.max", "max"));
        let rt: LinuxCpu = serde_json::from_str(r#"{"realtimeRuntime":10}"#).unwrap();
        assert!(V2.cpu(&rt).is_err());
        let set: LinuxCpu = serde_json::from_str(r#"{"cpus":"0-1","mems":"0"}"#).unwrap();
        let s = V2.cpuset(&set);
        assert!(has(&s, "cpuset.cpus", "0-1") && has(&s, "cpuset.mems", "0"));
    }

    #[test]
    fn io_files() {
        let b: LinuxBlockIo = serde_json::from_str(
            r#"{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":70}],
                "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1000}],
                "throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":30}]}"#,
        )
        .unwrap();
        let s = V2.block_io(&b).unwrap();
        assert!(has(&s, "io.bfq.weight", "500") && has(&s, "io.weight", "4950"));
        assert!(has(&s, "io.bfq.weight", "8:0 70"));
        assert!(has(&s, "io.max", "8:0 rbps=1000"));
        assert!(has(&s, "io.max", "8:16 wiops=30"));
        let leaf: LinuxBlockIo = serde_json::from_str(r#"{"leafWeight":10}"#).unwrap();
        assert!(V2.block_io(&leaf).is_err());
    }

    #[test]
    fn hugetlb_and_network() {
        let h: Vec<LinuxHugepageLimit> =
            serde_json::from_str(r#"[{"pageSize":"1GB","limit":-1}]"#).unwrap();
        let s = V2.hugetlb(&h).unwrap();
        assert!(has(&s, "hugetlb.1GB.max", "max") && has(&s, "hugetlb.1GB.rsvd.max", "max"));
        assert!(V2.net_cls(&LinuxNetwork::default()).is_err());
    }
}

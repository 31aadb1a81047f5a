//! The cgroup v1 [`Driver`]: resource groups → v1 knob files (pure). Semantics follow runc's
//! `libcontainer/cgroups/fs`: 0 means "unset" for limits, -1 means unlimited.

use super::devices_v1;
use super::resources::{optional, w, Driver, Step, W};
use anyhow::{bail, Result};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
};

pub struct V1;

/// The kernel clamps `cpu.shares` silently; runc reports values outside its range instead.
pub fn check_shares(s: u64) -> Result<()> {
    if !(2..=262_144).contains(&s) {
        bail!("linux.resources.cpu.shares: {s} is outside the kernel's range 2-262144");
    }
    Ok(())
}

/// `2MB`, `64KB`, `1GB`: the size part of hugetlb file names; checked so it stays a name.
pub fn check_page_size(i: usize, s: &str) -> Result<()> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !["KB", "MB", "GB", "TB", "PB"].contains(&unit)
    {
        bail!("linux.resources.hugepageLimits[{i}].pageSize {s:?}: expected <size>KB|MB|GB");
    }
    Ok(())
}

impl Driver for V1 {
    #[allow(deprecated)]
    fn memory(&self, m: &LinuxMemory) -> Result<Vec<Step>> {
        let mut out = Vec::new();
        if let Some(s) = m.swappiness() {
            if s > 100 {
                bail!("linux.resources.memory.swappiness: {s} is outside 0-100");
            }
        }
        let limit = m.limit().filter(|v| *v != 0);
        let swap = m.swap().filter(|v| *v != 0);
        let mut pair: Vec<W> = Vec::new();
        // Order matters (memsw ≥ limit at all times): `Together` retries the refused one.
        if let Some(l) = limit {
            pair.push(w("memory.limit_in_bytes", l, "memory.limit"));
        }
        match swap {
            Some(s) => pair.push(w("memory.memsw.limit_in_bytes", s, "memory.swap")),
            // An unlimited memory with no swap given means both unlimited (runc).
            None if limit == Some(-1) => pair.push(optional(w(
                "memory.memsw.limit_in_bytes",
                -1,
                "memory.swap",
            ))),
            None => {}
        }
        if !pair.is_empty() {
            out.push(Step::Together(pair));
        }
        let plain: [(&str, Option<String>, &str); 6] = [
            (
                "memory.soft_limit_in_bytes",
                m.reservation().filter(|v| *v != 0).map(|v| v.to_string()),
                "memory.reservation",
            ),
            (
                "memory.kmem.limit_in_bytes",
                m.kernel().filter(|v| *v != 0).map(|v| v.to_string()),
                "memory.kernel",
            ),
            (
                "memory.kmem.tcp.limit_in_bytes",
                m.kernel_tcp().filter(|v| *v != 0).map(|v| v.to_string()),
                "memory.kernelTCP",
            ),
            (
                "memory.swappiness",
                m.swappiness().map(|v| v.to_string()),
                "memory.swappiness",
            ),
            (
                "memory.oom_control",
                m.disable_oom_killer().map(|b| u8::from(b).to_string()),
                "memory.disableOOMKiller",
            ),
            (
                "memory.use_hierarchy",
                m.use_hierarchy().map(|b| u8::from(b).to_string()),
                "memory.useHierarchy",
            ),
        ];
        for (file, v, field) in plain {
            if let Some(v) = v {
                out.push(Step::Write(w(file, v, field)));
            }
        }
        // checkBeforeUpdate: on v1 the kernel itself refuses a limit below the usage.
        Ok(out)
    }

    fn cpu(&self, c: &LinuxCpu) -> Result<Vec<Step>> {
        let mut out = Vec::new();
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            check_shares(s)?;
            out.push(Step::Write(w("cpu.shares", s, "cpu.shares")));
        }
        let mut cfs = Vec::new();
        if let Some(p) = c.period().filter(|p| *p != 0) {
            cfs.push(w("cpu.cfs_period_us", p, "cpu.period"));
        }
        if let Some(b) = c.burst() {
            cfs.push(w("cpu.cfs_burst_us", b, "cpu.burst"));
        }
        if let Some(q) = c.quota().filter(|q| *q != 0) {
            cfs.push(w("cpu.cfs_quota_us", q, "cpu.quota"));
        }
        if !cfs.is_empty() {
            out.push(Step::Together(cfs));
        }
        let mut rt = Vec::new();
        if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
            rt.push(w("cpu.rt_period_us", p, "cpu.realtimePeriod"));
        }
        if let Some(r) = c.realtime_runtime().filter(|r| *r != 0) {
            rt.push(w("cpu.rt_runtime_us", r, "cpu.realtimeRuntime"));
        }
        if !rt.is_empty() {
            out.push(Step::Together(rt));
        }
        if let Some(i) = c.idle() {
            out.push(Step::Write(w("cpu.idle", i, "cpu.idle")));
        }
        Ok(out)
    }

    fn block_io(&self, b: &LinuxBlockIo) -> Result<Vec<Step>> {
        let mut out = Vec::new();
        if let Some(v) = b.weight().filter(|v| *v != 0) {
            out.push(Step::FirstOf(vec![
                w("blkio.bfq.weight", v, "blockIO.weight"),
                w("blkio.weight", v, "blockIO.weight"),
            ]));
        }
        if let Some(v) = b.leaf_weight().filter(|v| *v != 0) {
            out.push(Step::Write(w("blkio.leaf_weight", v, "blockIO.leafWeight")));
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            let dev = format!("{}:{}", d.major(), d.minor());
            let field = format!("blockIO.weightDevice[{i}]");
            if d.weight().is_none() && d.leaf_weight().is_none() {
                bail!("linux.resources.{field}: give weight, leafWeight or both");
            }
            if let Some(v) = d.weight() {
                out.push(Step::FirstOf(vec![
                    w("blkio.bfq.weight_device", format!("{dev} {v}"), &field),
                    w("blkio.weight_device", format!("{dev} {v}"), &field),
                ]));
            }
            if let Some(v) = d.leaf_weight() {
                let f = format!("{field}.leafWeight");
                out.push(Step::Write(w(
                    "blkio.leaf_weight_device",
                    format!("{dev} {v}"),
                    f,
                )));
            }
        }
        for (file, list, name) in super::v2::throttles(b) {
            for (i, t) in list.iter().enumerate() {
                let v = format!("{}:{} {}", t.major(), t.minor(), t.rate());
                let file = format!("blkio.throttle.{file}");
                out.push(Step::Write(w(file, v, format!("blockIO.{name}[{i}]"))));
            }
        }
        Ok(out)
    }

    fn hugetlb(&self, l: &[LinuxHugepageLimit]) -> Result<Vec<Step>> {
        let mut out = Vec::new();
        for (i, h) in l.iter().enumerate() {
            check_page_size(i, h.page_size())?;
            let v = h.limit().max(-1);
            let field = format!("hugepageLimits[{i}]");
            let base = format!("hugetlb.{}", h.page_size());
            out.push(Step::Write(w(format!("{base}.limit_in_bytes"), v, &field)));
            // Reservation accounting (5.7+) is preferred by the spec where the kernel has it.
            out.push(Step::Write(optional(w(
                format!("{base}.rsvd.limit_in_bytes"),
                v,
                &field,
            ))));
        }
        Ok(out)
    }

    fn net_cls(&self, n: &LinuxNetwork) -> Result<Vec<Step>> {
        Ok(n.class_id()
            .map(|id| Step::Write(w("net_cls.classid", id, "network.classID")))
            .into_iter()
            .collect())
    }

    fn net_prio(&self, n: &LinuxNetwork) -> Result<Vec<Step>> {
        let mut out = Vec::new();
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                bail!("linux.resources.network.priorities[{i}].name: not an interface name");
            }
            let v = format!("{} {}", p.name(), p.priority());
            out.push(Step::Write(w(
                "net_prio.ifpriomap",
                v,
                format!("network.priorities[{i}]"),
            )));
        }
        Ok(out)
    }

    fn devices(&self, rules: &[LinuxDeviceCgroup]) -> Result<Vec<Step>> {
        devices_v1::steps(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(steps: &[Step]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for s in steps {
            match s {
                Step::Write(x) => out.push((x.file.clone(), x.value.clone())),
                Step::Together(l) => l
                    .iter()
                    .for_each(|x| out.push((x.file.clone(), x.value.clone()))),
                Step::FirstOf(l) => out.push((l[0].file.clone(), l[0].value.clone())),
                other => panic!("{other:?}"),
            }
        }
        out
    }

    fn p(v: (&str, &str)) -> (String, String) {
        (v.0.to_string(), v.1.to_string())
    }

    #[test]
    fn memory_files() {
        let m: LinuxMemory = serde_json::from_str(
            r#"{"limit":1048576,"reservation":524288,"swap":2097152,"swappiness":10,
                "disableOOMKiller":true,"useHierarchy":true,"kernel":-1}"#,
        )
        .unwrap();
        let f = files(&V1.memory(&m).unwrap());
        for want in [
            ("memory.limit_in_bytes", "1048576"),
            ("memory.memsw.limit_in_bytes", "2097152"),
            ("memory.soft_limit_in_bytes", "524288"),
            ("memory.kmem.limit_in_bytes", "-1"),
            ("memory.swappiness", "10"),
            ("memory.oom_control", "1"),
            ("memory.use_hierarchy", "1"),
        ] {
            assert!(f.contains(&p(want)), "{want:?} in {f:?}");
        }
        let bad: LinuxMemory = serde_json::from_str(r#"{"swappiness":101}"#).unwrap();
        assert!(V1.memory(&bad).is_err());
        // Unlimited memory takes unlimited swap along, where swap accounting exists.
        let unl: LinuxMemory = serde_json::from_str(r#"{"limit":-1}"#).unwrap();
        match &V1.memory(&unl).unwrap()[0] {
            Step::Together(l) => assert!(l[1].optional && l[1].value == "-1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cpu_files() {
        let c: LinuxCpu = serde_json::from_str(
            r#"{"shares":512,"quota":50000,"period":100000,"burst":1000,
                "realtimeRuntime":950,"realtimePeriod":1000,"idle":1}"#,
        )
        .unwrap();
        let f = files(&V1.cpu(&c).unwrap());
        assert_eq!(
            f,
            [
                p(("cpu.shares", "512")),
                p(("cpu.cfs_period_us", "100000")),
                p(("cpu.cfs_burst_us", "1000")),
                p(("cpu.cfs_quota_us", "50000")),
                p(("cpu.rt_period_us", "1000")),
                p(("cpu.rt_runtime_us", "950")),
                p(("cpu.idle", "1")),
            ]
        );
        let bad: LinuxCpu = serde_json::from_str(r#"{"shares":1}"#).unwrap();
        assert!(V1.cpu(&bad).is_err());
    }

    #[test]
    fn blkio_hugetlb_network_files() {
        let b: LinuxBlockIo = serde_json::from_str(
            r#"{"weight":300,"weightDevice":[{"major":8,"minor":0,"weight":500}],
                "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1000}],
                "throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":30}]}"#,
        )
        .unwrap();
        let steps = V1.block_io(&b).unwrap();
        match &steps[0] {
            Step::FirstOf(l) => assert_eq!(
                (l[0].file.as_str(), l[1].file.as_str()),
                ("blkio.bfq.weight", "blkio.weight")
            ),
            other => panic!("{other:?}"),
        }
        let f = files(&steps);
        assert!(f.contains(&p(("blkio.bfq.weight_device", "8:0 500"))));
        assert!(f.contains(&p(("blkio.throttle.read_bps_device", "8:0 1000"))));
        assert!(f.contains(&p(("blkio.throttle.write_iops_device", "8:16 30"))));
        let h: Vec<LinuxHugepageLimit> =
            serde_json::from_str(r#"[{"pageSize":"2MB","limit":4194304}]"#).unwrap();
        let hs = V1.hugetlb(&h).unwrap();
        assert_eq!(files(&hs)[0], p(("hugetlb.2MB.limit_in_bytes", "4194304")));
        let bad: Vec<LinuxHugepageLimit> =
            serde_json::from_str(r#"[{"pageSize":"../2MB","limit":1}]"#).unwrap();
        assert!(V1.hugetlb(&bad).is_err());
        let n: LinuxNetwork = serde_json::from_str(
            r#"{"classID":1048577,"priorities":[{"name":"eth0","priority":5}]}"#,
        )
        .unwrap();
        assert_eq!(
            files(&V1.net_cls(&n).unwrap()),
            [p(("net_cls.classid", "1048577"))]
        );
        assert_eq!(
            files(&V1.net_prio(&n).unwrap()),
            [p(("net_prio.ifpriomap", "eth0 5"))]
        );
    }

    #[test]
    fn pids_follow_the_spec() {
        let l = |n: i64| -> String {
            let p: oci_spec::runtime::LinuxPids =
                serde_json::from_str(&format!(r#"{{"limit":{n}}}"#)).unwrap();
            files(&V1.pids(&p))[0].1.clone()
        };
        assert_eq!(l(10), "10");
        assert_eq!(l(-1), "max");
        assert_eq!(l(0), "0");
    }
}

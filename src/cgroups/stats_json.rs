//! The statistics JSON of `events`, in runc's shape (`types/events.go`): Go's `omitempty`
//! rules are kept, so zero numbers and empty lists vanish exactly where runc drops them, while
//! structs and maps stay. Pure data.

use serde::Serialize;
use std::collections::BTreeMap;

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Serialize, Default, Debug)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// runc fills this only for interfaces it created itself (never, for engines): null.
    pub network_interfaces: Option<Vec<()>>,
}

fn empty(s: &str) -> bool {
    s.is_empty()
}

/// runc's `types.IntelRdt`: every field `omitempty`, so a container without an RDT group
/// reports `{}`.
#[derive(Serialize, Default, Debug, PartialEq)]
pub struct IntelRdt {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l3_cache_info: Option<L3CacheInfo>,
    #[serde(skip_serializing_if = "empty")]
    pub l3_cache_schema_root: String,
    #[serde(skip_serializing_if = "empty")]
    pub l3_cache_schema: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_bw_info: Option<MemBwInfo>,
    #[serde(skip_serializing_if = "empty")]
    pub mem_bw_schema_root: String,
    #[serde(skip_serializing_if = "empty")]
    pub mem_bw_schema: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mbm_stats: Option<Vec<MbmNumaNode>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmt_stats: Option<Vec<CmtNumaNode>>,
}

#[derive(Serialize, Default, Debug, PartialEq)]
pub struct L3CacheInfo {
    #[serde(skip_serializing_if = "empty")]
    pub cbm_mask: String,
    #[serde(skip_serializing_if = "zero")]
    pub min_cbm_bits: u64,
    #[serde(skip_serializing_if = "zero")]
    pub num_closids: u64,
}

#[derive(Serialize, Default, Debug, PartialEq)]
pub struct MemBwInfo {
    #[serde(skip_serializing_if = "zero")]
    pub bandwidth_gran: u64,
    #[serde(skip_serializing_if = "zero")]
    pub delay_linear: u64,
    #[serde(skip_serializing_if = "zero")]
    pub min_bandwidth: u64,
    #[serde(skip_serializing_if = "zero")]
    pub num_closids: u64,
}

/// Memory bandwidth monitoring of one cache domain (no omitempty in runc).
#[derive(Serialize, Default, Debug, PartialEq)]
pub struct MbmNumaNode {
    pub mbm_total_bytes: u64,
    pub mbm_local_bytes: u64,
}

/// Cache occupancy monitoring of one cache domain.
#[derive(Serialize, Default, Debug, PartialEq)]
pub struct CmtNumaNode {
    pub llc_occupancy: u64,
}

#[derive(Serialize, Default, Debug, Clone, Copy, PartialEq)]
pub struct PsiData {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total: u64,
}

#[derive(Serialize, Default, Debug, Clone, Copy, PartialEq)]
pub struct Psi {
    pub some: PsiData,
    pub full: PsiData,
}

#[derive(Serialize, Default, Debug)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Serialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

#[derive(Serialize, Default, Debug)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Serialize, Default, Debug)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Serialize, Default, Debug)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Serialize, Default, Debug)]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Serialize, Default, Debug)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Serialize, Default, Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

#[derive(Serialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Serialize, Default, Debug)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_runcs() {
        let mut s = Stats::default();
        s.memory.usage.limit = 5;
        s.hugetlb.insert("2MB".into(), Hugetlb::default());
        let v = serde_json::to_value(&s).unwrap();
        // Go's omitempty: zero numbers and empty lists vanish, structs and maps stay.
        assert_eq!(
            v["cpu"]["usage"],
            serde_json::json!({"kernel": 0, "user": 0})
        );
        assert_eq!(v["cpu"]["throttling"], serde_json::json!({}));
        assert_eq!(
            v["memory"]["usage"],
            serde_json::json!({"limit": 5, "failcnt": 0})
        );
        assert_eq!(
            v["memory"]["kernelTCP"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
        assert_eq!(v["pids"], serde_json::json!({}));
        assert_eq!(v["hugetlb"]["2MB"], serde_json::json!({"failcnt": 0}));
        assert_eq!(v["intel_rdt"], serde_json::json!({}));
        assert!(v["network_interfaces"].is_null());
        assert!(v["cpuset"].get("cpus").is_none() && v["cpuset"]["cpu_exclusive"] == 0);
    }
}

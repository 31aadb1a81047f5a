//! `ruse update`: change a live container's resources with runc's flags, or `-r FILE|-`
//! (LinuxResources JSON, which overrides the flags). The request is merged into the saved
//! config; the groups it touches are applied from the merged values (so v2's swap, which
//! depends on the memory limit, comes out right). Device rules cannot be changed, as in runc;
//! on cgroup v2 the saved ones are re-attached (one program replaces the other), as runc does.

use super::Globals;
use crate::cgroups::resources::{self, Scope};
use crate::cli::UpdateArgs;
use crate::container::{Container, Lock};
use crate::errors::RuseError;
use crate::state::Status;
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};
use std::io::Read;

pub fn update(g: &Globals, a: &UpdateArgs) -> Result<()> {
    let mut delta = match &a.resources {
        Some(src) => read_resources(src)?,
        None => from_flags(a)?,
    };
    // An unlimited memory with no swap given means unlimited swap too (runc).
    if delta.pointer("/memory/limit") == Some(&json!(-1)) && delta.pointer("/memory/swap").is_none()
    {
        delta["memory"]["swap"] = json!(-1);
    }
    // runc reads pids.limit 0 in an update as "unchanged" (its flag's default).
    if delta.pointer("/pids/limit") == Some(&json!(0)) {
        delta.as_object_mut().map(|m| m.remove("pids"));
    }
    let (mut c, mut f) = Container::open_existing(&g.root, &a.id, Lock::Exclusive)?;
    let status = f.status(&c.dir);
    if status == Status::Stopped {
        return Err(RuseError::WrongStatus("update", status.as_str()).into());
    }
    if f.cgroup.dirs.is_empty() && f.cgroup.rdt.is_none() {
        bail!("container has no cgroup to update (a rootless container gets one only where a cgroup is delegated)");
    }
    let saved = f
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .map(serde_json::to_value)
        .transpose()?
        .unwrap_or_else(|| json!({}));
    if let Some(d) = delta.as_object_mut().and_then(|m| m.remove("devices")) {
        if Some(&d) != saved.get("devices") && !d.is_null() {
            crate::log::warn(
                "update: linux.resources.devices is not changed by update (as in runc)",
            );
        }
    }
    let mut merged = saved;
    merge(&mut merged, &delta);
    let mut merged_v = json!({"linux": {"resources": merged}});
    crate::cgroups::drop_pids_without_limit(&mut merged_v);
    let merged = merged_v["linux"]["resources"].take();
    let mut touched: Map<String, Value> = delta
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| merged.get(k).map(|v| (k.clone(), v.clone())))
        .collect();
    // The saved rules, which the plan re-attaches on v2 (as runc's Set does).
    if let Some(d) = merged.get("devices").filter(|d| !d.is_null()) {
        touched.insert("devices".into(), d.clone());
    }
    let apply: LinuxResources = parse(Value::Object(touched))?;
    resources::apply(&resources::plan(&f.cgroup, &apply, Scope::Update)?)?;
    let l3 = a.l3_cache_schema.as_deref().filter(|s| !s.is_empty());
    let mb = a.mem_bw_schema.as_deref().filter(|s| !s.is_empty());
    crate::intelrdt::update(f.cgroup.rdt.as_ref(), l3, mb)?;
    let mut cfg = serde_json::to_value(&f.config)?;
    if !cfg["linux"].is_object() {
        cfg["linux"] = json!({});
    }
    cfg["linux"]["resources"] = merged;
    save_rdt(&mut cfg, l3, mb);
    f.config = serde_json::from_value(cfg).context("merge the update into the saved config")?;
    c.save(f)
}

/// The schemata `update` wrote, into the saved config's `linux.intelRdt` (as runc saves
/// them), so `state`, later updates and a restore see the group as it now is.
fn save_rdt(cfg: &mut Value, l3: Option<&str>, mb: Option<&str>) {
    for (key, v) in [("l3CacheSchema", l3), ("memBwSchema", mb)] {
        if let Some(v) = v {
            if !cfg["linux"]["intelRdt"].is_object() {
                cfg["linux"]["intelRdt"] = json!({});
            }
            cfg["linux"]["intelRdt"][key] = json!(v);
        }
    }
}

fn parse(v: Value) -> Result<LinuxResources> {
    serde_path_to_error::deserialize(v)
        .map_err(|e| anyhow!("resources: {}: {}", e.path(), e.inner()))
}

/// `-r FILE` or `-r -` (standard input): a LinuxResources object.
fn read_resources(src: &str) -> Result<Value> {
    let mut text = String::new();
    if src == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("--resources -: read standard input")?;
    } else {
        text = std::fs::read_to_string(src).with_context(|| format!("--resources {src}"))?;
    }
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("--resources {src}: parse"))?;
    if !v.is_object() {
        bail!("--resources {src}: must be a JSON object (LinuxResources)");
    }
    parse(v.clone()).with_context(|| format!("--resources {src}"))?;
    Ok(v)
}

/// Objects merge key by key; anything else is replaced.
fn merge(base: &mut Value, delta: &Value) {
    match (base, delta) {
        (Value::Object(b), Value::Object(d)) => {
            for (k, v) in d {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, d) => *b = d.clone(),
    }
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    v.trim()
        .parse()
        .map_err(|e| anyhow!("invalid value for --{flag} {v:?}: {e}"))
}

/// runc's flag set, as a LinuxResources delta (unset and zero values change nothing).
fn from_flags(a: &UpdateArgs) -> Result<Value> {
    let mut d = json!({});
    let mut sets = cpu_flags(a)?;
    sets.extend(memory_flags(a)?);
    if let Some(v) = &a.blkio_weight {
        let w: u16 = num("blkio-weight", v)?;
        if w != 0 {
            sets.push(("blockIO", "weight", json!(w)));
        }
    }
    if let Some(v) = &a.pids_limit {
        let n: i64 = num("pids-limit", v)?;
        if n != 0 {
            sets.push(("pids", "limit", json!(n)));
        }
    }
    for (group, key, v) in sets {
        if !d[group].is_object() {
            d[group] = json!({});
        }
        d[group][key] = v;
    }
    Ok(d)
}

type Sets = Vec<(&'static str, &'static str, Value)>;

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|v| !v.is_empty())
}

fn cpu_flags(a: &UpdateArgs) -> Result<Sets> {
    let mut out: Sets = Vec::new();
    for (v, key) in [(&a.cpuset_cpus, "cpus"), (&a.cpuset_mems, "mems")] {
        if let Some(v) = given(v) {
            out.push(("cpu", key, json!(v)));
        }
    }
    if let Some(v) = given(&a.cpu_idle) {
        out.push(("cpu", "idle", json!(num::<i64>("cpu-idle", v)?)));
    }
    for (flag, v, key) in [
        ("cpu-burst", &a.cpu_burst, "burst"),
        ("cpu-period", &a.cpu_period, "period"),
        ("cpu-rt-period", &a.cpu_rt_period, "realtimePeriod"),
        ("cpu-share", &a.cpu_share, "shares"),
    ] {
        if let Some(v) = given(v) {
            out.push(("cpu", key, json!(num::<u64>(flag, v)?)));
        }
    }
    for (flag, v, key) in [
        ("cpu-quota", &a.cpu_quota, "quota"),
        ("cpu-rt-runtime", &a.cpu_rt_runtime, "realtimeRuntime"),
    ] {
        if let Some(v) = given(v) {
            out.push(("cpu", key, json!(num::<i64>(flag, v)?)));
        }
    }
    Ok(out)
}

fn memory_flags(a: &UpdateArgs) -> Result<Sets> {
    let mut out: Sets = Vec::new();
    for (flag, v, key) in [
        ("memory", &a.memory, "limit"),
        ("memory-swap", &a.memory_swap, "swap"),
        ("memory-reservation", &a.memory_reservation, "reservation"),
    ] {
        if let Some(v) = given(v) {
            let bytes = if v.trim() == "-1" {
                -1
            } else {
                ram_in_bytes(v).with_context(|| format!("invalid value for --{flag}"))?
            };
            out.push(("memory", key, json!(bytes)));
        }
    }
    for (flag, v) in [
        ("kernel-memory", &a.kernel_memory),
        ("kernel-memory-tcp", &a.kernel_memory_tcp),
    ] {
        if given(v).is_some() {
            crate::log::warn(&format!(
                "setting --{flag} is ignored (kernel memory limits are obsolete, as in runc)"
            ));
        }
    }
    Ok(out)
}

/// docker/go-units `RAMInBytes`: `512`, `64k`, `1.5g`, `100MiB`, `2 GB` — powers of 1024.
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let t = s.trim();
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (n, mut unit) = t.split_at(num_len);
    let n: f64 = n.parse().map_err(|_| anyhow!("invalid size: {s:?}"))?;
    unit = unit.strip_prefix(' ').unwrap_or(unit);
    let lower = unit.to_ascii_lowercase();
    let mut u = lower.as_str();
    let mult: f64 = match u.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            u = &u[1..];
            let exp = "kmgtp".find(c).unwrap_or(0) as i32 + 1;
            1024f64.powi(exp)
        }
        _ => 1.0,
    };
    u = u.strip_prefix('i').unwrap_or(u);
    u = u.strip_prefix('b').unwrap_or(u);
    if !u.is_empty() {
        bail!("invalid size: {s:?}");
    }
    Ok((n * mult) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(ram_in_bytes("512").unwrap(), 512);
        assert_eq!(ram_in_bytes("64k").unwrap(), 65536);
        assert_eq!(ram_in_bytes("100MiB").unwrap(), 100 << 20);
        assert_eq!(ram_in_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(ram_in_bytes("2 GB").unwrap(), 2 << 30);
        for bad in ["", "x", "10q", "-5", "1kk"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_become_a_delta() {
        let a = UpdateArgs {
            memory: Some("1m".into()),
            cpu_quota: Some("-1".into()),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some("0".into()),
            blkio_weight: Some("300".into()),
            ..Default::default()
        };
        let d = from_flags(&a).unwrap();
        assert_eq!(
            d,
            json!({"memory": {"limit": 1048576}, "cpu": {"quota": -1, "cpus": "0"},
                   "blockIO": {"weight": 300}})
        );
        let bad = UpdateArgs {
            cpu_share: Some("x".into()),
            ..Default::default()
        };
        assert!(from_flags(&bad)
            .unwrap_err()
            .to_string()
            .contains("--cpu-share"));
    }

    #[test]
    fn rdt_schemata_are_saved() {
        let mut cfg = json!({"linux": {"intelRdt": {"closID": "gold", "l3CacheSchema": "L3:0=f"}}});
        save_rdt(&mut cfg, None, Some("MB:0=50"));
        assert_eq!(
            cfg["linux"]["intelRdt"],
            json!({"closID": "gold", "l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=50"})
        );
        save_rdt(&mut cfg, Some("L3:0=3"), None);
        assert_eq!(cfg["linux"]["intelRdt"]["l3CacheSchema"], "L3:0=3");
        let mut none = json!({"linux": {}});
        save_rdt(&mut none, None, None);
        assert_eq!(none, json!({"linux": {}}));
        // The merged value still parses as the spec's type.
        let r: oci_spec::runtime::LinuxIntelRdt =
            serde_json::from_value(cfg["linux"]["intelRdt"].clone()).unwrap();
        assert_eq!(r.mem_bw_schema().as_deref(), Some("MB:0=50"));
    }

    #[test]
    fn merge_is_deep() {
        let mut b = json!({"memory": {"limit": 1, "swap": 2}, "pids": {"limit": 5}});
        merge(
            &mut b,
            &json!({"memory": {"limit": 3}, "cpu": {"shares": 2}}),
        );
        assert_eq!(
            b,
            json!({"memory": {"limit": 3, "swap": 2}, "pids": {"limit": 5}, "cpu": {"shares": 2}})
        );
    }
}

//! Port publishing and masquerade with nftables, in the runtime's own network namespace.
//!
//! Why the `nft` JSON interface rather than nftables' netlink API: a rule on the netlink side
//! is a batch of nf_tables expressions (payload loads, comparisons, registers, NAT
//! expressions) that the rust-netlink crates do not model, so speaking it would mean writing
//! and maintaining an nftables bytecode assembler. `nft -j` takes the same rules as
//! structured JSON, validates them, and applies each batch atomically; it is only used when a
//! container asks for ports or masquerade, never on the default create path.
//!
//! Layout: one table `ip ruse` with NAT base chains `prerouting` and `output` (DNAT of
//! published ports, for traffic arriving from elsewhere and from this namespace itself) and
//! `postrouting` (masquerade). Every rule carries the comment `tag(root, id)`, which is how
//! `remove` finds a container's rules again, also after a crash.

use super::config::{Bridge, Cidr, Port};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

const TABLE: &str = "ruse";

/// The rule comment for one container: its id and a hash of its state dir.
pub fn tag(state_dir_hash: &str, id: &str) -> String {
    format!("ruse {id} {state_dir_hash}")
}

fn nft(input: Option<&Value>, args: &[&str]) -> Result<Vec<u8>> {
    let mut cmd = Command::new("nft");
    cmd.arg("-j").args(args);
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("annotations ruse.network.ports/masquerade need the nft command (Debian package nftables)")
        }
        Err(e) => return Err(e).context("run nft"),
    };
    if let (Some(v), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(v.to_string().as_bytes())
            .context("write to nft")?;
    }
    let out = child.wait_with_output().context("wait for nft")?;
    if !out.status.success() {
        bail!(
            "nft {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn prefix(c: Cidr) -> Value {
    json!({"prefix": {"addr": c.network().to_string(), "len": c.prefix}})
}

/// The batch that publishes `b.ports` to `ip` and masquerades the subnet (pure).
pub fn publish_batch(b: &Bridge, ip: Ipv4Addr, comment: &str) -> Value {
    let mut cmds = vec![json!({"add": {"table": {"family": "ip", "name": TABLE}}})];
    for (chain, hook, prio) in [
        ("prerouting", "prerouting", -100),
        ("output", "output", -100),
        ("postrouting", "postrouting", 100),
    ] {
        cmds.push(json!({"add": {"chain": {
            "family": "ip", "table": TABLE, "name": chain,
            "type": "nat", "hook": hook, "prio": prio, "policy": "accept"
        }}}));
    }
    for p in &b.ports {
        for chain in ["prerouting", "output"] {
            cmds.push(json!({"add": {"rule": {
                "family": "ip", "table": TABLE, "chain": chain, "comment": comment,
                "expr": [
                    {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}},
                    {"match": {"op": "==", "left": {"payload": {"protocol": p.proto.as_str(), "field": "dport"}}, "right": p.host}},
                    {"dnat": {"addr": ip.to_string(), "port": p.container}}
                ]
            }}}));
        }
    }
    if b.masquerade {
        cmds.push(json!({"add": {"rule": {
            "family": "ip", "table": TABLE, "chain": "postrouting", "comment": comment,
            "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": prefix(b.subnet)}},
                {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": prefix(b.subnet)}},
                {"masquerade": null}
            ]
        }}}));
    }
    json!({"nftables": cmds})
}

pub fn publish(b: &Bridge, ip: Ipv4Addr, comment: &str) -> Result<()> {
    nft(Some(&publish_batch(b, ip, comment)), &["-f", "-"]).context("publish ports")?;
    // Published ports and masquerade route packets between interfaces of this namespace.
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").context("enable net.ipv4.ip_forward")
}

/// The host ports (protocol, port) the DNAT rules of a `nft -j list table` answer publish,
/// with the comment naming their container (pure).
pub fn published(listing: &Value) -> Vec<(String, u64, String)> {
    let Some(items) = listing["nftables"].as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| i.get("rule"))
        .filter(|r| r["chain"] == "prerouting")
        .filter_map(|r| {
            let expr = r["expr"].as_array()?;
            expr.iter().find_map(|e| {
                let m = e.get("match")?;
                let payload = m["left"].get("payload")?;
                if payload["field"] != "dport" {
                    return None;
                }
                Some((
                    payload["protocol"].as_str()?.to_string(),
                    m["right"].as_u64()?,
                    r["comment"].as_str().unwrap_or_default().to_string(),
                ))
            })
        })
        .collect()
}

/// Refuses ports another container has published already: a second DNAT rule for the same
/// host port would never be reached (the first one matches). A missing table or `nft` means
/// nothing is published.
pub fn check_ports_free(ports: &[Port]) -> Result<()> {
    let taken = match nft(None, &["list", "table", "ip", TABLE]) {
        Ok(out) => published(&serde_json::from_slice(&out).context("parse nft's listing")?),
        Err(_) => return Ok(()),
    };
    for p in ports {
        let proto = p.proto.as_str();
        if let Some((_, _, comment)) = taken
            .iter()
            .find(|(pr, port, _)| pr == proto && *port == u64::from(p.host))
        {
            let by = comment.split(' ').nth(1).unwrap_or("another container");
            bail!(
                "annotations ruse.network.ports {}:{}/{proto}: host port {}/{proto} is already published by container {by}",
                p.host,
                p.container,
                p.host
            );
        }
    }
    Ok(())
}

/// The batch deleting every rule tagged `comment` from a `nft -j list table` answer, and the
/// table itself once nothing else is in it (pure).
pub fn removal_batch(listing: &Value, comment: &str) -> Option<Value> {
    let items = listing["nftables"].as_array()?;
    let rules: Vec<&Value> = items.iter().filter_map(|i| i.get("rule")).collect();
    let ours: Vec<&&Value> = rules.iter().filter(|r| r["comment"] == comment).collect();
    if ours.is_empty() {
        return None;
    }
    let cmds: Vec<Value> = if ours.len() == rules.len() {
        vec![json!({"delete": {"table": {"family": "ip", "name": TABLE}}})]
    } else {
        ours.iter()
            .map(|r| {
                json!({"delete": {"rule": {
                    "family": "ip", "table": TABLE, "chain": r["chain"], "handle": r["handle"]
                }}})
            })
            .collect()
    };
    Some(json!({"nftables": cmds}))
}

/// Removes a container's rules; a missing table or a missing `nft` means nothing to remove.
pub fn remove(comment: &str) -> Result<()> {
    let listing = match nft(None, &["list", "table", "ip", TABLE]) {
        Ok(out) => serde_json::from_slice::<Value>(&out).context("parse nft's listing")?,
        Err(_) => return Ok(()),
    };
    match removal_batch(&listing, comment) {
        Some(batch) => nft(Some(&batch), &["-f", "-"])
            .map(drop)
            .context("remove published ports"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn bridge() -> Bridge {
        let a: HashMap<String, String> = [
            ("ruse.network.mode", "bridge"),
            ("ruse.network.ports", "8080:80,53:53/udp"),
            ("ruse.network.masquerade", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        super::super::config::parse(&a).unwrap().unwrap()
    }

    #[test]
    fn batch_has_chains_dnat_per_port_and_masquerade() {
        let v = publish_batch(&bridge(), Ipv4Addr::new(10, 89, 0, 2), "ruse c1 x");
        let cmds = v["nftables"].as_array().unwrap();
        // table + 3 chains + 2 ports × 2 chains + masquerade
        assert_eq!(cmds.len(), 1 + 3 + 4 + 1);
        let dnat = &cmds[4]["add"]["rule"];
        assert_eq!(dnat["chain"], "prerouting");
        assert_eq!(dnat["expr"][1]["match"]["right"], 8080);
        assert_eq!(dnat["expr"][2]["dnat"]["addr"], "10.89.0.2");
        assert_eq!(dnat["expr"][2]["dnat"]["port"], 80);
        assert_eq!(
            cmds[6]["add"]["rule"]["expr"][1]["match"]["left"]["payload"]["protocol"],
            "udp"
        );
        let masq = &cmds[8]["add"]["rule"];
        assert_eq!(
            masq["expr"][0]["match"]["right"]["prefix"]["addr"],
            "10.89.0.0"
        );
        assert!(masq["expr"][2].get("masquerade").is_some());
    }

    #[test]
    fn published_ports_are_read_back_from_a_listing() {
        let batch = publish_batch(&bridge(), Ipv4Addr::new(10, 89, 0, 2), "ruse c1 x");
        // A listing has the same rule objects (plus handles) as the batch that added them.
        let rules: Vec<Value> = batch["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["add"].get("rule").cloned())
            .map(|r| json!({ "rule": r }))
            .collect();
        let got = published(&json!({ "nftables": rules }));
        assert_eq!(
            got,
            [
                ("tcp".to_string(), 8080, "ruse c1 x".to_string()),
                ("udp".to_string(), 53, "ruse c1 x".to_string())
            ]
        );
        assert!(published(&json!({})).is_empty());
    }

    #[test]
    fn removal_deletes_only_our_rules_then_the_table() {
        let listing = json!({"nftables": [
            {"metainfo": {}},
            {"table": {"family": "ip", "name": "ruse"}},
            {"rule": {"chain": "prerouting", "handle": 4, "comment": "ruse a h"}},
            {"rule": {"chain": "output", "handle": 5, "comment": "ruse a h"}},
            {"rule": {"chain": "prerouting", "handle": 6, "comment": "ruse b h"}},
        ]});
        let b = removal_batch(&listing, "ruse a h").unwrap();
        let cmds = b["nftables"].as_array().unwrap();
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[1]["delete"]["rule"]["handle"], 5);
        assert!(removal_batch(&listing, "ruse zz h").is_none());
        let last = removal_batch(&listing, "ruse b h");
        assert_eq!(last.unwrap()["nftables"][0]["delete"]["rule"]["handle"], 6);
        let only = json!({"nftables": [{"rule": {"chain": "output", "handle": 9, "comment": "ruse b h"}}]});
        assert!(
            removal_batch(&only, "ruse b h").unwrap()["nftables"][0]["delete"]
                .get("table")
                .is_some()
        );
    }
}

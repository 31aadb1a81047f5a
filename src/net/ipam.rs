//! Address leases of bridge networks, kept on disk beside the containers they belong to:
//! `<state root>/@net/<bridge>.json`, replaced atomically and guarded by an exclusive `flock`
//! on `<state root>/@net/lock`, so concurrent creates never hand out one address twice. (`@`
//! is not allowed in container ids, so the directory can never collide with a container.)
//! A lease whose container no longer has a state dir is stale and reused.

use super::config::{Bridge, Cidr};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

pub const DIR: &str = "@net";

#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Network {
    pub subnet: Option<Cidr>,
    /// ruse created the bridge, so it removes it once the last container has gone.
    #[serde(default)]
    pub made_bridge: bool,
    /// Address → container id.
    #[serde(default)]
    pub leases: BTreeMap<Ipv4Addr, String>,
}

/// The network state under the lock; dropping it releases the lock.
pub struct Locked {
    root: PathBuf,
    dir: PathBuf,
    _lock: File,
}

pub fn lock(root: &Path) -> Result<Locked> {
    let dir = root.join(DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join("lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    crate::sys::fs::flock(f.as_fd(), true).with_context(|| format!("lock {}", path.display()))?;
    Ok(Locked {
        root: root.to_path_buf(),
        dir,
        _lock: f,
    })
}

impl Locked {
    fn file(&self, bridge: &str) -> PathBuf {
        self.dir.join(format!("{bridge}.json"))
    }

    pub fn load(&self, bridge: &str) -> Result<Network> {
        let p = self.file(bridge);
        let mut n: Network = match std::fs::read(&p) {
            Ok(b) => {
                serde_json::from_slice(&b).with_context(|| format!("parse {}", p.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Network::default(),
            Err(e) => return Err(e).with_context(|| format!("read {}", p.display())),
        };
        n.leases
            .retain(|_, id| self.root.join(id.as_str()).is_dir());
        Ok(n)
    }

    pub fn save(&self, bridge: &str, n: &Network) -> Result<()> {
        let p = self.file(bridge);
        if n.leases.is_empty() && !n.made_bridge {
            return match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).with_context(|| format!("remove {}", p.display()))
                }
                _ => Ok(()),
            };
        }
        let tmp = p.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(n)?)
            .with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &p).with_context(|| format!("rename {}", tmp.display()))
    }
}

/// Leases an address to `id` in `n`: the static one when given (it must be free), else the
/// lowest free host address that is not the gateway. Pure.
pub fn allocate(n: &mut Network, b: &Bridge, id: &str) -> Result<Cidr> {
    match n.subnet {
        Some(s) if s != b.subnet => bail!(
            "annotations ruse.network.subnet {}: bridge {} already serves {s}",
            b.subnet,
            b.bridge
        ),
        _ => n.subnet = Some(b.subnet),
    }
    let addr = match b.address {
        Some(c) => {
            if let Some(other) = n.leases.get(&c.addr).filter(|o| *o != id) {
                bail!("annotations ruse.network.address {c}: in use by container {other:?}");
            }
            c.addr
        }
        None => b
            .subnet
            .hosts()
            .find(|h| *h != b.gateway && !n.leases.contains_key(h))
            .with_context(|| format!("no free address left in {}", b.subnet))?,
    };
    n.leases.insert(addr, id.to_string());
    Ok(Cidr {
        addr,
        prefix: b.subnet.prefix,
    })
}

/// Forgets every lease of `id`; true when one was held.
pub fn release(n: &mut Network, id: &str) -> bool {
    let before = n.leases.len();
    n.leases.retain(|_, owner| owner != id);
    n.leases.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn bridge(extra: &[(&str, &str)]) -> Bridge {
        let mut a: HashMap<String, String> = HashMap::new();
        a.insert("ruse.network.mode".into(), "bridge".into());
        a.insert("ruse.network.subnet".into(), "10.9.0.0/29".into());
        for (k, v) in extra {
            a.insert(format!("ruse.network.{k}"), v.to_string());
        }
        super::super::config::parse(&a).unwrap().unwrap()
    }

    #[test]
    fn lowest_free_address_skipping_the_gateway() {
        let b = bridge(&[]);
        let mut n = Network::default();
        let got: Vec<String> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|id| allocate(&mut n, &b, id).unwrap().to_string())
            .collect();
        assert_eq!(
            got,
            [
                "10.9.0.2/29",
                "10.9.0.3/29",
                "10.9.0.4/29",
                "10.9.0.5/29",
                "10.9.0.6/29"
            ]
        );
        assert!(allocate(&mut n, &b, "f")
            .unwrap_err()
            .to_string()
            .contains("no free address"));
        assert!(release(&mut n, "c"));
        assert!(!release(&mut n, "c"));
        assert_eq!(
            allocate(&mut n, &b, "g").unwrap().to_string(),
            "10.9.0.4/29"
        );
    }

    #[test]
    fn static_addresses_and_subnet_conflicts() {
        let b = bridge(&[("address", "10.9.0.5/29")]);
        let mut n = Network::default();
        assert_eq!(
            allocate(&mut n, &b, "a").unwrap().to_string(),
            "10.9.0.5/29"
        );
        let e = allocate(&mut n, &b, "b").unwrap_err().to_string();
        assert!(e.contains("in use by container \"a\""), "{e}");
        let other = bridge(&[("subnet", "10.10.0.0/24")]);
        let e = allocate(&mut n, &other, "c").unwrap_err().to_string();
        assert!(e.contains("already serves 10.9.0.0/29"), "{e}");
    }
}

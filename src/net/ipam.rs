//! Address leases of bridge networks, and whether ruse made each bridge, kept host-wide: a
//! bridge lives in one network namespace, and every state root on the host (and every
//! `--root` an engine passes) shares it. `<net dir>/<netns>/<bridge>.json`, where the net
//! dir is `/run/ruse-net` (`$XDG_RUNTIME_DIR/ruse-net` where the state root would be under it
//! too; rootless containers refuse bridge mode, see rootless.rs) and `<netns>` names the
//! runtime's network namespace by its cookie, which the kernel never reuses while it runs
//! (an nsfs inode number is reused, and a stale file would then speak for a new namespace).
//! Files are replaced atomically under one exclusive `flock` on `<net dir>/lock`, held from
//! the first look at a bridge to the last change to it, so concurrent creates never hand out
//! one address twice nor race on making or removing a bridge. A lease names its container's
//! state dir; one whose state dir is gone is stale and reused.

use super::config::{Bridge, Cidr};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Network {
    pub subnet: Option<Cidr>,
    /// ruse created the bridge, so it removes it once the last container has gone.
    #[serde(default)]
    pub made_bridge: bool,
    /// Address → the state dir of the container holding it.
    #[serde(default)]
    pub leases: BTreeMap<Ipv4Addr, String>,
}

/// The network state under the lock; dropping it releases the lock.
pub struct Locked {
    /// `<net dir>/<netns>`.
    dir: PathBuf,
    _lock: File,
}

/// Takes the host-wide lock, for the network namespace the caller is in.
pub fn lock() -> Result<Locked> {
    lock_in(&netns_name()?)
}

/// Takes the host-wide lock, for the network namespace `netns_name` named.
pub fn lock_in(netns: &str) -> Result<Locked> {
    let base = crate::container::runtime_dir("ruse-net");
    std::fs::create_dir_all(&base).with_context(|| format!("create {}", base.display()))?;
    let path = base.join("lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    crate::sys::fs::flock(f.as_fd(), true).with_context(|| format!("lock {}", path.display()))?;
    Ok(Locked {
        dir: base.join(netns),
        _lock: f,
    })
}

/// The runtime's network namespace as a directory name: its cookie, or (kernels before 5.14)
/// its nsfs inode number.
pub fn netns_name() -> Result<String> {
    match crate::sys::socket::netns_cookie() {
        Ok(c) => Ok(format!("cookie-{c}")),
        Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata("/proc/self/ns/net").context("stat /proc/self/ns/net")?;
            Ok(format!("inode-{}", m.ino()))
        }
        Err(e) => Err(e).context("read the network namespace cookie"),
    }
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
        n.leases.retain(|_, dir| Path::new(dir).is_dir());
        Ok(n)
    }

    /// Writes `n`, or removes its file (and the namespace's directory once it is empty) when
    /// nothing is left to remember.
    pub fn save(&self, bridge: &str, n: &Network) -> Result<()> {
        let p = self.file(bridge);
        if n.leases.is_empty() && !n.made_bridge {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("remove {}", p.display()))
                }
                _ => {}
            }
            // Only fails while other bridges of this namespace still have files.
            let _ = std::fs::remove_dir(&self.dir);
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("create {}", self.dir.display()))?;
        let tmp = p.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(n)?)
            .with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &p).with_context(|| format!("rename {}", tmp.display()))
    }
}

/// Leases an address to `owner` (a state dir) in `n`: the static one when given (it must be
/// free), else the lowest free host address that is not the gateway. `on_bridge` are the
/// addresses already assigned on the bridge itself, which are never handed out. Pure.
pub fn allocate(n: &mut Network, b: &Bridge, owner: &str, on_bridge: &[Ipv4Addr]) -> Result<Cidr> {
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
            if let Some(other) = n.leases.get(&c.addr).filter(|o| *o != owner) {
                bail!("annotations ruse.network.address {c}: in use by the container of {other}");
            }
            if on_bridge.contains(&c.addr) {
                bail!(
                    "annotations ruse.network.address {c}: assigned on bridge {}",
                    b.bridge
                );
            }
            c.addr
        }
        None => b
            .subnet
            .hosts()
            .find(|h| *h != b.gateway && !n.leases.contains_key(h) && !on_bridge.contains(h))
            .with_context(|| format!("no free address left in {}", b.subnet))?,
    };
    n.leases.insert(addr, owner.to_string());
    Ok(Cidr {
        addr,
        prefix: b.subnet.prefix,
    })
}

/// Forgets every lease of `owner`; true when one was held.
pub fn release(n: &mut Network, owner: &str) -> bool {
    let before = n.leases.len();
    n.leases.retain(|_, o| o != owner);
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
            .map(|id| allocate(&mut n, &b, id, &[]).unwrap().to_string())
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
        assert!(allocate(&mut n, &b, "f", &[])
            .unwrap_err()
            .to_string()
            .contains("no free address"));
        assert!(release(&mut n, "c"));
        assert!(!release(&mut n, "c"));
        assert_eq!(
            allocate(&mut n, &b, "g", &[]).unwrap().to_string(),
            "10.9.0.4/29"
        );
    }

    #[test]
    fn static_addresses_and_subnet_conflicts() {
        let b = bridge(&[("address", "10.9.0.5/29")]);
        let mut n = Network::default();
        assert_eq!(
            allocate(&mut n, &b, "a", &[]).unwrap().to_string(),
            "10.9.0.5/29"
        );
        let e = allocate(&mut n, &b, "b", &[]).unwrap_err().to_string();
        assert!(e.contains("in use by the container of a"), "{e}");
        let other = bridge(&[("subnet", "10.10.0.0/24")]);
        let e = allocate(&mut n, &other, "c", &[]).unwrap_err().to_string();
        assert!(e.contains("already serves 10.9.0.0/29"), "{e}");
    }

    #[test]
    fn addresses_on_the_bridge_are_never_handed_out() {
        let b = bridge(&[]);
        let mut n = Network::default();
        let on = [Ipv4Addr::new(10, 9, 0, 2), Ipv4Addr::new(10, 9, 0, 3)];
        assert_eq!(
            allocate(&mut n, &b, "a", &on).unwrap().to_string(),
            "10.9.0.4/29"
        );
        let fixed = bridge(&[("address", "10.9.0.3/29")]);
        let e = allocate(&mut n, &fixed, "b", &on).unwrap_err().to_string();
        assert!(e.contains("assigned on bridge ruse0"), "{e}");
    }
}

//! The container's network beyond loopback, built by `ruse create` (host side, in the
//! runtime's own network namespace) once init reports that it is in all of its namespaces
//! (before that its network namespace may not exist yet: init makes it itself after a user
//! namespace, see namespaces.rs) and before it mounts anything, so the user's program always
//! starts with its interfaces up:
//!
//! - bridge mode (annotations, see `config.rs`): a veth pair whose container end is born in
//!   the container's namespace, the host end on a bridge (created with the gateway address if
//!   missing), an address leased host-wide for the runtime's network namespace (`ipam.rs`), a
//!   default route, and optional published ports / masquerade (`nft.rs`);
//! - `linux.netDevices` (runtime-spec 1.3): host devices moved in (`devices.rs`).
//!
//! `teardown` undoes the bridge-mode part idempotently from the plan alone (host veth, lease,
//! nft rules, a bridge ruse made that is now empty), so `delete --force` also cleans up after
//! a crashed create. Moved devices are not moved back: the spec leaves that to the kernel.

pub mod config;
mod devices;
mod ipam;
mod nft;
mod rtnl;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// File in the state dir holding the plan before anything is built (for `delete`).
pub const RECORD: &str = "network.json";

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub bridge: Option<config::Bridge>,
    /// `linux.netDevices`: (host name, name inside).
    pub devices: Vec<(String, String)>,
    /// The runtime's network namespace when the bridge side was built (ipam.rs names it),
    /// which holds the lease; filled in by `record`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.bridge.is_none() && self.devices.is_empty()
    }
}

/// The container's network namespace, as `linux.namespaces` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetNs {
    /// None listed: the runtime's own.
    Inherited,
    New,
    Joined(PathBuf),
}

pub fn netns_of(spec: &Spec) -> NetNs {
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    match list.iter().find(|n| n.typ() == LinuxNamespaceType::Network) {
        None => NetNs::Inherited,
        Some(n) => match n.path() {
            None => NetNs::New,
            Some(p) => NetNs::Joined(p.clone()),
        },
    }
}

/// Reads and checks the network settings of a config (bundle validation calls this). Pure.
/// Bridge mode builds a veth pair and routes, which only a new network namespace may get;
/// `linux.netDevices` may also go into a namespace joined by path (runc 1.3 moves them there
/// too), though never into the runtime's own (`check_joined`).
pub fn plan(spec: &Spec, netns: &NetNs) -> Result<Plan> {
    let ann = spec.annotations().clone().unwrap_or_default();
    let bridge = config::parse(&ann)?;
    let devices = devices::plan(spec)?;
    let p = Plan {
        bridge,
        devices,
        netns: None,
    };
    if p.bridge.is_some() && *netns != NetNs::New {
        let joined = match netns {
            NetNs::Joined(path) => format!(" (the one at {} is joined)", path.display()),
            _ => String::new(),
        };
        bail!("annotations ruse.network.mode=bridge: needs a new network namespace in linux.namespaces{joined}");
    }
    if !p.devices.is_empty() && *netns == NetNs::Inherited {
        bail!("linux.netDevices: needs a network namespace of the container's own in linux.namespaces (new or joined by path)");
    }
    Ok(p)
}

/// Refuses `linux.netDevices` into a network namespace joined by path that is the runtime's
/// own: the devices would only be renamed where they are (runc's isHostNetNS).
pub fn check_joined(spec: &Spec, p: &Plan) -> Result<()> {
    let NetNs::Joined(path) = netns_of(spec) else {
        return Ok(());
    };
    if p.devices.is_empty() {
        return Ok(());
    }
    let field = || format!("linux.namespaces network path {}", path.display());
    let theirs = std::fs::metadata(&path).with_context(field)?;
    let own = std::fs::metadata("/proc/self/ns/net").context("stat /proc/self/ns/net")?;
    if same_file(&theirs, &own) {
        bail!(
            "linux.netDevices: the network namespace at {} is the runtime's own; the devices need one of the container's own",
            path.display()
        );
    }
    Ok(())
}

fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Where one container's network lives: its state root (leases) and id.
pub struct Owner<'a> {
    pub root: &'a Path,
    pub id: &'a str,
}

impl Owner<'_> {
    /// The container's state dir, absolute: how its lease is known host-wide.
    fn key(&self) -> String {
        let dir = self.root.join(self.id);
        std::path::absolute(&dir)
            .unwrap_or(dir)
            .to_string_lossy()
            .into_owned()
    }

    /// A short stable hash of the state dir, so two state roots never share names or rules.
    fn hash(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.root.join(self.id).as_os_str().as_encoded_bytes() {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{:010x}", h & 0xff_ffff_ffff)
    }

    /// The host end of the veth pair: `rv` + 10 hex digits (15 is the kernel's limit).
    pub fn host_veth(&self) -> String {
        format!("rv{}", self.hash())
    }

    fn nft_tag(&self) -> String {
        nft::tag(&self.hash(), self.id)
    }
}

/// Builds the network of the container whose init is `pid`.
pub fn setup(plan: &Plan, owner: &Owner, pid: i32) -> Result<()> {
    if plan.is_empty() {
        return Ok(());
    }
    let ns = File::open(format!("/proc/{pid}/ns/net"))
        .context("open the container's network namespace")?;
    // Init reports before this runs that it is in its own network namespace; should it not
    // be, nothing is built in the runtime's.
    let own = std::fs::metadata("/proc/self/ns/net").context("stat /proc/self/ns/net")?;
    if same_file(
        &ns.metadata()
            .context("stat the container's network namespace")?,
        &own,
    ) {
        bail!("the container's network namespace is the runtime's own: refusing to build its network there");
    }
    let mut host = rtnl::Rtnl::new()?;
    if !plan.devices.is_empty() {
        let mut inside = in_netns(ns.as_fd(), rtnl::Rtnl::new)?;
        devices::move_in(&plan.devices, &mut host, &mut inside, ns.as_fd())?;
    }
    if let Some(b) = &plan.bridge {
        bridge_setup(b, owner, &mut host, ns.as_fd())?;
    }
    Ok(())
}

fn bridge_setup(
    b: &config::Bridge,
    owner: &Owner,
    host: &mut rtnl::Rtnl,
    ns: BorrowedFd,
) -> Result<()> {
    let lock = ipam::lock()?;
    if !b.ports.is_empty() {
        // Under the lock, so two creates cannot both find a port free.
        nft::check_ports_free(&b.ports)?;
    }
    let mut net = lock.load(&b.bridge)?;
    let (br, on_bridge) = match host.link_index(&b.bridge)? {
        Some(i) => (i, bridge_addresses(host, i)?),
        None => {
            host.create_bridge(&b.bridge)?;
            net.made_bridge = true;
            lock.save(&b.bridge, &net)?;
            let i = rtnl::need(host.link_index(&b.bridge)?, &b.bridge)?;
            host.add_cidr(
                i,
                config::Cidr {
                    addr: b.gateway,
                    prefix: b.subnet.prefix,
                },
            )?;
            (i, Vec::new())
        }
    };
    host.set_up(br)?;
    let addr = ipam::allocate(&mut net, b, &owner.key(), &on_bridge)?;
    lock.save(&b.bridge, &net)?;
    let veth = rtnl::Veth {
        host: owner.host_veth(),
        peer: b.interface.clone(),
        mtu: b.mtu,
        peer_mac: b.mac,
    };
    host.create_veth(&veth, ns)?;
    let hv = rtnl::need(host.link_index(&veth.host)?, &veth.host)?;
    host.set_master(hv, br)?;
    host.set_up(hv)?;
    let mut inside = in_netns(ns, rtnl::Rtnl::new)?;
    let cv = rtnl::need(inside.link_index(&b.interface)?, &b.interface)?;
    inside.add_cidr(cv, addr)?;
    inside.set_up(cv)?;
    inside.add_default_route(b.gateway)?;
    if !b.ports.is_empty() || b.masquerade {
        nft::publish(b, addr.addr, &owner.nft_tag())?;
    }
    Ok(())
}

/// The IPv4 addresses assigned on an existing bridge (never leased to a container).
fn bridge_addresses(host: &mut rtnl::Rtnl, br: u32) -> Result<Vec<std::net::Ipv4Addr>> {
    Ok(host
        .addresses(br)?
        .into_iter()
        .filter_map(|a| match a.addr {
            std::net::IpAddr::V4(v4) => Some(v4),
            _ => None,
        })
        .collect())
}

/// Undoes `setup`'s bridge part; safe to call for a network that was never (fully) built.
pub fn teardown(plan: &Plan, owner: &Owner) -> Result<()> {
    let Some(b) = &plan.bridge else {
        return Ok(());
    };
    let here = ipam::netns_name()?;
    let there = plan.netns.clone().unwrap_or_else(|| here.clone());
    let lock = ipam::lock_in(&there)?;
    if there != here {
        // The veth went with the container's namespace; the bridge and rules are out of
        // reach (and a bridge of that name here is not the one ruse made there).
        let mut net = lock.load(&b.bridge)?;
        ipam::release(&mut net, &owner.key());
        lock.save(&b.bridge, &net)?;
        bail!("delete runs in another network namespace than create did: only the lease of {} was released; its bridge {} and nft rules are left there", owner.id, b.bridge);
    }
    let mut host = rtnl::Rtnl::new()?;
    if let Some(i) = host.link_index(&owner.host_veth())? {
        match host.delete_link(i) {
            Err(e) if e.raw_os_error() != Some(libc::ENODEV) => {
                return Err(e).with_context(|| format!("delete veth {}", owner.host_veth()))
            }
            _ => {}
        }
    }
    if !b.ports.is_empty() || b.masquerade {
        nft::remove(&owner.nft_tag())?;
    }
    let mut net = lock.load(&b.bridge)?;
    ipam::release(&mut net, &owner.key());
    if net.made_bridge && net.leases.is_empty() {
        if let Some(br) = host.link_index(&b.bridge)? {
            if host.ports_of(br)?.is_empty() {
                let _ = host.delete_link(br);
                net.made_bridge = false;
            }
        }
    }
    lock.save(&b.bridge, &net)
}

/// Runs `f` (which makes a netlink socket) inside the network namespace `ns`, then returns
/// to our own. The runtime is single-threaded, so the whole process switches briefly.
fn in_netns<T>(ns: BorrowedFd, f: impl FnOnce() -> Result<T>) -> Result<T> {
    use crate::sys::process::setns;
    let own = File::open("/proc/self/ns/net").context("open /proc/self/ns/net")?;
    setns(ns, libc::CLONE_NEWNET).context("enter the container's network namespace")?;
    let res = f();
    setns(own.as_fd(), libc::CLONE_NEWNET).context("return to the runtime's network namespace")?;
    res
}

/// Saves the plan in the state dir before anything is built, when there is one, with the
/// runtime's network namespace (where its lease will be).
pub fn record(plan: &mut Plan, state_dir: &Path) -> Result<()> {
    if plan.bridge.is_none() {
        return Ok(());
    }
    plan.netns = Some(ipam::netns_name()?);
    std::fs::write(state_dir.join(RECORD), serde_json::to_vec(plan)?).context("record network plan")
}

/// The recorded plan of a container whose create did not finish.
pub fn recorded(state_dir: &Path) -> Option<Plan> {
    serde_json::from_slice(&std::fs::read(state_dir.join(RECORD)).ok()?).ok()
}

/// The state root holding `state_dir`.
pub fn root_of(state_dir: &Path) -> PathBuf {
    state_dir.parent().unwrap_or(Path::new("/")).to_path_buf()
}

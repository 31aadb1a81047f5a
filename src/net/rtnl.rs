//! A small synchronous rtnetlink client on the rust-netlink crates (`netlink-packet-route`
//! messages over a `netlink-sys` socket): links, addresses and routes, one request at a time,
//! each acknowledged. A socket acts in the network namespace it was created in, so the caller
//! makes one per namespace (see `net::in_netns`). No async runtime, no shelling out to `ip`.

use super::config::Cidr;
use anyhow::{bail, Context, Result};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

/// One address of a link, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAddress {
    pub addr: IpAddr,
    pub prefix: u8,
    pub permanent: bool,
    pub global: bool,
}

impl Rtnl {
    /// A socket in the caller's current network namespace.
    pub fn new() -> Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE).context("open a netlink socket")?;
        sock.bind_auto().context("bind the netlink socket")?;
        sock.connect(&SocketAddr::new(0, 0))
            .context("connect the netlink socket")?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Sends one request and collects the replies until the ACK (or the end of a dump).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        // Every other request asks for the ACK that ends its replies (a plain get would
        // otherwise leave us waiting after the one answer).
        header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = m.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                    NetlinkPayload::Error(_) if !dump => return Ok(out),
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    _ => {}
                }
            }
        }
    }

    fn ack(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.request(msg, flags).map(drop)
    }

    /// The index of the link called `name`, or None.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("look up link {name}")),
        }
    }

    /// Indexes of the links enslaved to `master` (a bridge's ports).
    pub fn ports_of(&mut self, master: u32) -> Result<Vec<u32>> {
        let replies = self
            .request(
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
                NLM_F_DUMP,
            )
            .context("list links")?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(l)
                    if l.attributes.contains(&LinkAttribute::Controller(master)) =>
                {
                    Some(l.header.index)
                }
                _ => None,
            })
            .collect())
    }

    pub fn create_bridge(&mut self, name: &str) -> Result<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .with_context(|| format!("create bridge {name}"))
    }

    /// Creates a veth pair whose peer is born in the network namespace `peer_ns` under its
    /// final name, so it never exists on the host under a name another container could want.
    pub fn create_veth(&mut self, v: &Veth, peer_ns: BorrowedFd) -> Result<()> {
        let mut peer = LinkMessage::default();
        peer.attributes.push(LinkAttribute::IfName(v.peer.clone()));
        peer.attributes
            .push(LinkAttribute::NetNsFd(peer_ns.as_raw_fd()));
        if let Some(mtu) = v.mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = v.peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(v.host.clone()));
        if let Some(mtu) = v.mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .with_context(|| format!("create veth pair {} / {}", v.host, v.peer))
    }

    fn set_link(&mut self, index: u32, attrs: Vec<LinkAttribute>, up: bool) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if up {
            m.header.flags = LinkFlags::Up;
            m.header.change_mask = LinkFlags::Up;
        }
        m.attributes = attrs;
        self.ack(RouteNetlinkMessage::SetLink(m), 0)
    }

    pub fn set_up(&mut self, index: u32) -> Result<()> {
        self.set_link(index, Vec::new(), true)
            .with_context(|| format!("set link #{index} up"))
    }

    pub fn set_master(&mut self, index: u32, master: u32) -> Result<()> {
        self.set_link(index, vec![LinkAttribute::Controller(master)], false)
            .with_context(|| format!("attach link #{index} to bridge #{master}"))
    }

    /// Moves a link into the namespace `ns`, renamed to `name` there.
    pub fn move_to_netns(&mut self, index: u32, ns: BorrowedFd, name: &str) -> io::Result<()> {
        let attrs = vec![
            LinkAttribute::NetNsFd(ns.as_raw_fd()),
            LinkAttribute::IfName(name.to_string()),
        ];
        self.set_link(index, attrs, false)
    }

    /// Renames a link (down; a `%d` template lets the kernel pick the number).
    pub fn rename(&mut self, index: u32, name: &str) -> io::Result<()> {
        self.set_link(index, vec![LinkAttribute::IfName(name.to_string())], false)
    }

    pub fn delete_link(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.ack(RouteNetlinkMessage::DelLink(m), 0)
    }

    /// Adds an address; an address already present is fine.
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = match addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.header.scope = AddressScope::Universe;
        m.attributes.push(AddressAttribute::Local(addr));
        m.attributes.push(AddressAttribute::Address(addr));
        match self.ack(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r.with_context(|| format!("add address {addr}/{prefix} to link #{index}")),
        }
    }

    pub fn add_cidr(&mut self, index: u32, c: Cidr) -> Result<()> {
        self.add_address(index, IpAddr::V4(c.addr), c.prefix)
    }

    /// The addresses of one link.
    pub fn addresses(&mut self, index: u32) -> Result<Vec<LinkAddress>> {
        let replies = self
            .request(
                RouteNetlinkMessage::GetAddress(AddressMessage::default()),
                NLM_F_DUMP,
            )
            .context("list addresses")?;
        let mut out = Vec::new();
        for r in replies {
            let RouteNetlinkMessage::NewAddress(a) = r else {
                continue;
            };
            if a.header.index != index {
                continue;
            }
            let mut permanent = a.header.flags.bits() & libc::IFA_F_PERMANENT as u8 != 0;
            let mut addr = None;
            for attr in &a.attributes {
                match attr {
                    AddressAttribute::Flags(f) => permanent = f.contains(AddressFlags::Permanent),
                    AddressAttribute::Local(ip) => addr = Some(*ip),
                    AddressAttribute::Address(ip) if addr.is_none() => addr = Some(*ip),
                    _ => {}
                }
            }
            if let Some(addr) = addr {
                out.push(LinkAddress {
                    addr,
                    prefix: a.header.prefix_len,
                    permanent,
                    global: a.header.scope == AddressScope::Universe,
                });
            }
        }
        Ok(out)
    }

    /// `default via gw` in the main table.
    pub fn add_default_route(&mut self, gw: Ipv4Addr) -> Result<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
        self.ack(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
            .with_context(|| format!("add default route via {gw}"))
    }
}

/// A veth pair to create: `host` stays, `peer` is born in the container's namespace.
pub struct Veth {
    pub host: String,
    pub peer: String,
    pub mtu: Option<u32>,
    pub peer_mac: Option<[u8; 6]>,
}

/// Fails unless `index` names an existing link (for clearer messages than a bare ENODEV).
pub fn need(index: Option<u32>, what: &str) -> Result<u32> {
    match index {
        Some(i) => Ok(i),
        None => bail!("{what}: no such network device"),
    }
}

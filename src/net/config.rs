//! The network plan, read from `config.json` annotations (the spec's extension point) and
//! validated before anything is touched. Pure: parsing, defaults and the IPv4 arithmetic the
//! address allocator needs. Runs in `ruse create` (host side).
//!
//! | annotation                 | meaning                                  | default            |
//! |----------------------------|------------------------------------------|--------------------|
//! | `ruse.network.mode`        | `none` (loopback only) or `bridge`       | `none`             |
//! | `ruse.network.bridge`      | host bridge, created when missing        | `ruse0`            |
//! | `ruse.network.subnet`      | IPv4 subnet the bridge serves            | `10.89.0.0/24`     |
//! | `ruse.network.gateway`     | bridge address and default route         | first host address |
//! | `ruse.network.address`     | static CIDR; else allocated (leases)     | allocated          |
//! | `ruse.network.interface`   | name inside the container                | `eth0`             |
//! | `ruse.network.mtu`         | MTU of both veth ends                    | kernel default     |
//! | `ruse.network.mac`         | MAC inside the container                 | random (kernel)    |
//! | `ruse.network.ports`       | `host:container[/tcp\|udp]`, comma list  | none               |
//! | `ruse.network.masquerade`  | `true`: NAT traffic leaving the subnet   | `false`            |

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

pub const PREFIX: &str = "ruse.network.";
const KEYS: &[&str] = &[
    "mode",
    "bridge",
    "subnet",
    "gateway",
    "address",
    "interface",
    "mtu",
    "mac",
    "ports",
    "masquerade",
];

/// An IPv4 address with its prefix length (`10.89.0.5/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let (a, p) = s.split_once('/').context("expected ADDRESS/PREFIX")?;
        let addr: Ipv4Addr = a
            .parse()
            .with_context(|| format!("bad IPv4 address {a:?}"))?;
        let prefix: u8 = p
            .parse()
            .with_context(|| format!("bad prefix length {p:?}"))?;
        if prefix > 32 {
            bail!("prefix length {prefix} is over 32");
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// Usable host addresses, in order (network and broadcast excluded below /31).
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let net = u32::from(self.network());
        let size = 1u64 << (32 - self.prefix as u32);
        let (first, last) = if size <= 2 {
            (net as u64, net as u64 + size - 1)
        } else {
            (net as u64 + 1, net as u64 + size - 2)
        };
        (first..=last).map(|i| Ipv4Addr::from(i as u32))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Port {
    pub host: u16,
    pub container: u16,
    pub proto: Proto,
}

/// What `mode: bridge` builds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bridge {
    pub bridge: String,
    pub subnet: Cidr,
    pub gateway: Ipv4Addr,
    /// A static address, or None to allocate one from `subnet`.
    pub address: Option<Cidr>,
    pub interface: String,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub ports: Vec<Port>,
    pub masquerade: bool,
}

/// Reads the plan; `Ok(None)` for mode `none` (nothing beyond loopback).
pub fn parse(annotations: &HashMap<String, String>) -> Result<Option<Bridge>> {
    for k in annotations.keys() {
        if let Some(rest) = k.strip_prefix(PREFIX) {
            if !KEYS.contains(&rest) {
                bail!(
                    "annotations {k:?}: unknown ruse network setting (known: {})",
                    KEYS.join(", ")
                );
            }
        }
    }
    let get = |k: &str| annotations.get(&format!("{PREFIX}{k}")).map(String::as_str);
    let field = |k: &str| format!("annotations {PREFIX}{k}");
    match get("mode").unwrap_or("none") {
        "none" => {
            if let Some(k) = KEYS[1..].iter().find(|k| get(k).is_some()) {
                bail!("{}: only meaningful with {PREFIX}mode=bridge", field(k));
            }
            return Ok(None);
        }
        "bridge" => {}
        other => bail!("{} {other:?}: must be none or bridge", field("mode")),
    }
    let bridge = get("bridge").unwrap_or("ruse0").to_string();
    check_ifname(&bridge).with_context(|| field("bridge"))?;
    let interface = get("interface").unwrap_or("eth0").to_string();
    check_ifname(&interface).with_context(|| field("interface"))?;
    let subnet: Cidr = get("subnet")
        .unwrap_or("10.89.0.0/24")
        .parse()
        .with_context(|| field("subnet"))?;
    if subnet.prefix > 30 {
        bail!(
            "{} {subnet}: needs room for a gateway and a container (/30 at most)",
            field("subnet")
        );
    }
    let subnet = Cidr {
        addr: subnet.network(),
        ..subnet
    };
    let gateway = match get("gateway") {
        Some(g) => g.parse().with_context(|| field("gateway"))?,
        None => subnet
            .hosts()
            .next()
            .context("subnet has no host addresses")?,
    };
    if !subnet.contains(gateway) {
        bail!("{} {gateway}: outside {subnet}", field("gateway"));
    }
    let address = match get("address") {
        None => None,
        Some(a) => {
            let c: Cidr = a.parse().with_context(|| field("address"))?;
            if !subnet.contains(c.addr) || c.prefix != subnet.prefix {
                bail!("{} {c}: must be an address of {subnet}", field("address"));
            }
            if c.addr == gateway || !subnet.hosts().any(|h| h == c.addr) {
                bail!(
                    "{} {c}: not a free host address of {subnet}",
                    field("address")
                );
            }
            Some(c)
        }
    };
    let mtu = match get("mtu") {
        None => None,
        Some(m) => {
            let v: u32 = m
                .parse()
                .with_context(|| format!("{} {m:?}", field("mtu")))?;
            if !(68..=65535).contains(&v) {
                bail!("{} {v}: must be within [68, 65535]", field("mtu"));
            }
            Some(v)
        }
    };
    let mac = get("mac")
        .map(|m| parse_mac(m).with_context(|| format!("{} {m:?}", field("mac"))))
        .transpose()?;
    let ports = match get("ports") {
        None => Vec::new(),
        Some(p) => parse_ports(p).with_context(|| field("ports"))?,
    };
    let masquerade = match get("masquerade") {
        None | Some("false") => false,
        Some("true") => true,
        Some(o) => bail!("{} {o:?}: must be true or false", field("masquerade")),
    };
    Ok(Some(Bridge {
        bridge,
        subnet,
        gateway,
        address,
        interface,
        mtu,
        mac,
        ports,
        masquerade,
    }))
}

/// Interface names: 1–15 bytes, no `/`, whitespace or `:` (the kernel's dev_valid_name).
pub fn check_ifname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0);
    if !ok {
        bail!("interface name {name:?}: 1-15 characters without '/', ':' or spaces");
    }
    Ok(())
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        bail!("expected six hex bytes separated by ':'");
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            bail!("expected two hex digits, got {p:?}");
        }
        mac[i] = u8::from_str_radix(p, 16).with_context(|| format!("bad hex byte {p:?}"))?;
    }
    if mac[0] & 1 != 0 {
        bail!("a multicast address cannot be an interface's address");
    }
    Ok(mac)
}

fn parse_ports(s: &str) -> Result<Vec<Port>> {
    let mut out: Vec<Port> = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (ports, proto) = match item.split_once('/') {
            Some((p, "tcp")) => (p, Proto::Tcp),
            Some((p, "udp")) => (p, Proto::Udp),
            Some((_, o)) => bail!("{item:?}: protocol {o:?} must be tcp or udp"),
            None => (item, Proto::Tcp),
        };
        let (h, c) = ports
            .split_once(':')
            .with_context(|| format!("{item:?}: expected HOSTPORT:CONTAINERPORT[/PROTO]"))?;
        let port = |x: &str| -> Result<u16> {
            match x.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => bail!("{item:?}: {x:?} is not a port number (1-65535)"),
            }
        };
        let p = Port {
            host: port(h)?,
            container: port(c)?,
            proto,
        };
        if out.iter().any(|o| o.host == p.host && o.proto == p.proto) {
            bail!(
                "{item:?}: host port {} {} published twice",
                p.host,
                proto.as_str()
            );
        }
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string()))
            .collect()
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        format!("{:#}", parse(&ann(pairs)).unwrap_err())
    }

    #[test]
    fn none_is_the_default_and_refuses_bridge_settings() {
        assert_eq!(parse(&HashMap::new()).unwrap(), None);
        assert_eq!(parse(&ann(&[("mode", "none")])).unwrap(), None);
        assert!(err(&[("subnet", "10.0.0.0/24")]).contains("only meaningful"));
        assert!(err(&[("mode", "host")]).contains("none or bridge"));
        assert!(err(&[("mode", "bridge"), ("colour", "x")]).contains("unknown ruse network"));
    }

    #[test]
    fn bridge_defaults() {
        let b = parse(&ann(&[("mode", "bridge")])).unwrap().unwrap();
        assert_eq!(b.bridge, "ruse0");
        assert_eq!(b.subnet.to_string(), "10.89.0.0/24");
        assert_eq!(b.gateway, Ipv4Addr::new(10, 89, 0, 1));
        assert_eq!(b.interface, "eth0");
        assert_eq!(b.address, None);
        assert!(!b.masquerade && b.ports.is_empty());
    }

    #[test]
    fn full_settings() {
        let b = parse(&ann(&[
            ("mode", "bridge"),
            ("bridge", "br-test"),
            ("subnet", "192.168.50.7/28"),
            ("gateway", "192.168.50.14"),
            ("address", "192.168.50.3/28"),
            ("interface", "net0"),
            ("mtu", "1400"),
            ("mac", "02:00:00:aa:bb:cc"),
            ("ports", "8080:80, 5353:53/udp"),
            ("masquerade", "true"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(b.subnet.to_string(), "192.168.50.0/28");
        assert_eq!(b.address.unwrap().to_string(), "192.168.50.3/28");
        assert_eq!(b.mac, Some([2, 0, 0, 0xaa, 0xbb, 0xcc]));
        assert_eq!(b.ports.len(), 2);
        assert_eq!(b.ports[1].proto, Proto::Udp);
        assert!(b.masquerade);
    }

    #[test]
    fn errors_name_the_annotation() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("subnet", "10.0.0.0")], "ruse.network.subnet"),
            (&[("subnet", "10.0.0.0/31")], "/30 at most"),
            (&[("gateway", "10.1.0.1")], "outside"),
            (&[("address", "10.89.0.1/24")], "not a free host"),
            (&[("address", "10.89.0.255/24")], "not a free host"),
            (&[("address", "10.89.1.5/24")], "must be an address"),
            (&[("interface", "a/b")], "ruse.network.interface"),
            (&[("bridge", "waytoolongbridgename")], "1-15"),
            (&[("mtu", "20")], "[68, 65535]"),
            (&[("mac", "01:00:00:00:00:01")], "multicast"),
            (&[("mac", "zz:00:00:00:00:01")], "hex"),
            (&[("ports", "80")], "HOSTPORT:CONTAINERPORT"),
            (&[("ports", "0:80")], "not a port"),
            (&[("ports", "80:80/sctp")], "tcp or udp"),
            (&[("ports", "80:80,80:81")], "twice"),
            (&[("masquerade", "yes")], "true or false"),
        ];
        for (pairs, want) in cases {
            let mut all = vec![("mode", "bridge")];
            all.extend_from_slice(pairs);
            let e = err(&all);
            assert!(e.contains(want), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn cidr_arithmetic() {
        let c: Cidr = "10.0.0.9/30".parse().unwrap();
        assert_eq!(c.network(), Ipv4Addr::new(10, 0, 0, 8));
        let hosts: Vec<_> = c.hosts().collect();
        assert_eq!(
            hosts,
            [Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::new(10, 0, 0, 10)]
        );
        assert!(c.contains(Ipv4Addr::new(10, 0, 0, 11)));
        assert!(!c.contains(Ipv4Addr::new(10, 0, 0, 12)));
        assert!("1.2.3.4/33".parse::<Cidr>().is_err());
    }
}

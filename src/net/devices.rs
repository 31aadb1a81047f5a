//! `linux.netDevices` (config-linux.md "Network Devices"): host devices moved into the
//! container's network namespace, renamed, with their permanent global addresses kept, and
//! set up. Runs in `ruse create` on the host side, with one netlink socket on each side.
//! Moving a device flushes its addresses, so they are read first and added back inside.

use super::rtnl::Rtnl;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::Spec;
use std::os::fd::BorrowedFd;

/// (host name, name inside) pairs, checked; sorted for a stable order.
pub fn plan(spec: &Spec) -> Result<Vec<(String, String)>> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.net_devices().as_ref()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (host, dev) in map {
        let field = format!("linux.netDevices {host:?}");
        super::config::check_ifname(host).with_context(|| field.clone())?;
        let inside = dev.name().clone().unwrap_or_else(|| host.clone());
        super::config::check_ifname(&inside).with_context(|| format!("{field}.name"))?;
        if inside.matches("%d").count() > 1 || (inside.contains('%') && !inside.contains("%d")) {
            bail!("{field}.name {inside:?}: only one %d template is allowed");
        }
        out.push((host.clone(), inside));
    }
    out.sort();
    for w in out.windows(2) {
        if w[0].1 == w[1].1 && !w[0].1.contains("%d") {
            bail!(
                "linux.netDevices: two devices would be named {:?} inside",
                w[0].1
            );
        }
    }
    Ok(out)
}

pub fn move_in(
    devices: &[(String, String)],
    host: &mut Rtnl,
    inside: &mut Rtnl,
    ns: BorrowedFd,
) -> Result<()> {
    for (name, new) in devices {
        let field = format!("linux.netDevices {name:?}");
        let Some(index) = host.link_index(name)? else {
            bail!("{field}: no such network device on the host");
        };
        // The spec: a name already taken inside is an error unless it is a %d template.
        if !new.contains("%d") && inside.link_index(new)?.is_some() {
            bail!("{field}: a device named {new:?} already exists in the container");
        }
        let keep: Vec<_> = host
            .addresses(index)?
            .into_iter()
            .filter(|a| a.permanent && a.global)
            .collect();
        let moved = if new.contains("%d") {
            move_templated(host, inside, ns, index, new)
        } else {
            // Renamed in the same request.
            host.move_to_netns(index, ns, new)
                .map_err(anyhow::Error::from)
                .and_then(|()| super::rtnl::need(inside.link_index(new)?, new))
        }
        .with_context(|| format!("{field}: move into the container as {new:?}"))?;
        for a in &keep {
            inside
                .add_address(moved, a.addr, a.prefix)
                .with_context(|| field.clone())?;
        }
        inside.set_up(moved).with_context(|| field.clone())?;
    }
    Ok(())
}

/// Moves a device whose new name is a `%d` template and returns its index inside. The
/// kernel picks the number, and the index the device had is only kept when it is free inside
/// (a namespace joined by path may hold it), so neither says which device is ours: it goes in
/// under a name of our own, found by that name, and is renamed to the template there (a
/// rename keeps the index; the device is down after a move, as a rename needs).
fn move_templated(
    host: &mut Rtnl,
    inside: &mut Rtnl,
    ns: BorrowedFd,
    index: u32,
    template: &str,
) -> Result<u32> {
    let temp = temp_name(index);
    if inside.link_index(&temp)?.is_some() {
        bail!("the container already has a device named {temp:?}, which ruse moves devices in as");
    }
    host.move_to_netns(index, ns, &temp)?;
    let moved = super::rtnl::need(inside.link_index(&temp)?, &temp)?;
    inside
        .rename(moved, template)
        .with_context(|| format!("rename {temp} to {template:?}"))?;
    Ok(moved)
}

/// The name a device moves in under before its template is applied (pure).
fn temp_name(host_index: u32) -> String {
    format!("rusemv{host_index:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(devs: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.3.0","linux":{{"netDevices":{devs}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn names_default_to_the_host_name_and_are_checked() {
        let p = plan(&spec(r#"{"veth1":{},"eth9":{"name":"net%d"}}"#)).unwrap();
        assert_eq!(
            p,
            [
                ("eth9".into(), "net%d".into()),
                ("veth1".into(), "veth1".into())
            ]
        );
        assert!(plan(&spec(r#"{"a/b":{}}"#)).is_err());
        assert!(plan(&spec(r#"{"x":{"name":"waytoolonginterface"}}"#)).is_err());
        assert!(plan(&spec(r#"{"x":{"name":"n%s"}}"#)).is_err());
        let e = plan(&spec(r#"{"x":{"name":"c0"},"y":{"name":"c0"}}"#)).unwrap_err();
        assert!(e.to_string().contains("two devices"), "{e}");
    }

    #[test]
    fn temporary_names_fit_the_kernel_limit() {
        assert_eq!(temp_name(26), "rusemv1a");
        assert!(temp_name(u32::MAX).len() <= 15);
        assert!(super::super::config::check_ifname(&temp_name(u32::MAX)).is_ok());
    }
}

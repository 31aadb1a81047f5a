//! Networking built by ruse (annotations `ruse.network.*`) and `linux.netDevices`, tested in
//! network namespaces the test makes itself: ruse runs under `ip netns exec <host ns>`, so the
//! bridge, veths and nft rules live there, and the only traffic is between those test hosts.

mod common;

use common::{stderr, stdout, unique_id, Env, RUSE};
use serde_json::Value;
use std::process::{Command, Output};

/// A network namespace made for one test, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("rn{}-{tag}", std::process::id());
        let _ = sh(&format!("ip netns del {name}"));
        must(&format!("ip netns add {name}"));
        must(&format!("ip -n {name} link set lo up"));
        Netns(name)
    }

    /// Runs a shell command inside the namespace.
    fn sh(&self, cmd: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.0, "sh", "-c", cmd])
            .output()
            .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&format!("ip netns del {}", self.0));
    }
}

fn sh(cmd: &str) -> Output {
    Command::new("sh").args(["-c", cmd]).output().unwrap()
}

fn must(cmd: &str) -> String {
    let o = sh(cmd);
    assert!(o.status.success(), "{cmd}: {}", stderr(&o));
    stdout(&o)
}

/// ruse with the env's root, run inside `ns`.
fn ruse_in(env: &Env, ns: &Netns, args: &[&str]) -> Output {
    env.ruse_via(&["ip", "netns", "exec", &ns.0], args)
}

fn bridge_env(args: &[&str], bridge: &str, extra: &[(&str, &str)]) -> Env {
    let env = Env::new(args);
    env.edit(|c| {
        let mut ann = serde_json::Map::new();
        ann.insert("ruse.network.mode".into(), "bridge".into());
        ann.insert("ruse.network.bridge".into(), bridge.into());
        ann.insert("ruse.network.subnet".into(), "10.231.0.0/24".into());
        for (k, v) in extra {
            ann.insert(format!("ruse.network.{k}"), Value::from(*v));
        }
        c["annotations"] = Value::Object(ann);
        // busybox ping opens a raw socket.
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push("CAP_NET_RAW".into());
        }
    });
    env
}

fn create(env: &Env, ns: &Netns, id: &str) {
    let b = env.bundle();
    let o = ruse_in(env, ns, &["create", "--bundle", b.to_str().unwrap(), id]);
    assert!(o.status.success(), "create {id}: {}", stderr(&o));
}

fn pid_of(env: &Env, ns: &Netns, id: &str) -> i64 {
    let o = ruse_in(env, ns, &["state", id]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["pid"].as_i64().unwrap()
}

/// `ip -4 -o addr show dev` of the container's interface, seen from the host with nsenter.
fn addr_inside(pid: i64, dev: &str) -> String {
    must(&format!("nsenter -t {pid} -n ip -4 -o addr show dev {dev}"))
}

fn links(ns: &Netns) -> String {
    stdout(&ns.sh("ip -d -o link show"))
}

/// The host-wide lease files of `bridge` that hold a lease of a container of `env` (bridge
/// names are unique per test; files that failed runs of it left in other namespaces' dirs
/// name other state roots).
fn lease_files(bridge: &str, env: &Env) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir("/run/ruse-net") else {
        return Vec::new();
    };
    let root = env.root.to_string_lossy().into_owned();
    rd.flatten()
        .map(|e| e.path().join(format!("{bridge}.json")))
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(&root)))
        .collect()
}

#[test]
fn two_containers_ping_each_other_and_the_gateway_then_leave_nothing() {
    if !common::root_or_skip() {
        return;
    }
    let ns = Netns::new("ping");
    let a = bridge_env(
        &["sleep", "60"],
        "rbr0",
        &[
            ("address", "10.231.0.10/24"),
            ("mtu", "1400"),
            ("mac", "02:42:0a:e7:00:0a"),
        ],
    );
    let ida = unique_id("a");
    create(&a, &ns, &ida);
    assert!(ruse_in(&a, &ns, &["start", &ida]).status.success());
    let script = "ip -4 -o addr show eth0; ip -o link show eth0; ip route; ping -c1 -W3 10.231.0.10 && echo PEER-OK; ping -c1 -W3 10.231.0.1 && echo GW-OK";
    let b = bridge_env(&["sh", "-c", script], "rbr0", &[("mtu", "1280")]);
    let idb = unique_id("b");
    let run = ruse_in(
        &b,
        &ns,
        &["run", "--bundle", b.bundle().to_str().unwrap(), &idb],
    );
    let text = stdout(&run);
    assert!(run.status.success(), "{text}\n{}", stderr(&run));
    assert!(
        text.contains("inet 10.231.0.2/24"),
        "allocated address: {text}"
    );
    assert!(
        text.contains("default via 10.231.0.1"),
        "default route: {text}"
    );
    assert!(text.contains("PEER-OK") && text.contains("GW-OK"), "{text}");
    assert!(text.contains("mtu 1280"), "B's MTU: {text}");
    // From the host side: A's address, MTU and MAC inside, its host veth on the bridge with
    // the same MTU, the bridge's gateway.
    let pa = pid_of(&a, &ns, &ida);
    assert!(addr_inside(pa, "eth0").contains("10.231.0.10/24"));
    let inside = must(&format!("nsenter -t {pa} -n ip -o link show eth0"));
    assert!(inside.contains("mtu 1400"), "A's MTU: {inside}");
    assert!(
        inside.contains("link/ether 02:42:0a:e7:00:0a"),
        "A's MAC: {inside}"
    );
    let l = links(&ns);
    assert!(l.contains("master rbr0") && l.contains("veth"), "{l}");
    let host_end = stdout(&ns.sh("ip -o link show master rbr0"));
    assert!(
        host_end.lines().count() == 1 && host_end.contains("mtu 1400"),
        "A's host veth: {host_end}"
    );
    let gw = stdout(&ns.sh("ip -4 -o addr show rbr0"));
    assert!(gw.contains("10.231.0.1/24"), "{gw}");
    assert!(ruse_in(&a, &ns, &["delete", "--force", &ida])
        .status
        .success());
    a.assert_clean(&ida);
    let l = links(&ns);
    assert!(!l.contains(" rv"), "a host veth is left: {l}");
    assert!(!l.contains("rbr0"), "the bridge ruse made is left: {l}");
    assert!(lease_files("rbr0", &a).is_empty(), "lease file left");
}

#[test]
fn published_port_answers_a_client_in_another_namespace() {
    if !common::root_or_skip() {
        return;
    }
    let host = Netns::new("pub");
    let client = Netns::new("cli");
    must(&format!(
        "ip link add rnc{p} netns {h} type veth peer name rnc{p}p netns {c}",
        p = std::process::id() % 100000,
        h = host.0,
        c = client.0
    ));
    let p = std::process::id() % 100000;
    assert!(host
        .sh(&format!(
            "ip addr add 192.168.231.1/24 dev rnc{p} && ip link set rnc{p} up"
        ))
        .status
        .success());
    assert!(client
        .sh(&format!(
            "ip addr add 192.168.231.2/24 dev rnc{p}p && ip link set rnc{p}p up"
        ))
        .status
        .success());
    let env = bridge_env(
        &["httpd", "-f", "-p", "80", "-h", "/www"],
        "rbr1",
        &[("ports", "8080:80/tcp"), ("masquerade", "true")],
    );
    std::fs::create_dir_all(env.rootfs().join("www")).unwrap();
    std::fs::write(env.rootfs().join("www/index.html"), "hello-from-ruse\n").unwrap();
    let id = unique_id("web");
    create(&env, &host, &id);
    assert!(ruse_in(&env, &host, &["start", &id]).status.success());
    let rules = stdout(&host.sh("nft list table ip ruse"));
    assert!(rules.contains("dnat to 10.231.0.2:80"), "{rules}");
    assert!(rules.contains("masquerade"), "{rules}");
    let mut got = String::new();
    for _ in 0..50 {
        // (The static busybox's wget crashes in glibc's resolver on the host; nc is enough.)
        got = stdout(
            &client.sh(r#"printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc 192.168.231.1 8080"#),
        );
        if got.contains("hello") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        got.contains("200 OK") && got.contains("hello-from-ruse"),
        "{got}"
    );
    assert!(ruse_in(&env, &host, &["delete", "--force", &id])
        .status
        .success());
    let rules = host.sh("nft list table ip ruse");
    assert!(
        !rules.status.success(),
        "nft table left: {}",
        stdout(&rules)
    );
    assert!(!links(&host).contains("rbr1"));
    env.assert_clean(&id);
}

#[test]
fn twenty_parallel_creates_get_distinct_addresses() {
    if !common::root_or_skip() {
        return;
    }
    let ns = Netns::new("par");
    let env = bridge_env(&["sleep", "60"], "rbr2", &[]);
    let ids: Vec<String> = (0..20).map(|i| unique_id(&format!("p{i}"))).collect();
    std::thread::scope(|s| {
        for id in &ids {
            let (env, ns) = (&env, &ns);
            s.spawn(move || create(env, ns, id));
        }
    });
    let mut addrs: Vec<String> = ids
        .iter()
        .map(|id| {
            let a = addr_inside(pid_of(&env, &ns, id), "eth0");
            a.split_whitespace().nth(3).unwrap().to_string()
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 20, "{addrs:?}");
    let ports = stdout(&ns.sh("ip -o link show master rbr2"))
        .lines()
        .count();
    assert_eq!(ports, 20);
    for id in &ids {
        assert!(ruse_in(&env, &ns, &["delete", "--force", id])
            .status
            .success());
    }
    assert!(!links(&ns).contains("rbr2"));
    assert!(lease_files("rbr2", &env).is_empty());
}

#[test]
fn failed_create_leaves_no_interface_or_lease() {
    if !common::root_or_skip() {
        return;
    }
    let ns = Netns::new("fail");
    let env = bridge_env(&["/no/such/program"], "rbr3", &[]);
    let id = unique_id("f");
    let b = env.bundle();
    let o = ruse_in(&env, &ns, &["create", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/no/such/program"), "{}", stderr(&o));
    let l = links(&ns);
    assert!(!l.contains(" rv") && !l.contains("rbr3"), "{l}");
    assert!(lease_files("rbr3", &env).is_empty());
    env.assert_clean(&id);
    // A bad setting fails before anything exists, naming the annotation.
    let bad = bridge_env(&["true"], "rbr3", &[("address", "10.231.9.9/24")]);
    let o = ruse_in(
        &bad,
        &ns,
        &["create", "--bundle", bad.bundle().to_str().unwrap(), &id],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("ruse.network.address"),
        "{}",
        stderr(&o)
    );
    bad.assert_clean(&id);
}

#[test]
fn net_devices_are_moved_in_renamed_with_their_address_and_up() {
    if !common::root_or_skip() {
        return;
    }
    let ns = Netns::new("dev");
    assert!(ns
        .sh("ip link add rnd0 type veth peer name rnd1 && ip addr add 10.77.0.2/24 dev rnd0 && ip link set rnd1 up")
        .status
        .success());
    let env = Env::new(&["sh", "-c", "ip -o addr show ctr0; ip -o link show ctr0"]);
    env.edit(|c| {
        c["ociVersion"] = "1.3.0".into();
        c["linux"]["netDevices"] = serde_json::json!({"rnd0": {"name": "ctr0"}});
    });
    let id = unique_id("nd");
    let o = ruse_in(
        &env,
        &ns,
        &["run", "--bundle", env.bundle().to_str().unwrap(), &id],
    );
    let text = stdout(&o);
    assert!(o.status.success(), "{text}{}", stderr(&o));
    assert!(text.contains("inet 10.77.0.2/24"), "{text}");
    assert!(text.contains("ctr0") && text.contains(",UP"), "{text}");
    // Gone from the host while it ran; a veth is destroyed with the namespace afterwards.
    assert!(!links(&ns).contains("rnd0"));
    // A name already taken inside is an error ("lo" always exists). (rnd1 went with rnd0.)
    assert!(ns
        .sh("ip link add rnd2 type veth peer name rnd3")
        .status
        .success());
    env.edit(|c| c["linux"]["netDevices"] = serde_json::json!({"rnd2": {"name": "lo"}}));
    let o = ruse_in(
        &env,
        &ns,
        &["run", "--bundle", env.bundle().to_str().unwrap(), &id],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert!(links(&ns).contains("rnd2"), "rnd2 stays on the host");
    env.assert_clean(&id);
}

#[test]
fn spec_emits_a_bridge_config_that_runs() {
    if !common::root_or_skip() {
        return;
    }
    let dir = std::env::temp_dir().join(unique_id("spec"));
    std::fs::create_dir_all(&dir).unwrap();
    let o = Command::new(RUSE)
        .args(["spec", "--network", "bridge", "-b"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let spec: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(spec["annotations"]["ruse.network.mode"], "bridge");
    let ns = Netns::new("spec");
    let env = Env::new(&["sh", "-c", "ip -4 -o addr show eth0; ip route"]);
    env.edit(|c| c["annotations"] = spec["annotations"].clone());
    let id = unique_id("s");
    let o = ruse_in(
        &env,
        &ns,
        &["run", "--bundle", env.bundle().to_str().unwrap(), &id],
    );
    let text = stdout(&o);
    assert!(o.status.success(), "{text}{}", stderr(&o));
    assert!(text.contains("inet 10.89.0.2/24"), "{text}");
    assert!(text.contains("default via 10.89.0.1"), "{text}");
    assert!(
        !links(&ns).contains("ruse0"),
        "the bridge goes with its last container"
    );
    env.assert_clean(&id);
}

/// `unshare` holding a user namespace that maps root to root, killed on drop.
struct UserHolder(std::process::Child);

impl UserHolder {
    fn new() -> UserHolder {
        let child = Command::new("unshare")
            .args(["--user", "--map-root-user", "sleep", "1000"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let map = format!("/proc/{}/uid_map", child.id());
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !std::fs::read_to_string(&map)
            .unwrap_or_default()
            .split_whitespace()
            .eq(["0", "0", "1"])
        {
            assert!(std::time::Instant::now() < end, "unshare never mapped root");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        UserHolder(child)
    }
}

impl Drop for UserHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// A user namespace joined by path with a new network namespace: init makes the network
// namespace only after joining the user namespace (so that it owns it), which is after the
// parent would once have built the network. The interface, address and route must land in
// the container, none of it in the runtime's namespace.
#[test]
fn bridge_network_with_a_joined_user_namespace_is_built_inside() {
    if !common::root_or_skip() {
        return;
    }
    let ns = Netns::new("juser");
    let holder = UserHolder::new();
    let env = bridge_env(
        &["sh", "-c", "ip -4 -o addr show eth0; ip route"],
        "rbr4",
        &[],
    );
    env.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user", "path": format!("/proc/{}/ns/user", holder.0.id())}));
        // Only ids the holder maps (root): no devpts gid=5, no sysfs mount.
        c["mounts"] = serde_json::json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}
        ]);
    });
    let id = unique_id("ju");
    let before_routes = stdout(&ns.sh("ip route"));
    let o = ruse_in(
        &env,
        &ns,
        &["run", "--bundle", env.bundle().to_str().unwrap(), &id],
    );
    let text = stdout(&o);
    assert!(o.status.success(), "{text}{}", stderr(&o));
    assert!(text.contains("inet 10.231.0.2/24"), "{text}");
    assert!(text.contains("default via 10.231.0.1"), "{text}");
    let l = links(&ns);
    assert!(
        !l.contains("eth0"),
        "the container's interface is in the runtime's namespace: {l}"
    );
    assert_eq!(
        stdout(&ns.sh("ip route")),
        before_routes,
        "host routes changed"
    );
    assert!(!l.contains("rbr4") && !l.contains(" rv"), "{l}");
    env.assert_clean(&id);
}

// linux.netDevices into a network namespace joined by path (runc 1.3 allows it; the spec only
// asks for a container namespace): the device is moved there, renamed, with its address and
// up, and stays there after the container is gone. Into the runtime's own namespace it is
// refused before anything is touched.
#[test]
fn net_devices_go_into_a_network_namespace_joined_by_path() {
    if !common::root_or_skip() {
        return;
    }
    let ns = Netns::new("jdev");
    let target = Netns::new("jtgt");
    assert!(ns
        .sh("ip link add rnd4 type veth peer name rnd5 && ip addr add 10.78.0.2/24 dev rnd4")
        .status
        .success());
    let env = Env::new(&["sh", "-c", "ip -o addr show ctr4; ip -o link show ctr4"]);
    let path = format!("/run/netns/{}", target.0);
    env.edit(|c| {
        c["ociVersion"] = "1.3.0".into();
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "network");
        list.push(serde_json::json!({"type": "network", "path": path}));
        c["linux"]["netDevices"] = serde_json::json!({"rnd4": {"name": "ctr4"}});
    });
    let id = unique_id("jd");
    let o = ruse_in(
        &env,
        &ns,
        &["run", "--bundle", env.bundle().to_str().unwrap(), &id],
    );
    let text = stdout(&o);
    assert!(o.status.success(), "{text}{}", stderr(&o));
    assert!(text.contains("inet 10.78.0.2/24"), "{text}");
    assert!(text.contains("ctr4") && text.contains(",UP"), "{text}");
    assert!(!links(&ns).contains("rnd4"));
    let there = stdout(&target.sh("ip -o addr show ctr4"));
    assert!(there.contains("10.78.0.2/24"), "{there}");
    env.assert_clean(&id);
    // The runtime's own network namespace, joined by path: refused, rnd6 stays put.
    assert!(ns
        .sh("ip link add rnd6 type veth peer name rnd7")
        .status
        .success());
    let own = format!("/run/netns/{}", ns.0);
    env.edit(|c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = own.clone().into();
            }
        }
        c["linux"]["netDevices"] = serde_json::json!({"rnd6": {"name": "ctr6"}});
    });
    let o = ruse_in(
        &env,
        &ns,
        &["run", "--bundle", env.bundle().to_str().unwrap(), &id],
    );
    common::assert_error(
        "netDevices into the runtime's netns",
        &o,
        &["linux.netDevices", "runtime's own"],
    );
    assert!(links(&ns).contains("rnd6"), "rnd6 stays on the host");
    env.assert_clean(&id);
}

/// The ifindex of `dev` in `ns`.
fn ifindex(ns: &Netns, dev: &str) -> u32 {
    let o = ns.sh(&format!("cat /sys/class/net/{dev}/ifindex"));
    assert!(o.status.success(), "{dev}: {}", stderr(&o));
    stdout(&o).trim().parse().unwrap()
}

// A `%d` template end to end, in the case the ifindex cannot identify the moved device: the
// joined namespace already has a device with the index rnd8 had on the host (and one taking
// `ctr0`), so the kernel gives rnd8 another index there. Its address and the up state must
// reach it, not the device that holds the old index. With rnd10, two templates: ctr1 and
// ctr2 (in the plan's order).
#[test]
fn net_device_name_templates_find_the_moved_device() {
    if !common::root_or_skip() {
        return;
    }
    let ns = Netns::new("tpl");
    let target = Netns::new("tplt");
    assert!(ns
        .sh(
            "ip link add rnd8 type veth peer name rnd9 && ip addr add 10.79.0.2/24 dev rnd8 \
             && ip link add rnd10 type veth peer name rnd11 && ip addr add 10.79.1.2/24 dev rnd10"
        )
        .status
        .success());
    let taken = ifindex(&ns, "rnd8");
    let o = target.sh(&format!(
        "ip link add name ctr0 index {taken} type veth peer name ctrpeer"
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let env = Env::new(&["sh", "-c", "ip -o -4 addr show; ip -o link show"]);
    let path = format!("/run/netns/{}", target.0);
    env.edit(|c| {
        c["ociVersion"] = "1.3.0".into();
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "network");
        list.push(serde_json::json!({"type": "network", "path": path}));
        c["linux"]["netDevices"] =
            serde_json::json!({"rnd8": {"name": "ctr%d"}, "rnd10": {"name": "ctr%d"}});
    });
    let id = unique_id("tpl");
    let o = ruse_in(
        &env,
        &ns,
        &["run", "--bundle", env.bundle().to_str().unwrap(), &id],
    );
    let text = stdout(&o);
    assert!(o.status.success(), "{text}{}", stderr(&o));
    // `N: name    inet A/P ...` → (name, A/P); `N: name@peer: <FLAGS> ...` → (name, FLAGS).
    let mut addr = std::collections::HashMap::new();
    let mut flags = std::collections::HashMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(2) == Some(&"inet") {
            addr.insert(f[1].to_string(), f[3].to_string());
        } else if f.len() > 2 {
            let name = f[1].trim_end_matches(':').split('@').next().unwrap();
            flags.insert(name.to_string(), f[2].to_string());
        }
    }
    let holder_of = |a: &str| addr.iter().find(|(_, v)| *v == a).map(|(k, _)| k.clone());
    let (a, b) = (holder_of("10.79.0.2/24"), holder_of("10.79.1.2/24"));
    let mut names = vec![a.clone().unwrap_or_default(), b.unwrap_or_default()];
    names.sort();
    assert_eq!(names, ["ctr1", "ctr2"], "{text}");
    for n in &names {
        assert!(flags[n].contains(",UP"), "{n} not up: {text}");
    }
    assert!(
        !flags["ctr0"].contains(",UP") && !addr.contains_key("ctr0"),
        "{text}"
    );
    assert!(!text.contains("rusemv"), "a temporary name is left: {text}");
    assert_ne!(ifindex(&target, &a.unwrap()), taken);
    env.assert_clean(&id);
}

/// The address (`A/P`) of eth0 in the container `id`.
fn eth0_addr(env: &Env, ns: &Netns, id: &str) -> String {
    let a = addr_inside(pid_of(env, ns, id), "eth0");
    a.split_whitespace().nth(3).unwrap().to_string()
}

// Leases and the "bridge made by ruse" record are host-wide per network namespace, not per
// state root: two --root values on one bridge get distinct addresses, and the bridge goes
// with the last container of either.
#[test]
fn two_state_roots_share_one_bridge_its_leases_and_its_removal() {
    if !common::root_or_skip() {
        return;
    }
    let ns = Netns::new("roots");
    let a = bridge_env(&["sleep", "60"], "rbr5", &[]);
    let b = bridge_env(&["sleep", "60"], "rbr5", &[]);
    assert_ne!(a.root, b.root);
    let (ida, idb) = (unique_id("ra"), unique_id("rb"));
    create(&a, &ns, &ida);
    create(&b, &ns, &idb);
    let mut got = vec![eth0_addr(&a, &ns, &ida), eth0_addr(&b, &ns, &idb)];
    got.sort();
    assert_eq!(got, ["10.231.0.2/24", "10.231.0.3/24"]);
    let shared = lease_files("rbr5", &a);
    assert_eq!(shared.len(), 1);
    assert_eq!(
        lease_files("rbr5", &b),
        shared,
        "one lease file for both roots"
    );
    assert!(ruse_in(&a, &ns, &["delete", "--force", &ida])
        .status
        .success());
    a.assert_clean(&ida);
    assert!(
        links(&ns).contains("rbr5"),
        "the bridge went while B uses it"
    );
    assert!(lease_files("rbr5", &a).is_empty());
    assert_eq!(lease_files("rbr5", &b), shared);
    assert!(ruse_in(&b, &ns, &["delete", "--force", &idb])
        .status
        .success());
    b.assert_clean(&idb);
    assert!(!links(&ns).contains("rbr5"), "the bridge ruse made is left");
    assert!(!shared[0].exists(), "lease file left");
}

// An existing bridge: the addresses assigned on it are never leased, and it stays when the
// last container goes (ruse did not make it).
#[test]
fn addresses_on_an_existing_bridge_are_skipped_and_the_bridge_kept() {
    if !common::root_or_skip() {
        return;
    }
    let ns = Netns::new("exbr");
    let o = ns.sh(
        "ip link add rbr6 type bridge && ip addr add 10.231.0.1/24 dev rbr6 \
         && ip addr add 10.231.0.2/24 dev rbr6 && ip link set rbr6 up",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let env = bridge_env(&["sleep", "60"], "rbr6", &[]);
    let id = unique_id("ex");
    create(&env, &ns, &id);
    assert_eq!(eth0_addr(&env, &ns, &id), "10.231.0.3/24");
    assert!(ruse_in(&env, &ns, &["delete", "--force", &id])
        .status
        .success());
    env.assert_clean(&id);
    assert!(
        links(&ns).contains("rbr6"),
        "a bridge ruse did not make was removed"
    );
    assert!(lease_files("rbr6", &env).is_empty());
}

// A host port is published once: a second container asking for it is refused by name,
// before anything of it is built; the same number over the other protocol is another port.
#[test]
fn a_published_host_port_is_refused_for_a_second_container() {
    if !common::root_or_skip() {
        return;
    }
    let ns = Netns::new("dport");
    let a = bridge_env(
        &["sleep", "60"],
        "rbr7",
        &[("ports", "8081:80/tcp,5353:53/udp")],
    );
    let ida = unique_id("pa");
    create(&a, &ns, &ida);
    let b = bridge_env(&["sleep", "60"], "rbr7", &[("ports", "9090:90,8081:8080")]);
    let idb = unique_id("pb");
    let o = ruse_in(
        &b,
        &ns,
        &["create", "--bundle", b.bundle().to_str().unwrap(), &idb],
    );
    common::assert_error(
        "second publisher",
        &o,
        &[
            "ruse.network.ports 8081:8080/tcp",
            "host port 8081/tcp is already published",
            &ida,
        ],
    );
    b.assert_clean(&idb);
    assert_eq!(
        stdout(&ns.sh("ip -o link show master rbr7"))
            .lines()
            .count(),
        1
    );
    let rules = stdout(&ns.sh("nft list table ip ruse"));
    assert!(
        !rules.contains("9090") && !rules.contains(":8080"),
        "{rules}"
    );
    let c = bridge_env(&["sleep", "60"], "rbr7", &[("ports", "8081:80/udp")]);
    let idc = unique_id("pc");
    create(&c, &ns, &idc);
    for (env, id) in [(&a, &ida), (&c, &idc)] {
        assert!(ruse_in(env, &ns, &["delete", "--force", id])
            .status
            .success());
        env.assert_clean(id);
    }
    assert!(!ns.sh("nft list table ip ruse").status.success());
    assert!(lease_files("rbr7", &a).is_empty() && lease_files("rbr7", &c).is_empty());
}

// `ruse create` killed half-way (by its own createRuntime hook, after the network is built):
// `delete --force` removes the veth, the lease, the nft table and the bridge ruse made.
#[test]
fn delete_force_after_a_killed_create_removes_the_network() {
    if !common::root_or_skip() {
        return;
    }
    let ns = Netns::new("kill");
    let env = bridge_env(
        &["true"],
        "rbr8",
        &[("ports", "8082:80"), ("masquerade", "true")],
    );
    env.edit(|c| {
        c["hooks"] = serde_json::json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]}
        ]});
    });
    let id = unique_id("k");
    let o = ruse_in(
        &env,
        &ns,
        &["create", "--bundle", env.bundle().to_str().unwrap(), &id],
    );
    assert!(
        !o.status.success(),
        "create survived its kill: {}",
        stderr(&o)
    );
    // It got as far as the network. (The veth goes by itself once init, killed with its
    // parent, takes its network namespace along; the rest stays for delete.)
    let l = links(&ns);
    assert!(l.contains("rbr8"), "{l}");
    assert_eq!(lease_files("rbr8", &env).len(), 1);
    assert!(ns.sh("nft list table ip ruse").status.success());
    assert!(env.root.join(&id).is_dir());
    let o = ruse_in(&env, &ns, &["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let l = links(&ns);
    assert!(!l.contains(" rv") && !l.contains("rbr8"), "{l}");
    assert!(lease_files("rbr8", &env).is_empty());
    assert!(!ns.sh("nft list table ip ruse").status.success());
    env.assert_clean(&id);
}

// `delete` from another network namespace than `create` ran in: the lease (host-wide) is
// released, with a warning naming what it cannot reach; nothing of the same name in its own
// namespace is touched.
#[test]
fn delete_from_another_network_namespace_releases_the_lease() {
    if !common::root_or_skip() {
        return;
    }
    let ns = Netns::new("other");
    let elsewhere = Netns::new("else");
    let env = bridge_env(&["sleep", "60"], "rbr9", &[]);
    let id = unique_id("o");
    create(&env, &ns, &id);
    assert_eq!(lease_files("rbr9", &env).len(), 1);
    // A bridge of the same name where delete runs: not ruse's there.
    assert!(elsewhere
        .sh("ip link add rbr9 type bridge")
        .status
        .success());
    let o = ruse_in(&env, &elsewhere, &["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("another network namespace"),
        "{}",
        stderr(&o)
    );
    assert!(lease_files("rbr9", &env).is_empty());
    assert!(links(&elsewhere).contains("rbr9"));
    env.assert_clean(&id);
    // What remains is the record that ruse made rbr9 in `ns`, which goes with `ns` here:
    // not ruse's to forget (bridge names are unique per test).
    for e in std::fs::read_dir("/run/ruse-net").unwrap().flatten() {
        if std::fs::remove_file(e.path().join("rbr9.json")).is_ok() {
            // That directory is `ns`'s, which nothing else uses.
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

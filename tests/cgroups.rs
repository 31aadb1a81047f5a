//! cgroups for real, on whatever layout the host has (hybrid v1 here; pure v2 in the VM
//! harness): every resource lands in the right file, converted where the versions differ;
//! OOM kills reach `events`; `pids.max` stops a fork bomb; the freezer freezes; device rules
//! deny with EPERM; update, ps, kill --all and delete work on the cgroup; nothing is left.
//! Needs root.

mod common;

use common::cgroup::{dir_of, mount_for, CgDir};
use common::{stderr, stdout, unique_id, Env};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn pid(env: &Env, id: &str) -> i32 {
    env.state(id)["pid"].as_i64().unwrap() as i32
}

/// create + start, asserted.
fn start(env: &Env, id: &str) -> i32 {
    env.create(id);
    let out = env.ruse(&["start", id]);
    assert!(out.status.success(), "start {id}: {}", stderr(&out));
    pid(env, id)
}

fn delete(env: &Env, id: &str) {
    let out = env.ruse(&["delete", "--force", id]);
    assert!(out.status.success(), "delete {id}: {}", stderr(&out));
    env.assert_clean(id);
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dir(pid: i32, v1: &str, v2: &str) -> CgDir {
    dir_of(pid, v1, v2).unwrap_or_else(|| panic!("no {v1}/{v2} cgroup for pid {pid}"))
}

#[test]
fn resources_land_in_their_files() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "60"]);
    env.edit(|c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 67108864, "reservation": 33554432},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
                    "cpus": "0", "mems": "0"},
            "pids": {"limit": 42}
        });
    });
    let id = unique_id("res");
    let p = start(&env, &id);
    let mem = dir(p, "memory", "memory");
    if mem.v2 {
        assert_eq!(mem.read("memory.max"), "67108864");
        assert_eq!(mem.read("memory.low"), "33554432");
    } else {
        assert_eq!(mem.read("memory.limit_in_bytes"), "67108864");
        assert_eq!(mem.read("memory.soft_limit_in_bytes"), "33554432");
    }
    let cpu = dir(p, "cpu", "cpu");
    if cpu.v2 {
        // runc ≥ 1.3.2's curve: 512 shares → weight 59 (the old linear formula gave 20).
        assert_eq!(cpu.read("cpu.weight"), "59");
        assert_eq!(cpu.read("cpu.max"), "50000 100000");
        assert_eq!(cpu.read("cpu.max.burst"), "1000");
    } else {
        assert_eq!(cpu.read("cpu.shares"), "512");
        assert_eq!(cpu.read("cpu.cfs_quota_us"), "50000");
        assert_eq!(cpu.read("cpu.cfs_period_us"), "100000");
        assert_eq!(cpu.read("cpu.cfs_burst_us"), "1000");
    }
    let set = dir(p, "cpuset", "cpuset");
    assert_eq!(set.read("cpuset.cpus"), "0");
    assert_eq!(set.read("cpuset.mems"), "0");
    assert_eq!(dir(p, "pids", "pids").read("pids.max"), "42");
    // init really runs inside: the kernel pins it to cpu 0.
    let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap();
    assert!(status.contains("Cpus_allowed_list:\t0\n"), "{status}");
    delete(&env, &id);
}

#[test]
fn memory_swap_and_version_specific_knobs() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "60"]);
    let knobs = json!({"limit": 33554432, "swap": 67108864, "swappiness": 30,
                       "disableOOMKiller": true, "useHierarchy": true});
    env.edit(|c| c["linux"]["resources"] = json!({"memory": knobs}));
    let id = unique_id("memv");
    let own = dir(std::process::id() as i32, "memory", "memory");
    if own.v2 {
        // v2 has no swappiness and no way to disable the OOM killer: refused by name.
        let b = env.bundle();
        let out = env.ruse(&["create", "--bundle", b.to_str().unwrap(), &id]);
        assert_eq!(out.status.code(), Some(1));
        let e = stderr(&out);
        assert!(
            e.contains("not supported: linux.resources.memory.swappiness on cgroup v2"),
            "{e}"
        );
        env.assert_clean(&id);
        env.edit(|c| {
            c["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 67108864}})
        });
    }
    let p = start(&env, &id);
    let mem = dir(p, "memory", "memory");
    if mem.v2 {
        // memory+swap 64M with memory 32M is 32M of swap on v2 (where swap accounting exists).
        if mem.has("memory.swap.max") {
            assert_eq!(mem.read("memory.swap.max"), "33554432");
        }
    } else {
        if mem.has("memory.memsw.limit_in_bytes") {
            assert_eq!(mem.read("memory.memsw.limit_in_bytes"), "67108864");
        }
        assert_eq!(mem.read("memory.swappiness"), "30");
        assert!(mem
            .read("memory.oom_control")
            .contains("oom_kill_disable 1"));
        assert_eq!(mem.read("memory.use_hierarchy"), "1");
    }
    delete(&env, &id);
}

#[test]
fn cpu_idle_and_realtime() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "60"]);
    let rt = json!({"idle": 1, "realtimeRuntime": 10000, "realtimePeriod": 500000});
    env.edit(|c| c["linux"]["resources"] = json!({"cpu": rt}));
    let id = unique_id("cpurt");
    let own = dir(std::process::id() as i32, "cpu", "cpu");
    if own.v2 {
        // v2 has no realtime group scheduling: refused by name, nothing left behind.
        let b = env.bundle();
        let out = env.ruse(&["create", "--bundle", b.to_str().unwrap(), &id]);
        assert_eq!(out.status.code(), Some(1));
        let e = stderr(&out);
        assert!(
            e.contains("not supported: linux.resources.cpu.realtimeRuntime/realtimePeriod"),
            "{e}"
        );
        env.assert_clean(&id);
        env.edit(|c| c["linux"]["resources"] = json!({"cpu": {"idle": 1}}));
    }
    let p = start(&env, &id);
    let cpu = dir(p, "cpu", "cpu");
    assert_eq!(cpu.read("cpu.idle"), "1");
    if !cpu.v2 {
        assert_eq!(cpu.read("cpu.rt_period_us"), "500000");
        assert_eq!(cpu.read("cpu.rt_runtime_us"), "10000");
    }
    delete(&env, &id);
}

#[test]
fn block_io_throttles() {
    if !common::root_or_skip() {
        return;
    }
    // Throttling needs a block device that exists: the first one the host lists.
    let dev = first_block_device();
    let (ma, mi) = dev.split_once(':').unwrap();
    let (ma, mi): (u64, u64) = (ma.parse().unwrap(), mi.parse().unwrap());
    let t = |rate: u64| json!([{"major": ma, "minor": mi, "rate": rate}]);
    let env = Env::new(&["sleep", "60"]);
    env.edit(|c| {
        c["linux"]["resources"] = json!({"blockIO": {
            "throttleReadBpsDevice": t(1048576), "throttleWriteBpsDevice": t(2097152),
            "throttleReadIOPSDevice": t(300), "throttleWriteIOPSDevice": t(400)}})
    });
    let id = unique_id("thr");
    let p = start(&env, &id);
    let io = dir(p, "blkio", "io");
    if io.v2 {
        let max = io.read("io.max");
        let want = format!("{dev} rbps=1048576 wbps=2097152 riops=300 wiops=400");
        assert!(max.lines().any(|l| l == want), "{max}");
    } else {
        for (file, v) in [
            ("read_bps_device", 1048576),
            ("write_bps_device", 2097152),
            ("read_iops_device", 300),
            ("write_iops_device", 400),
        ] {
            let got = io.read(&format!("blkio.throttle.{file}"));
            assert_eq!(got, format!("{dev} {v}"), "{file}");
        }
    }
    delete(&env, &id);
}

/// Each weight knob lands in its file where the host's IO scheduler has one, and is refused
/// naming its field where it has none (this host: no CFQ/BFQ, so no blkio.weight*).
#[test]
fn block_io_weights_where_the_host_has_them() {
    if !common::root_or_skip() {
        return;
    }
    let dev = first_block_device();
    let (ma, mi) = dev.split_once(':').unwrap();
    let (ma, mi): (u64, u64) = (ma.parse().unwrap(), mi.parse().unwrap());
    let env = Env::new(&["sleep", "60"]);
    // A probe container shows which knobs a container's cgroup has here.
    let id = unique_id("iow");
    let p = start(&env, &id);
    let probe = dir(p, "blkio", "io");
    let has = |f: &str| probe.has(f);
    let (v2, weight, weight_dev, leaf) = if probe.v2 {
        let bfq = has("io.bfq.weight");
        (true, bfq || has("io.weight"), bfq, false)
    } else {
        let w = has("blkio.bfq.weight") || has("blkio.weight");
        let wd = has("blkio.bfq.weight_device") || has("blkio.weight_device");
        (false, w, wd, has("blkio.leaf_weight"))
    };
    delete(&env, &id);
    let wd = json!([{"major": ma, "minor": mi, "weight": 70}]);
    let cases = [
        (json!({"weight": 300}), weight, "blockIO.weight"),
        (
            json!({"weightDevice": wd}),
            weight_dev,
            "blockIO.weightDevice[0]",
        ),
        (json!({"leafWeight": 200}), leaf, "blockIO.leafWeight"),
    ];
    for (b, present, field) in cases {
        env.edit(|c| c["linux"]["resources"] = json!({"blockIO": b}));
        let id = unique_id("iow");
        if !present {
            let bd = env.bundle();
            let out = env.ruse(&["create", "--bundle", bd.to_str().unwrap(), &id]);
            assert_eq!(out.status.code(), Some(1), "{b}");
            let e = stderr(&out);
            assert!(e.contains(&format!("linux.resources.{field}")), "{b}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
            env.assert_clean(&id);
            continue;
        }
        let io = dir(start(&env, &id), "blkio", "io");
        let read_first = |names: &[&str]| {
            let f = names.iter().find(|f| io.has(f)).unwrap();
            io.read(f)
        };
        match (field, v2) {
            ("blockIO.weight", true) => {
                // BFQ takes the blkio value; io.weight its own scale: 1 + (300-10)*9999/990.
                let w = read_first(&["io.bfq.weight", "io.weight"]);
                assert!(w == "default 300" || w == "default 2930", "{w}");
            }
            ("blockIO.weight", false) => {
                let w = read_first(&["blkio.bfq.weight", "blkio.weight"]);
                assert_eq!(w, "300");
            }
            ("blockIO.weightDevice[0]", true) => {
                assert!(io.read("io.bfq.weight").contains(&format!("{dev} 70")));
            }
            ("blockIO.weightDevice[0]", false) => {
                let w = read_first(&["blkio.bfq.weight_device", "blkio.weight_device"]);
                assert!(w.contains(&format!("{dev} 70")), "{w}");
            }
            _ => assert_eq!(io.read("blkio.leaf_weight"), "200"),
        }
        delete(&env, &id);
    }
}

/// (hierarchy id, enabled) of a controller in /proc/cgroups.
fn proc_cgroups(ctrl: &str) -> Option<(u32, bool)> {
    let text = std::fs::read_to_string("/proc/cgroups").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() != 4 || f[0] != ctrl {
            return None;
        }
        Some((f[1].parse().ok()?, f[3] == "1"))
    })
}

/// `script` in a private mount namespace where a v1 net_cls,net_prio hierarchy is mounted on
/// `mnt` (ruse run there finds it in its own mountinfo). `$R` is ruse with the env's root.
fn in_net_v1(env: &Env, mnt: &std::path::Path, script: &str) -> std::process::Output {
    let mut c = std::process::Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t cgroup -o net_cls,net_prio ruse-test \"$0\" && {script}"
        ))
        .arg(mnt)
        .env(
            "R",
            format!("{} --root {}", common::RUSE, env.root.display()),
        );
    env.output_via_files(&mut c)
}

#[test]
fn network_class_id_and_priorities_in_a_v1_hierarchy() {
    if !common::root_or_skip() {
        return;
    }
    // Only where the kernel has both controllers and no v1 hierarchy binds them yet (mounting
    // one in a private namespace then changes nothing the host sees).
    let free = |c| proc_cgroups(c).is_some_and(|(h, on)| on && h == 0);
    if !free("net_cls") || !free("net_prio") || common::cgroup::pure_v2() {
        eprintln!("skipped: net_cls/net_prio are not free for a v1 hierarchy here");
        return;
    }
    let env = Env::new(&["sleep", "60"]);
    env.edit(|c| {
        c["linux"]["resources"] = json!({"network": {"classID": 1048577,
            "priorities": [{"name": "lo", "priority": 5}]}})
    });
    let mnt = env.dir.join("netv1");
    std::fs::create_dir(&mnt).unwrap();
    let id = unique_id("net");
    // Deleted through the same kind of namespace even when an assertion fails, so the
    // hierarchy is left without cgroups and goes away with the last mount.
    struct Del<'a>(&'a Env, &'a std::path::Path, &'a str);
    impl Drop for Del<'_> {
        fn drop(&mut self) {
            in_net_v1(self.0, self.1, &format!("$R delete --force {}", self.2));
            release_net_v1(self.0, self.1);
        }
    }
    let b = env.bundle();
    let script = format!(
        "$R create --bundle {} {id} && cat \"$0/{id}/net_cls.classid\" \"$0/{id}/net_prio.ifpriomap\"",
        b.display()
    );
    let _del = Del(&env, &mnt, &id);
    let out = in_net_v1(&env, &mnt, &script);
    assert!(out.status.success(), "{}", stderr(&out));
    let o = stdout(&out);
    let mut lines = o.lines();
    assert_eq!(lines.next(), Some("1048577"), "{o}");
    // ifpriomap lists the reader's interfaces; ruse wrote lo's from the same network namespace.
    assert!(lines.any(|l| l == "lo 5"), "{o}");
    // The container's init really is in that cgroup.
    let p = pid(&env, &id);
    let own = std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert!(
        own.lines()
            .any(|l| l.ends_with(&format!(":net_cls,net_prio:/{id}"))
                || l.ends_with(&format!(":net_prio,net_cls:/{id}"))),
        "{own}"
    );
    let out = in_net_v1(&env, &mnt, &format!("$R delete --force {id} && ls \"$0\""));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).lines().any(|l| l == id), "{}", stdout(&out));
    env.assert_clean(&id);
    assert!(
        release_net_v1(&env, &mnt),
        "the net_cls,net_prio hierarchy outlived the test"
    );
}

/// Ends the test's v1 hierarchy. The kernel destroys it (asynchronously) at the last unmount,
/// but only when it has no child cgroup left, and a cgroup removed just before may not be
/// released yet: then one more mount and unmount is needed. True once /proc/cgroups shows the
/// controllers unbound.
fn release_net_v1(env: &Env, mnt: &std::path::Path) -> bool {
    let unbound = || proc_cgroups("net_cls").is_some_and(|(h, _)| h == 0);
    for _ in 0..5 {
        let end = Instant::now() + Duration::from_secs(1);
        while Instant::now() < end {
            if unbound() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        in_net_v1(env, mnt, "true");
    }
    unbound()
}

#[test]
fn rdma_limits_reach_the_kernel() {
    if !common::root_or_skip() {
        return;
    }
    if dir_of(std::process::id() as i32, "rdma", "rdma").is_none() {
        // No rdma controller: unavailable_or_unsupported_resources_… checks the refusal.
        return;
    }
    // Without RDMA hardware the kernel knows no device: its ENODEV must name the field.
    let env = Env::new(&["true"]);
    env.edit(|c| {
        c["linux"]["resources"] =
            json!({"rdma": {"ruse_nodev0": {"hcaHandles": 3, "hcaObjects": 100}}})
    });
    let id = unique_id("rdma");
    let b = env.bundle();
    let out = env.ruse(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("linux.resources.rdma.ruse_nodev0: write \"ruse_nodev0 hca_handle=3 hca_object=100\" to ")
            && e.contains("rdma.max: No such device"),
        "{e}"
    );
    env.assert_clean(&id);
}

#[test]
fn intel_rdt_is_refused_without_resctrl() {
    if !common::root_or_skip() {
        return;
    }
    if std::path::Path::new("/sys/fs/resctrl/schemata").exists() {
        // A host with RDT: ruse's unit tests cover the group against a fake resctrl tree.
        return;
    }
    let env = Env::new(&["sleep", "60"]);
    env.edit(|c| c["linux"]["intelRdt"] = json!({"l3CacheSchema": "L3:0=f"}));
    let id = unique_id("rdt");
    let b = env.bundle();
    let out = env.ruse(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains(
            "not supported: linux.intelRdt (no resctrl filesystem is mounted at /sys/fs/resctrl)"
        ),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    env.assert_clean(&id);
    // Without a group, update's schema flags are refused and nothing is saved.
    env.edit(|c| {
        c["linux"].as_object_mut().unwrap().remove("intelRdt");
    });
    let p = start(&env, &id);
    for flag in ["--l3-cache-schema", "--mem-bw-schema"] {
        let out = env.ruse(&["update", flag, "L3:0=f", &id]);
        assert_eq!(out.status.code(), Some(1));
        let e = stderr(&out);
        assert!(
            e.contains("not supported: --l3-cache-schema/--mem-bw-schema"),
            "{e}"
        );
    }
    assert!(env.state(&id)["pid"] == p);
    let saved: Value =
        serde_json::from_slice(&std::fs::read(env.root.join(&id).join("state.json")).unwrap())
            .unwrap();
    assert!(saved["config"]["linux"].get("intelRdt").is_none());
    assert_eq!(events_stats(&env, &id)["data"]["intel_rdt"], json!({}));
    delete(&env, &id);
}

#[test]
fn hugetlb_limits_where_the_controller_exists() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "60"]);
    env.edit(|c| {
        c["linux"]["resources"] = json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]})
    });
    let id = unique_id("huge");
    let b = env.bundle();
    let out = env.ruse(&["create", "--bundle", b.to_str().unwrap(), &id]);
    if dir_of(std::process::id() as i32, "hugetlb", "hugetlb").is_none() {
        assert_eq!(out.status.code(), Some(1));
        let e = stderr(&out);
        assert!(
            e.contains("linux.resources.hugepageLimits: the hugetlb controller is not available"),
            "{e}"
        );
        env.assert_clean(&id);
        return;
    }
    assert!(out.status.success(), "{}", stderr(&out));
    let h = dir(pid(&env, &id), "hugetlb", "hugetlb");
    let file = if h.v2 {
        "hugetlb.2MB.max"
    } else {
        "hugetlb.2MB.limit_in_bytes"
    };
    assert_eq!(h.read(file), "4194304");
    let stats = events_stats(&env, &id);
    assert_eq!(stats["data"]["hugetlb"]["2MB"]["failcnt"], 0);
    delete(&env, &id);
}

#[test]
fn unavailable_or_unsupported_resources_fail_by_field_and_leave_nothing() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    let me = std::process::id() as i32;
    let mut cases = vec![
        (
            json!({"network": {"classID": 1048577}}),
            "linux.resources.network.classID",
        ),
        (
            json!({"rdma": {"mlx_0": {"hcaHandles": 1}}}),
            "linux.resources.rdma",
        ),
        (
            json!({"unified": {"memory.high": "1000000"}}),
            "linux.resources.unified.memory.high",
        ),
        (
            json!({"cpu": {"shares": 1}}),
            "linux.resources.cpu.shares: 1 is outside",
        ),
        (
            json!({"devices": [{"allow": true, "access": "rwx"}]}),
            "linux.resources.devices[0].access",
        ),
        (
            json!({"hugepageLimits": [{"pageSize": "3XB", "limit": 1}]}),
            "hugepageLimits[0].pageSize",
        ),
    ];
    // Each is refused only where the host cannot honour it.
    cases.retain(|(_, f)| {
        let ctrl = match *f {
            "linux.resources.network.classID" => "net_cls",
            "linux.resources.rdma" => "rdma",
            "linux.resources.unified.memory.high" => {
                return !dir_of(me, "memory", "memory").is_some_and(|d| d.v2)
            }
            _ => return true,
        };
        dir_of(me, ctrl, ctrl).is_none()
            || (ctrl == "net_cls" && dir_of(me, ctrl, ctrl).unwrap().v2)
    });
    assert!(cases.len() >= 4, "this host should refuse some of them");
    for (res, field) in cases {
        env.edit(|c| c["linux"]["resources"] = res.clone());
        let id = unique_id("bad");
        let b = env.bundle();
        let out = env.ruse(&["create", "--bundle", b.to_str().unwrap(), &id]);
        assert_eq!(out.status.code(), Some(1), "{res}");
        let e = stderr(&out);
        assert!(e.contains(field), "{res}: {e}");
        assert_eq!(e.lines().count(), 1, "one line: {e}");
        env.assert_clean(&id);
    }
}

fn events_stats(env: &Env, id: &str) -> Value {
    let out = env.ruse(&["events", "--stats", id]);
    assert!(out.status.success(), "events: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn oom_kill_is_reported_by_events() {
    if !common::root_or_skip() {
        return;
    }
    // 64M of buffer against a 32M limit (swap included, so it cannot page out).
    let env = Env::new(&[
        "sh",
        "-c",
        "sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd=$?; sleep 1",
    ]);
    env.edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}})
    });
    let id = unique_id("oom");
    env.create(&id);
    let events = env
        .cmd()
        .args(["events", "--interval", "300ms", &id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(env.ruse(&["start", &id]).status.success());
    // events ends by itself when the container stops.
    let out = events.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ooms = lines
        .iter()
        .filter(|l| **l == json!({"type": "oom", "id": id}));
    let ooms = ooms.count();
    assert!(ooms >= 1, "{lines:?}");
    if dir(std::process::id() as i32, "memory", "memory").v2 {
        // memory.events oom_kill, as runc counts: one process (dd) was killed, one event.
        assert_eq!(ooms, 1, "{lines:?}");
    }
    let stats: Vec<&Value> = lines.iter().filter(|l| l["type"] == "stats").collect();
    assert!(!stats.is_empty(), "{lines:?}");
    assert_eq!(stats[0]["id"], id.as_str());
    assert_eq!(stats[0]["data"]["memory"]["usage"]["limit"], 33554432);
    assert!(stats[0]["data"]["pids"]["current"].as_u64().unwrap() >= 1);
    assert!(stats[0]["data"]["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    delete(&env, &id);
}

#[test]
fn pids_max_stops_a_fork_bomb() {
    if !common::root_or_skip() {
        return;
    }
    // An inner shell forks forever; the kernel stops it (busybox sh then gives up with
    // status 2), and the outer shell, still alive, reports it without forking.
    let env = Env::new(&[
        "sh",
        "-c",
        "sh -c 'while :; do sleep 30 & done'; echo $? > /tmp/bomb; exec sleep 30",
    ]);
    env.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["resources"] = json!({"pids": {"limit": 10}});
    });
    let id = unique_id("bomb");
    let p = start(&env, &id);
    let res = env.rootfs().join("tmp/bomb");
    wait_for("the bomb to be stopped", || {
        std::fs::read_to_string(&res).is_ok_and(|s| s.ends_with('\n'))
    });
    assert_eq!(std::fs::read_to_string(&res).unwrap().trim(), "2");
    let pids = dir(p, "pids", "pids");
    // The outer shell, now sleep, and the 8 sleeps that fit under the limit.
    assert_eq!(pids.read("pids.current"), "9");
    let events = pids.read("pids.events");
    let refused: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(refused >= 1, "{events}");
    let stats = events_stats(&env, &id);
    assert_eq!(stats["data"]["pids"], json!({"current": 9, "limit": 10}));
    delete(&env, &id);
}

#[test]
fn pause_freezes_and_resume_thaws() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&[
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done",
    ]);
    env.edit(|c| c["root"]["readonly"] = json!(false));
    let id = unique_id("frz");
    let p = start(&env, &id);
    let n = env.rootfs().join("tmp/n");
    let count = || {
        std::fs::read_to_string(&n)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    wait_for("the counter", || count().is_some());
    assert!(env.ruse(&["pause", &id]).status.success());
    assert_eq!(env.state(&id)["status"], "paused");
    let f = dir(p, "freezer", "freezer");
    if f.v2 {
        assert_eq!(f.read("cgroup.freeze"), "1");
        assert!(f.read("cgroup.events").contains("frozen 1"));
    } else {
        assert_eq!(f.read("freezer.state"), "FROZEN");
    }
    let frozen_at = count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(), frozen_at, "the counter moved while paused");
    let again = env.ruse(&["pause", &id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("container not running"),
        "{}",
        stderr(&again)
    );
    let del = env.ruse(&["delete", &id]);
    assert!(stderr(&del).contains("paused"), "{}", stderr(&del));
    assert!(env.ruse(&["resume", &id]).status.success());
    assert_eq!(env.state(&id)["status"], "running");
    wait_for("the counter to move again", || count() > frozen_at);
    let not_paused = env.ruse(&["resume", &id]);
    assert!(
        stderr(&not_paused).contains("container not paused"),
        "{}",
        stderr(&not_paused)
    );
    // A paused container still dies of SIGKILL (thawed after the signal).
    assert!(env.ruse(&["pause", &id]).status.success());
    assert!(env.ruse(&["kill", &id, "KILL"]).status.success());
    env.wait_status(&id, "stopped");
    delete(&env, &id);
    // So does every process of it with `kill --all` (containerd's `task delete --force` of a
    // paused task), and `delete --force` of a paused container: at once, not after a timeout.
    // On a hybrid host cgroup.kill on the v2 side cannot reach tasks the v1 freezer holds.
    for how in ["kill --all", "delete --force"] {
        let id = unique_id("pausekill");
        start(&env, &id);
        assert!(env.ruse(&["pause", &id]).status.success());
        let t = Instant::now();
        let out = match how {
            "kill --all" => env.ruse(&["kill", "--all", &id, "9"]),
            _ => env.ruse(&["delete", "--force", &id]),
        };
        assert!(out.status.success(), "{how}: {}", stderr(&out));
        if how == "kill --all" {
            env.wait_status(&id, "stopped");
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{how} of a paused container took {:?}",
            t.elapsed()
        );
        delete(&env, &id);
    }
}

/// A paused container must still die when it is ended: `delete --force`, `kill --all KILL`
/// and `kill KILL` (which reaches the whole cgroup when there is no pid namespace) thaw it
/// after the SIGKILL. (A task frozen by the v1 freezer acts on SIGKILL only once thawed, and
/// v2's `cgroup.kill` does not thaw a v1 freezer: on a hybrid host every path must thaw it
/// itself.) With and without a pid namespace, created and started; every case is tried
/// before the verdict.
#[test]
fn a_paused_container_dies_of_every_sigkill_path() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "60"]);
    let mut failures = Vec::new();
    for own_pid_ns in [true, false] {
        if !own_pid_ns {
            env.edit(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "pid")
            });
        }
        for started in [true, false] {
            for end in [&["delete", "--force"][..], &["kill", "--all"], &["kill"]] {
                let what = format!("{} (pid ns {own_pid_ns}, started {started})", end.join(" "));
                let id = unique_id("pausedend");
                if started {
                    start(&env, &id);
                } else {
                    env.create(&id);
                }
                assert!(env.ruse(&["pause", &id]).status.success(), "{what}");
                assert_eq!(env.state(&id)["status"], "paused", "{what}");
                let mut args = end.to_vec();
                args.push(&id);
                if end[0] == "kill" {
                    args.push("KILL");
                }
                let out = env.ruse(&args);
                let verdict = if !out.status.success() {
                    Err(stderr(&out))
                } else if end[0] == "kill" {
                    // Dead within a bound, not left frozen with the signal pending.
                    let gone = Instant::now() + Duration::from_secs(5);
                    loop {
                        let status = env.state(&id)["status"].clone();
                        if status == "stopped" {
                            break Ok(());
                        }
                        if Instant::now() > gone {
                            break Err(format!("still {status} 5 s after the SIGKILL"));
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                } else {
                    Ok(())
                };
                if let Err(e) = verdict {
                    failures.push(format!("{what}: {e}"));
                    // Leave nothing frozen behind.
                    let _ = env.ruse(&["resume", &id]);
                }
                delete(&env, &id);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn device_rules_deny_with_eperm() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&[
        "sh",
        "-c",
        "head -c1 /dev/sdb; echo sdb-read=$?; echo x > /dev/sda; echo sda-write=$?; \
         head -c1 /dev/sda; echo sda-read=$?; echo x > /dev/null; echo null=$?",
    ]);
    env.edit(|c| {
        c["linux"]["devices"] = json!([
            {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0},
            {"path": "/dev/sdb", "type": "b", "major": 8, "minor": 16}
        ]);
        c["linux"]["resources"] = json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"}
        ]});
    });
    let id = unique_id("dev");
    let out = env.run(&id);
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(
        o.contains("sdb-read=1") && o.contains("sda-write=1"),
        "{o}{e}"
    );
    assert_eq!(e.matches("Operation not permitted").count(), 2, "{e}");
    // Reading sda is allowed: whatever happens next is the driver's business, not EPERM.
    let sda_read = e
        .lines()
        .find(|l| l.contains("head: /dev/sda"))
        .unwrap_or("");
    assert!(!sda_read.contains("not permitted"), "{e}");
    assert!(
        o.contains("null=0"),
        "the default devices stay allowed: {o}"
    );
    env.assert_clean(&id);
}

#[test]
fn one_device_program_after_create_update_and_reuse() {
    if !common::root_or_skip() {
        return;
    }
    let me = std::process::id() as i32;
    if !dir(me, "devices", "devices").v2 {
        // v1 devices controller: no programs (cgroups_v2ns.rs covers v2 on hybrid hosts).
        return;
    }
    // A cgroup the test makes outlives each container, with whatever programs it carries.
    let name = unique_id("reuse");
    let cg = mount_for("devices", "devices").unwrap().join(&name);
    std::fs::create_dir(&cg).unwrap();
    let _rm = common::RmDirOnDrop(cg.clone());
    let env = Env::new(&["sleep", "60"]);
    env.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{name}")));
    let progs = || common::bpf::device_programs(&cg);
    for round in 0..2 {
        let id = unique_id("reuse");
        let p = start(&env, &id);
        assert_eq!(dir(p, "devices", "devices").path, cg);
        assert_eq!(progs(), 1, "round {round}: after create");
        let out = env.ruse(&["update", "--pids-limit", "50", &id]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(progs(), 1, "round {round}: after update");
        delete(&env, &id);
        assert!(cg.exists(), "a cgroup ruse did not make is kept");
    }
}

#[test]
fn update_changes_live_limits() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "60"]);
    env.edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 33554432}, "pids": {"limit": 20}})
    });
    let id = unique_id("upd");
    let p = start(&env, &id);
    let out = env.ruse(&[
        "update",
        "--memory",
        "64m",
        "--pids-limit",
        "30",
        "--cpu-share",
        "256",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "100000",
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (mem, cpu) = (dir(p, "memory", "memory"), dir(p, "cpu", "cpu"));
    let limit = if mem.v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(mem.read(limit), "67108864");
    assert_eq!(dir(p, "pids", "pids").read("pids.max"), "30");
    if cpu.v2 {
        assert_eq!(cpu.read("cpu.weight"), "35");
        assert_eq!(cpu.read("cpu.max"), "20000 100000");
    } else {
        assert_eq!(cpu.read("cpu.shares"), "256");
        assert_eq!(cpu.read("cpu.cfs_quota_us"), "20000");
    }
    // -r - reads LinuxResources JSON from stdin, and overrides the flags.
    let mut child = env
        .cmd()
        .args(["update", "-r", "-", "--memory", "1g", &id])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"memory": {"limit": 50331648}, "pids": {"limit": -1}}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mem.read(limit), "50331648");
    assert_eq!(dir(p, "pids", "pids").read("pids.max"), "max");
    let saved: Value =
        serde_json::from_slice(&std::fs::read(env.root.join(&id).join("state.json")).unwrap())
            .unwrap();
    assert_eq!(
        saved["config"]["linux"]["resources"]["memory"]["limit"],
        50331648
    );
    let bad = env.ruse(&["update", "--memory", "lots", &id]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("--memory"), "{}", stderr(&bad));
    assert!(env.ruse(&["kill", &id, "KILL"]).status.success());
    env.wait_status(&id, "stopped");
    let stopped = env.ruse(&["update", "--memory", "64m", &id]);
    assert!(
        stderr(&stopped).contains("container not running"),
        "{}",
        stderr(&stopped)
    );
    delete(&env, &id);
}

#[test]
fn ps_lists_the_container_processes() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sh", "-c", "sleep 60 & sleep 60"]);
    let id = unique_id("ps");
    let p = start(&env, &id);
    wait_for("two sleeps", || {
        let out = env.ruse(&["ps", "--format", "json", &id]);
        serde_json::from_slice::<Vec<i32>>(&out.stdout).is_ok_and(|v| v.len() == 2)
    });
    let out = env.ruse(&["ps", "-f", "json", &id]);
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(pids.contains(&p), "{pids:?}");
    let table = env.ruse(&["ps", &id]);
    assert!(table.status.success(), "{}", stderr(&table));
    let t = stdout(&table);
    assert!(t.lines().next().unwrap().contains("PID"), "{t}");
    assert_eq!(t.lines().count(), 3, "{t}");
    let custom = env.ruse(&["ps", &id, "-o", "pid,comm"]);
    let c = stdout(&custom);
    assert!(
        c.lines().skip(1).all(|l| l.trim_end().ends_with("sleep")),
        "{c}"
    );
    delete(&env, &id);
}

#[test]
fn kill_reaches_every_process_without_a_pid_namespace() {
    if !common::root_or_skip() {
        return;
    }
    for (sig, all) in [("KILL", false), ("TERM", true)] {
        let env = Env::new(&["sh", "-c", "sleep 61 & sleep 62 & exec sleep 63"]);
        env.edit(|c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "pid");
        });
        let id = unique_id("nopidns");
        let p = start(&env, &id);
        let cg = dir(p, "pids", "pids");
        let procs = || cg.read("cgroup.procs").lines().count();
        wait_for("three processes", || procs() == 3);
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id.as_str(), sig]);
        assert!(env.ruse(&args).status.success());
        // Without a pid namespace, init's death alone would leave the other two running.
        wait_for("every process to die", || !cg.path.exists() || procs() == 0);
        env.wait_status(&id, "stopped");
        delete(&env, &id);
    }
}

#[test]
fn busy_or_frozen_cgroups_are_refused() {
    if !common::root_or_skip() {
        return;
    }
    let me = std::process::id() as i32;
    let env = Env::new(&["true"]);
    let b = env.bundle();
    // A cgroup that already holds a process.
    let id = unique_id("busy");
    let busy = mount_for("pids", "pids").unwrap().join(&id);
    std::fs::create_dir(&busy).unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    std::fs::write(busy.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    env.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{id}")));
    let out = env.ruse(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already has processes"),
        "{}",
        stderr(&out)
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    wait_for("the sleeper to leave", || {
        std::fs::remove_dir(&busy).is_ok()
    });
    env.assert_clean(&id);
    // A frozen one.
    let id = unique_id("frozen");
    let f = dir(me, "freezer", "freezer");
    let frozen = mount_for("freezer", "freezer").unwrap().join(&id);
    std::fs::create_dir(&frozen).unwrap();
    let (file, val) = if f.v2 {
        ("cgroup.freeze", "1")
    } else {
        ("freezer.state", "FROZEN")
    };
    std::fs::write(frozen.join(file), val).unwrap();
    env.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{id}")));
    let out = env.ruse(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is frozen"), "{}", stderr(&out));
    std::fs::remove_dir(&frozen).unwrap();
    env.assert_clean(&id);
}

#[test]
fn cgroups_path_rules() {
    if !common::root_or_skip() {
        return;
    }
    let me = std::process::id() as i32;
    let own = dir(me, "pids", "pids");
    let env = Env::new(&["sleep", "60"]);
    // Empty: the id, under the runtime's own cgroup (its parent on pure v2, like runc).
    let base = if common::cgroup::pure_v2() {
        own.path.parent().unwrap().to_path_buf()
    } else {
        own.path.clone()
    };
    let id = unique_id("path");
    let p = start(&env, &id);
    assert_eq!(dir(p, "pids", "pids").path, base.join(&id));
    delete(&env, &id);
    // Relative: under the same place.
    let id = unique_id("path");
    env.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("{id}-a/b")));
    let p = start(&env, &id);
    assert_eq!(dir(p, "pids", "pids").path, base.join(format!("{id}-a/b")));
    delete(&env, &id);
    assert!(
        !base.join(format!("{id}-a")).exists(),
        "parents ruse made are removed"
    );
    // Absolute: from the hierarchy root.
    let id = unique_id("path");
    env.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{id}-abs")));
    let p = start(&env, &id);
    let root = mount_for("pids", "pids").unwrap();
    assert_eq!(dir(p, "pids", "pids").path, root.join(format!("{id}-abs")));
    delete(&env, &id);
}

#[test]
fn relative_cgroups_path_cannot_climb_out_of_the_runtime_cgroup() {
    if !common::root_or_skip() {
        return;
    }
    // ruse runs in <root>/<id>-a/b/own, so ".." has somewhere to climb to.
    let id = unique_id("climb");
    let root = mount_for("pids", "pids").unwrap();
    let a = root.join(format!("{id}-a"));
    let own = a.join("b/own");
    std::fs::create_dir_all(&own).unwrap();
    // Dropped in order: the leaf first.
    let _rm = [
        common::RmDirOnDrop(own.clone()),
        common::RmDirOnDrop(a.join("b")),
        common::RmDirOnDrop(a.clone()),
    ];
    let env = Env::new(&["sleep", "60"]);
    env.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("../../../{id}-x")));
    let b = env.bundle();
    let join = "echo 0 > \"$0/cgroup.procs\" && exec \"$@\"";
    let wrapper = ["sh", "-c", join, own.to_str().unwrap()];
    let out = env.ruse_via(&wrapper, &["create", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    // runc's CleanPath drops the leading ".." before joining: below the own cgroup (its
    // parent on pure v2), never at the root as a plain join-then-clean would put it.
    let base = if common::cgroup::pure_v2() {
        a.join("b")
    } else {
        own.clone()
    };
    let p = pid(&env, &id);
    assert_eq!(dir(p, "pids", "pids").path, base.join(format!("{id}-x")));
    assert!(!root.join(format!("{id}-x")).exists());
    delete(&env, &id);
}

#[test]
fn containers_sharing_a_parent_cgroup_delete_in_any_order() {
    if !common::root_or_skip() {
        return;
    }
    // Two bundles, so checking that a left nothing does not trip over b's processes.
    let (env_a, env_b) = (Env::new(&["sleep", "60"]), Env::new(&["sleep", "60"]));
    let pod = unique_id("pod");
    let (a, b) = (unique_id("a"), unique_id("b"));
    env_a.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{pod}/{a}")));
    let pa = start(&env_a, &a);
    env_b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{pod}/{b}")));
    let pb = start(&env_b, &b);
    let parent = dir(pa, "pids", "pids").path.parent().unwrap().to_path_buf();
    assert_eq!(dir(pb, "pids", "pids").path.parent().unwrap(), parent);
    // a made the pod's cgroup, but b is still in it: a's delete leaves it and succeeds.
    delete(&env_a, &a);
    assert!(parent.exists());
    delete(&env_b, &b);
    // Neither removes a parent it did not make alone (runc removes none): clean up by hand.
    for h in common::cgroup::hierarchy_mounts() {
        let _ = std::fs::remove_dir(h.join(&pod));
    }
    assert!(common::cgroup_dirs_named(&pod).is_empty());
}

#[test]
fn features_report_cgroup_support() {
    let out = std::process::Command::new(common::RUSE)
        .arg("features")
        .output()
        .unwrap();
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        f["linux"]["cgroup"],
        json!({"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true})
    );
}

#[test]
fn kernel_refusals_name_the_field_and_leave_nothing() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    for (res, field) in [
        // memory+swap below memory: the kernel (v1) or ruse's conversion (v2) refuses.
        (
            json!({"memory": {"limit": 67108864, "swap": 33554432}}),
            "linux.resources.memory.swap",
        ),
        // No such CPU: refused by the kernel after the directories exist.
        (json!({"cpu": {"cpus": "4095"}}), "linux.resources.cpu.cpus"),
    ] {
        env.edit(|c| c["linux"]["resources"] = res.clone());
        let id = unique_id("kref");
        let b = env.bundle();
        let out = env.ruse(&["create", "--bundle", b.to_str().unwrap(), &id]);
        assert_eq!(out.status.code(), Some(1), "{res}");
        assert!(stderr(&out).contains(field), "{res}: {}", stderr(&out));
        env.assert_clean(&id);
    }
}

#[test]
fn unified_keys_write_raw_v2_files() {
    if !common::root_or_skip() {
        return;
    }
    let me = std::process::id() as i32;
    let env = Env::new(&["sleep", "60"]);
    env.edit(|c| {
        c["linux"]["resources"] =
            json!({"memory": {"limit": 67108864}, "unified": {"memory.high": "50331648"}})
    });
    let id = unique_id("unif");
    if !dir(me, "memory", "memory").v2 {
        // memory is a v1 controller here: there is no v2 file to write.
        let b = env.bundle();
        let out = env.ruse(&["create", "--bundle", b.to_str().unwrap(), &id]);
        assert_eq!(out.status.code(), Some(1));
        let e = stderr(&out);
        let why = if common::cgroup::v2_mount().is_some() {
            "the memory controller is bound to cgroup v1 on this host"
        } else {
            "needs cgroup v2"
        };
        assert!(
            e.contains("linux.resources.unified") && e.contains(why),
            "{e}"
        );
        env.assert_clean(&id);
        return;
    }
    // Several lines in one value: written line by line (runc's WriteFileByLine), as the
    // kernel takes one device per write of io.max.
    let dev = first_block_device();
    let io = common::cgroup::v2_offers("io") && !dir_of(me, "blkio", "io").is_some_and(|d| !d.v2);
    if io {
        env.edit(|c| {
            c["linux"]["resources"]["unified"]["io.max"] =
                json!(format!("{dev} rbps=1000\n{dev} wiops=5\n"))
        });
    }
    let p = start(&env, &id);
    let mem = dir(p, "memory", "memory");
    assert_eq!(mem.read("memory.high"), "50331648");
    assert_eq!(mem.read("memory.max"), "67108864");
    if io {
        let max = dir(p, "blkio", "io").read("io.max");
        assert_eq!(max, format!("{dev} rbps=1000 wbps=max riops=max wiops=5"));
    }
    delete(&env, &id);
}

/// SECURITY.md 15: `unified` keys are file names inside the container's cgroup, never paths:
/// `..`, `.`, `/` and NUL make a clear error naming the key before anything is written, and
/// nothing is left (on a host without cgroup v2 the keys are refused for that reason first).
#[test]
fn unified_keys_cannot_name_files_outside_the_cgroup() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    for key in [
        "../cgroup.procs",
        "../../cgroup.subtree_control",
        "memory.high/../../cgroup.procs",
        "..",
        ".",
        "cgroup.procs\0x",
    ] {
        env.edit(|c| c["linux"]["resources"] = json!({"unified": {key: "0"}}));
        let id = unique_id("unifesc");
        let b = env.bundle();
        let out = env.ruse(&["create", "--bundle", b.to_str().unwrap(), &id]);
        let why = if common::cgroup::v2_mount().is_some() {
            "must be a plain file name"
        } else {
            "needs cgroup v2"
        };
        common::assert_error(key, &out, &["linux.resources.unified", why]);
        env.assert_clean(&id);
    }
}

/// "major:minor" of the first block device the host lists (the VM has ram0).
fn first_block_device() -> String {
    std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .map(|d| d.trim().to_string())
        .min()
        .expect("a block device")
}

#[test]
fn check_before_update_refuses_a_limit_below_usage() {
    if !common::root_or_skip() {
        return;
    }
    // 16M kept in the container's tmpfs, charged to its memory cgroup.
    let env = Env::new(&[
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/shm/keep bs=1M count=16 2>/dev/null; touch /dev/shm/ready; sleep 60",
    ]);
    env.edit(|c| c["linux"]["resources"] = json!({"memory": {"limit": 134217728}}));
    let id = unique_id("cbu");
    let p = start(&env, &id);
    let mem = dir(p, "memory", "memory");
    let ready = std::path::PathBuf::from(format!("/proc/{p}/root/dev/shm/ready"));
    wait_for("16M in tmpfs", || ready.exists());
    let req = env.dir.join("res.json");
    std::fs::write(
        &req,
        r#"{"memory": {"limit": 8388608, "checkBeforeUpdate": true}}"#,
    )
    .unwrap();
    let out = env.ruse(&["update", "-r", req.to_str().unwrap(), &id]);
    if mem.v2 {
        assert_eq!(out.status.code(), Some(1));
        let e = stderr(&out);
        assert!(
            e.contains("linux.resources.memory.limit: rejecting limit 8388608"),
            "{e}"
        );
        assert_eq!(mem.read("memory.max"), "134217728", "left as it was");
    }
    // On v1 the kernel checks by itself (reclaiming first), so either outcome is the kernel's.
    delete(&env, &id);
}

/// The container's /sys/fs/cgroup shows its own cgroup, whether or not it has a cgroup
/// namespace: with one the kernel roots the fresh mounts there; without one ruse binds the
/// container's directory of each host hierarchy (as runc does on v1), so neither the root
/// cgroup's limits nor the other containers' cgroups are visible.
#[test]
fn cgroup_mount_shows_the_containers_own_cgroup() {
    if !common::root_or_skip() {
        return;
    }
    for cgroupns in [true, false] {
        let env = Env::new(&[
            "sh",
            "-c",
            "cat /proc/self/mountinfo; echo ---; \
            cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes \
                /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null; \
            ls /sys/fs/cgroup /sys/fs/cgroup/memory 2>/dev/null | grep -c '^t[0-9]*-' || true",
        ]);
        env.edit(|c| {
            c["linux"]["resources"] = json!({"memory": {"limit": 50331648}, "pids": {"limit": 17}});
            if !cgroupns {
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "cgroup");
            }
        });
        let id = unique_id(if cgroupns { "cgns" } else { "nocgns" });
        let out = env.run(&id);
        assert!(out.status.success(), "run {id}: {}", stderr(&out));
        let text = stdout(&out);
        let (mountinfo, values) = text.split_once("---\n").unwrap();
        let vals: Vec<&str> = values.lines().collect();
        assert_eq!(vals[..2], ["50331648", "17"], "cgroupns {cgroupns}: {text}");
        // No directory of another test container (ids start with t<pid>-) is visible.
        assert_eq!(vals[2], "0", "cgroupns {cgroupns}: {text}");
        for l in mountinfo.lines().filter(|l| l.contains(" - cgroup")) {
            let root = l.split(' ').nth(3).unwrap();
            if cgroupns {
                assert_eq!(root, "/", "{l}");
            } else {
                assert!(root.ends_with(&format!("/{id}")), "{id}: {l}");
            }
        }
        assert!(
            mountinfo.lines().any(|l| l.contains(" - cgroup")),
            "{mountinfo}"
        );
        env.assert_clean(&id);
    }
}

/// As runc: `kill --all` of a stopped container still reaches what its cgroup holds (a child
/// left behind when there is no pid namespace), which containerd's shim relies on; a plain
/// `kill` of it is refused.
#[test]
fn kill_all_of_a_stopped_container_reaches_its_leftovers() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sh", "-c", "sleep 1000 & exit 0"]);
    env.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    let id = unique_id("killstopped");
    start(&env, &id);
    env.wait_status(&id, "stopped");
    let rootfs = env.rootfs();
    wait_for("the orphan sleep", || {
        !common::processes_of(&rootfs).is_empty()
    });
    let plain = env.ruse(&["kill", &id, "9"]);
    common::assert_error("kill of a stopped container", &plain, &["not running"]);
    let out = env.ruse(&["kill", "--all", &id, "9"]);
    assert!(out.status.success(), "kill --all: {}", stderr(&out));
    wait_for("the orphan to die", || {
        common::processes_of(&rootfs).is_empty()
    });
    delete(&env, &id);
}

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
fn cpu_idle_and_block_io() {
    if !common::root_or_skip() {
        return;
    }
    // Throttling needs a block device that exists: the first one the host lists.
    let dev = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .map(|d| d.trim().to_string())
        .min()
        .expect("a block device");
    let (ma, mi) = dev.split_once(':').unwrap();
    let (ma, mi): (u64, u64) = (ma.parse().unwrap(), mi.parse().unwrap());
    let env = Env::new(&["sleep", "60"]);
    env.edit(|c| {
        c["linux"]["resources"] = json!({
            "cpu": {"idle": 1},
            "blockIO": {"weight": 300,
                        "throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 1048576}]}
        });
    });
    let id = unique_id("io");
    let b = env.bundle();
    let out = env.ruse(&["create", "--bundle", b.to_str().unwrap(), &id]);
    if !out.status.success() {
        // A host without a weight knob (no BFQ, no io.cost) must say so, naming the field.
        let e = stderr(&out);
        assert!(
            e.contains("linux.resources.blockIO.weight: this host has none of"),
            "{e}"
        );
        env.assert_clean(&id);
        return;
    }
    let p = pid(&env, &id);
    assert_eq!(dir(p, "cpu", "cpu").read("cpu.idle"), "1");
    let io = dir(p, "blkio", "io");
    if io.v2 {
        // BFQ takes the blkio value; io.weight its own scale: 1 + (300-10)*9999/990.
        let w = if io.has("io.bfq.weight") {
            io.read("io.bfq.weight")
        } else {
            io.read("io.weight")
        };
        assert!(w == "default 300" || w == "default 2930", "{w}");
        let max = io.read("io.max");
        assert!(max.contains(&format!("{dev} rbps=1048576")), "{max}");
    } else {
        let w = if io.has("blkio.bfq.weight") {
            io.read("blkio.bfq.weight")
        } else {
            io.read("blkio.weight")
        };
        assert!(w.contains("300"), "{w}");
        let t = io.read("blkio.throttle.read_bps_device");
        assert_eq!(t, format!("{dev} 1048576"));
    }
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
    assert!(
        lines.contains(&json!({"type": "oom", "id": id})),
        "{lines:?}"
    );
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
    let p = start(&env, &id);
    let mem = dir(p, "memory", "memory");
    assert_eq!(mem.read("memory.high"), "50331648");
    assert_eq!(mem.read("memory.max"), "67108864");
    delete(&env, &id);
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

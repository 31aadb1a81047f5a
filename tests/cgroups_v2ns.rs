//! cgroup v2 code paths for real on a hybrid host: ruse runs in a private mount namespace
//! where the host's cgroup2 tree is mounted over /sys/fs/cgroup, so it sees a pure-v2 layout
//! (with the controllers v1 leaves free, e.g. hugetlb, plus v2's own freezer, `cgroup.kill`
//! and BPF device filter). The host's hierarchies are never moved or unmounted. On a pure v2
//! host these tests have nothing to add (the main suite runs on v2 there) and return early.
//! Needs root.

mod common;

use common::bpf::device_programs;
use common::cgroup::{dir_of, pure_v2, v2_mount, CgDir};
use common::{stderr, stdout, unique_id, Env, RUSE};
use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// ruse inside a private mount namespace with cgroup2 on /sys/fs/cgroup.
fn v2ruse(env: &Env, args: &[&str]) -> Output {
    let detached = args.first() == Some(&"create");
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec \"$0\" \"$@\"")
        .arg(RUSE)
        .arg("--root")
        .arg(&env.root)
        .args(args)
        .stdin(Stdio::null());
    if detached {
        // The container inherits stdio: files, not pipes this test would wait on.
        let (o, e) = (env.dir.join("v2out.txt"), env.dir.join("v2err.txt"));
        let status = c
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        return Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        };
    }
    c.output().unwrap()
}

/// Deletes the container through the same namespace, even when a test fails.
struct Ctr<'a> {
    env: &'a Env,
    id: String,
}

impl Drop for Ctr<'_> {
    fn drop(&mut self) {
        let _ = v2ruse(self.env, &["delete", "--force", &self.id]);
    }
}

fn usable() -> bool {
    if !common::root_or_skip() {
        return false;
    }
    if pure_v2() || v2_mount().is_none() {
        eprintln!("skipped: needs a hybrid host (pure v2 runs the main cgroup tests on v2)");
        return false;
    }
    true
}

fn create<'a>(env: &'a Env, tag: &str) -> (Ctr<'a>, i32, CgDir) {
    let id = unique_id(tag);
    let b = env.bundle();
    let out = v2ruse(env, &["create", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let st: Value = serde_json::from_slice(&v2ruse(env, &["state", &id]).stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap() as i32;
    let d = dir_of(pid, "-", "freezer").unwrap();
    assert!(d.v2, "{d:?}");
    (Ctr { env, id }, pid, d)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn v2_freezer_pause_resume_and_cgroup_kill() {
    if !usable() {
        return;
    }
    let env = Env::new(&["sh", "-c", "sleep 61 & sleep 62 & exec sleep 63"]);
    env.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid")
    });
    let (c, _pid, d) = create(&env, "v2frz");
    assert_eq!(d.path, v2_mount().unwrap().join(&c.id));
    // Created containers can be paused too (runc allows it).
    assert!(v2ruse(&env, &["pause", &c.id]).status.success());
    assert_eq!(d.read("cgroup.freeze"), "1");
    assert!(d.read("cgroup.events").contains("frozen 1"));
    let st: Value = serde_json::from_slice(&v2ruse(&env, &["state", &c.id]).stdout).unwrap();
    assert_eq!(st["status"], "paused");
    assert!(v2ruse(&env, &["resume", &c.id]).status.success());
    assert_eq!(d.read("cgroup.freeze"), "0");
    assert!(v2ruse(&env, &["start", &c.id]).status.success());
    wait_for("three processes", || {
        d.read("cgroup.procs").lines().count() == 3
    });
    // No pid namespace: SIGKILL goes to the whole cgroup through cgroup.kill.
    assert!(v2ruse(&env, &["kill", &c.id, "9"]).status.success());
    wait_for("an empty cgroup", || d.read("cgroup.procs").is_empty());
    let out = v2ruse(&env, &["delete", &c.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_clean(&c.id);
}

#[test]
fn v2_bpf_device_filter_denies_with_eperm() {
    if !usable() {
        return;
    }
    let env = Env::new(&[
        "sh",
        "-c",
        "head -c1 /dev/sdb; echo sdb-read=$?; echo x > /dev/sda; echo sda-write=$?; \
         echo x > /dev/null; echo null=$?; exec sleep 30",
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
    let (c, _pid, d) = create(&env, "v2dev");
    assert_eq!(device_programs(&d.path), 1);
    // update re-attaches the saved rules (as runc's Set does): replaced, not stacked.
    let empty = env.dir.join("empty.json");
    std::fs::write(&empty, "{}").unwrap();
    let upd = v2ruse(&env, &["update", "-r", empty.to_str().unwrap(), &c.id]);
    assert!(upd.status.success(), "{}", stderr(&upd));
    assert_eq!(device_programs(&d.path), 1);
    assert!(v2ruse(&env, &["start", &c.id]).status.success());
    let out_file = env.dir.join("v2out.txt");
    wait_for("the probes", || {
        std::fs::read_to_string(&out_file).is_ok_and(|s| s.contains("null="))
    });
    let o = std::fs::read_to_string(&out_file).unwrap();
    let e = std::fs::read_to_string(env.dir.join("v2err.txt")).unwrap();
    assert!(
        o.contains("sdb-read=1") && o.contains("sda-write=1"),
        "{o}{e}"
    );
    assert_eq!(e.matches("Operation not permitted").count(), 2, "{e}");
    assert!(o.contains("null=0"), "{o}");
    let id = c.id.clone();
    drop(c);
    env.assert_clean(&id);
}

#[test]
fn v2_reused_cgroup_keeps_one_device_program() {
    if !usable() {
        return;
    }
    // An existing cgroup (absolute cgroupsPath) outlives the container that used it, and so
    // does its device program: the next container must replace it, not add a second.
    let name = unique_id("v2reuse");
    let host = v2_mount().unwrap().join(&name);
    std::fs::create_dir(&host).unwrap();
    let _rm = common::RmDirOnDrop(host.clone());
    let env = Env::new(&["sleep", "30"]);
    env.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{name}")));
    for round in 0..3 {
        let (c, _pid, d) = create(&env, "v2reuse");
        assert_eq!(d.path, host, "round {round}");
        assert_eq!(device_programs(&host), 1, "round {round}");
        let id = c.id.clone();
        drop(c);
        env.assert_clean(&id);
        assert!(host.exists(), "a cgroup ruse did not make is kept");
    }
}

#[test]
fn v2_hugetlb_unified_stats_and_missing_controllers() {
    if !usable() {
        return;
    }
    let offers = std::fs::read_to_string(v2_mount().unwrap().join("cgroup.controllers")).unwrap();
    let env = Env::new(&["sleep", "30"]);
    // v1 owns memory here, so the v2 tree lacks it: refused by field, nothing left behind.
    for (res, want) in [
        (json!({"memory": {"limit": 1048576}}), "linux.resources.memory: the memory controller is not available"),
        (json!({"unified": {"memory.max": "1048576"}}), "linux.resources.unified.memory.max: the memory controller is not available in the cgroup v2 tree"),
        (json!({"network": {"classID": 1}}), "not supported: linux.resources.network.classID on cgroup v2"),
        (json!({"cpu": {"realtimeRuntime": 10}}), "linux.resources.cpu"),
    ] {
        env.edit(|c| c["linux"]["resources"] = res.clone());
        let id = unique_id("v2bad");
        let b = env.bundle();
        let out = v2ruse(&env, &["create", "--bundle", b.to_str().unwrap(), &id]);
        assert_eq!(out.status.code(), Some(1), "{res}");
        assert!(stderr(&out).contains(want), "{res}: {}", stderr(&out));
        env.assert_clean(&id);
    }
    if !offers.split_whitespace().any(|c| c == "hugetlb") {
        return;
    }
    env.edit(|c| {
        c["linux"]["resources"] = json!({
            "hugepageLimits": [{"pageSize": "2MB", "limit": 8388608}],
            "unified": {"hugetlb.2MB.rsvd.max": "4194304"}
        })
    });
    let (c, _pid, d) = create(&env, "v2huge");
    assert_eq!(d.read("hugetlb.2MB.max"), "8388608");
    // unified is written last, so it wins over hugepageLimits' reservation limit.
    assert_eq!(d.read("hugetlb.2MB.rsvd.max"), "4194304");
    let out = v2ruse(&env, &["events", "--stats", &c.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ev: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["data"]["hugetlb"]["2MB"], json!({"failcnt": 0}));
    assert!(ev["data"]["cpu"]["psi"]["some"]["total"].is_u64(), "{ev}");
    let upd = v2ruse(&env, &["update", "-r", "/dev/stdin", &c.id]);
    // /dev/stdin is null here: an empty document is a clear parse error.
    assert_eq!(upd.status.code(), Some(1));
    assert!(
        stderr(&upd).contains("--resources /dev/stdin"),
        "{}",
        stderr(&upd)
    );
    let id = c.id.clone();
    drop(c);
    env.assert_clean(&id);
}

//! The guarantees of ../shared/SECURITY.md: exclusive create, atomic state, PID reuse, a
//! killed create leaves nothing, foreground `run` and its exit status, `list`/`state` during
//! concurrent deletes. Needs root. `RUSE_STRESS=1` scales the loops up (and
//! `RUSE_KILL_RUNS=N` sets the number of killed creates).

mod common;

use common::{assert_error, stderr, unique_id, Env};
use serde_json::{json, Value};
use std::fs;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

fn stress() -> bool {
    std::env::var("RUSE_STRESS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A small xorshift generator, seeded from the clock (the seed is printed on failure).
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("rng seed {seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// `ruse <args>` in the background, its output to files in the env (a created container
/// keeps ruse's stdio, so pipes would never close).
fn spawn(env: &Env, args: &[&str], tag: &str) -> Child {
    env.cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(env.dir.join(format!("{tag}.out"))).unwrap())
        .stderr(fs::File::create(env.dir.join(format!("{tag}.err"))).unwrap())
        .spawn()
        .unwrap()
}

fn spawned_stderr(env: &Env, tag: &str) -> String {
    fs::read_to_string(env.dir.join(format!("{tag}.err"))).unwrap_or_default()
}

/// `state` is either a valid state document for `id` or "does not exist".
fn check_state(out: &Output, id: &str) -> Result<Option<Value>, String> {
    if out.status.success() {
        let v: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("unparsable state ({e}): {:?}", common::stdout(out)))?;
        let ok = v["id"] == id
            && ["created", "running", "stopped"].contains(&v["status"].as_str().unwrap_or(""))
            && v["pid"].is_i64();
        return if ok {
            Ok(Some(v))
        } else {
            Err(format!("bad state {v}"))
        };
    }
    let err = stderr(out);
    if out.status.code() == Some(1) && err.contains("does not exist") && err.lines().count() == 1 {
        return Ok(None);
    }
    Err(format!("state {id}: {out:?}"))
}

fn state_file(env: &Env, id: &str) -> Vec<u8> {
    fs::read(env.root.join(id).join("state.json")).unwrap()
}

#[test]
fn exclusive_create_32_in_parallel() {
    if !common::root_or_skip() {
        return;
    }
    let env = Arc::new(Env::new(&["sleep", "30"]));
    let id = unique_id("excl");
    let burst = |n: usize| -> Vec<Output> {
        let barrier = Arc::new(Barrier::new(n));
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let (env, id, barrier) = (env.clone(), id.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let b = env.bundle();
                    barrier.wait();
                    env.ruse(&["create", "--bundle", b.to_str().unwrap(), &id])
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    };
    let outs = burst(32);
    let winners = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "{outs:#?}");
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert_error("loser", o, &["container with id exists"]);
    }
    let st = env.state(&id);
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(
        common::processes_of(&env.rootfs()),
        vec![pid as i32],
        "exactly one init"
    );
    let saved = state_file(&env, &id);
    // A second wave, certainly after the winner: nothing changes, byte for byte.
    for o in burst(16) {
        assert_error("late loser", &o, &["container with id exists"]);
    }
    assert_eq!(state_file(&env, &id), saved);
    assert_eq!(env.state(&id)["pid"].as_i64(), Some(pid));
    assert_eq!(common::processes_of(&env.rootfs()), vec![pid as i32]);
    assert!(env.ruse(&["start", &id]).status.success());
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

#[test]
fn state_always_parses_while_another_container_cycles() {
    if !common::root_or_skip() {
        return;
    }
    let env = Arc::new(Env::new(&["sleep", "30"]));
    let (stable, cycled) = (unique_id("stable"), unique_id("cycled"));
    env.create(&stable);
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicUsize::new(0));
    let cycler = {
        let (env, id, stop, cycles) = (env.clone(), cycled.clone(), stop.clone(), cycles.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                env.create(&id);
                assert!(env.ruse(&["start", &id]).status.success());
                assert!(env.ruse(&["kill", &id, "KILL"]).status.success());
                env.wait_status(&id, "stopped");
                assert!(env.ruse(&["delete", &id]).status.success());
                cycles.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let calls = if stress() { 5000 } else { 1000 };
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (env, next, errors) = (env.clone(), next.clone(), errors.clone());
            let (stable, cycled) = (stable.clone(), cycled.clone());
            std::thread::spawn(move || loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= calls {
                    break;
                }
                let res = match n % 3 {
                    0 => check_state(&env.ruse(&["state", &stable]), &stable)
                        .and_then(|v| v.ok_or_else(|| "stable container vanished".into()))
                        .map(drop),
                    1 => check_state(&env.ruse(&["state", &cycled]), &cycled).map(drop),
                    _ => {
                        let out = env.ruse(&["list", "--format", "json"]);
                        match serde_json::from_slice::<Vec<Value>>(&out.stdout) {
                            Ok(_) if out.status.success() => Ok(()),
                            _ => Err(format!("list: {out:?}")),
                        }
                    }
                };
                if let Err(e) = res {
                    errors.lock().unwrap().push(e);
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    cycler.join().unwrap();
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} bad answers: {:#?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(
        cycles.load(Ordering::Relaxed) >= 1,
        "the cycler never finished a cycle"
    );
    assert!(env.ruse(&["delete", "--force", &stable]).status.success());
    env.assert_clean(&stable);
    env.assert_clean(&cycled);
}

/// After init exits its pid may be reused. ruse keeps init's start time next to its pid: a
/// process with that pid but another start time is not the container. The reuse is made by
/// pointing the saved pid at a live impostor.
#[test]
fn a_reused_pid_is_never_the_container() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    let id = unique_id("reuse");
    env.create(&id);
    let real = env.state(&id)["pid"].as_i64().unwrap();
    assert!(env.ruse(&["start", &id]).status.success());
    env.wait_status(&id, "stopped");
    let mut impostor = Command::new("sleep").arg("30").spawn().unwrap();
    let path = env.root.join(&id).join("state.json");
    let mut facts: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        facts["pid"].as_i64(),
        Some(real),
        "state.json keeps init's pid as `pid`"
    );
    assert!(facts["start_time"].is_u64(), "and its start time: {facts}");
    facts["pid"] = json!(impostor.id());
    fs::write(&path, facts.to_string()).unwrap();
    let st = env.state(&id);
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0);
    let out = env.ruse(&["kill", &id, "KILL"]);
    assert_error("kill", &out, &["container not running"]);
    let out = env.ruse(&["kill", "--all", &id, "KILL"]);
    assert_error("kill --all", &out, &["container not running"]);
    let list = env.ruse(&["list", "--format", "json"]);
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["status"], "stopped");
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    assert_eq!(
        impostor.try_wait().unwrap(),
        None,
        "the impostor was killed"
    );
    let _ = impostor.kill();
    let _ = impostor.wait();
    env.assert_clean(&id);
}

/// SIGKILL `ruse create` at a random moment (half of the runs within the time a create
/// takes, half within 0–200 ms): `state` is valid or "does not exist", `delete --force` exits
/// 0, and nothing at all is left.
#[test]
fn a_killed_create_leaves_nothing() {
    if !common::root_or_skip() {
        return;
    }
    let runs: usize = std::env::var("RUSE_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if stress() { 500 } else { 100 });
    let env = Env::new(&["sleep", "30"]);
    let b = env.bundle();
    // How long a whole create takes here.
    let t = Instant::now();
    let id = unique_id("kc");
    env.create(&id);
    let took = t.elapsed().as_micros() as u64;
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    let mut rng = Rng::new();
    let mut outcomes = [0usize; 2];
    for i in 0..runs {
        let id = unique_id("kc");
        let delay = if i % 2 == 0 {
            rng.below(took + took / 5)
        } else {
            rng.below(200_000)
        };
        let mut child = spawn(
            &env,
            &["create", "--bundle", b.to_str().unwrap(), &id],
            "kc",
        );
        std::thread::sleep(Duration::from_micros(delay));
        let _ = child.kill();
        let status = child.wait().unwrap();
        let state = env.ruse(&["state", &id]);
        let known = check_state(&state, &id)
            .unwrap_or_else(|e| panic!("run {i} ({delay} us, {status}): {e}"));
        outcomes[known.is_some() as usize] += 1;
        let del = env.ruse(&["delete", "--force", &id]);
        assert_eq!(
            del.status.code(),
            Some(0),
            "run {i} ({delay} us): delete --force: {}",
            stderr(&del)
        );
        // pdeathsig kills an unreleased init; give it a moment to be gone.
        let end = Instant::now() + Duration::from_secs(2);
        while !common::processes_of(&env.rootfs()).is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        let left = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| env.assert_clean(&id)));
        if let Err(e) = left {
            eprintln!(
                "run {i}: killed after {delay} us ({status}); create said: {}",
                spawned_stderr(&env, "kc")
            );
            std::panic::resume_unwind(e);
        }
    }
    eprintln!(
        "{runs} killed creates (a full create takes {took} us): {} left no container, {} a container",
        outcomes[0], outcomes[1]
    );
}

fn no_pid_ns(env: &Env) {
    env.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid")
    });
}

#[test]
fn foreground_run_returns_the_container_status() {
    if !common::root_or_skip() {
        return;
    }
    for (script, code) in [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 42", 42),
        ("exit 255", 255),
    ] {
        let env = Env::new(&["sh", "-c", script]);
        let id = unique_id("status");
        let out = env.run(&id);
        assert_eq!(out.status.code(), Some(code), "{script}: {}", stderr(&out));
        env.assert_clean(&id);
    }
    // Killed from outside (the container is its pid namespace's init): 128 + 9.
    let env = Env::new(&["sleep", "30"]);
    let id = unique_id("status");
    let child = spawn(
        &env,
        &["run", "--bundle", env.bundle().to_str().unwrap(), &id],
        "run",
    );
    let end = Instant::now() + Duration::from_secs(10);
    while !env.ruse(&["state", &id]).status.success() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    env.wait_status(&id, "running");
    assert!(env.ruse(&["kill", &id, "KILL"]).status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        spawned_stderr(&env, "run")
    );
    env.assert_clean(&id);
    // A signal to ruse is forwarded: SIGTERM kills a sleep that is not a namespace init.
    no_pid_ns(&env);
    let id = unique_id("status");
    let child = spawn(
        &env,
        &["run", "--bundle", env.bundle().to_str().unwrap(), &id],
        "run",
    );
    let end = Instant::now() + Duration::from_secs(10);
    while !env.ruse(&["state", &id]).status.success() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    env.wait_status(&id, "running");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        spawned_stderr(&env, "run")
    );
    env.assert_clean(&id);
}

/// Zombies (ppid `pid`, state Z) right now.
fn zombie_children(pid: u32) -> Vec<i32> {
    common::all_pids()
        .into_iter()
        .filter(|p| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.first() == Some(&"Z") && f.get(1) == Some(&pid.to_string().as_str())
        })
        .collect()
}

/// Without a pid namespace, the container's orphans are ruse's (it is their subreaper): it
/// reaps them while it runs, and when init exits the leftovers are killed and reaped too.
#[test]
fn foreground_run_reaps_orphans_and_leaves_nothing() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&[
        "sh",
        "-c",
        "for i in 1 2 3 4; do (sleep 0.05 &); done; (sleep 30 &); sleep 0.8; exit 42",
    ]);
    no_pid_ns(&env);
    let id = unique_id("orphans");
    let child = spawn(
        &env,
        &["run", "--bundle", env.bundle().to_str().unwrap(), &id],
        "run",
    );
    std::thread::sleep(Duration::from_millis(500));
    let zombies = zombie_children(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(
        zombies.is_empty(),
        "ruse left zombies while running: {zombies:?}"
    );
    assert_eq!(
        out.status.code(),
        Some(42),
        "{}",
        spawned_stderr(&env, "run")
    );
    env.assert_clean(&id);
    let leftovers: Vec<i32> = common::all_pids()
        .into_iter()
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default()
                == "sleep\u{0}30\u{0}"
                && fs::read_link(format!("/proc/{p}/root")).ok().as_deref()
                    == Some(env.rootfs().as_path())
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `list` and `state` while containers are deleted (and created) under them.
#[test]
fn list_and_state_tolerate_concurrent_deletes() {
    if !common::root_or_skip() {
        return;
    }
    let env = Arc::new(Env::new(&["sleep", "30"]));
    let rounds = if stress() { 10 } else { 3 };
    for _ in 0..rounds {
        let ids: Vec<String> = (0..8).map(|_| unique_id("vanish")).collect();
        for id in &ids {
            env.create(id);
        }
        let done = Arc::new(AtomicBool::new(false));
        let deleter = {
            let (env, ids, done) = (env.clone(), ids.clone(), done.clone());
            std::thread::spawn(move || {
                for id in &ids {
                    let out = env.ruse(&["delete", "--force", id]);
                    assert!(out.status.success(), "{}", stderr(&out));
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let mut seen = 0;
        while !done.load(Ordering::SeqCst) || seen < 3 {
            seen += 1;
            let out = env.ruse(&["list", "--format", "json"]);
            assert!(out.status.success(), "{}", stderr(&out));
            let v: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
            assert!(v
                .iter()
                .all(|c| ids.iter().any(|id| c["id"] == id.as_str())));
            for args in [vec!["list"], vec!["list", "-q"]] {
                let out = env.ruse(&args);
                assert!(out.status.success(), "{}", stderr(&out));
            }
            for id in &ids {
                check_state(&env.ruse(&["state", id]), id).unwrap();
            }
        }
        deleter.join().unwrap();
        for id in &ids {
            env.assert_clean(id);
        }
    }
    let out = env.ruse(&["list", "--format", "json"]);
    assert_eq!(common::stdout(&out).trim(), "[]");
}

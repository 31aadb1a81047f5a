//! The guarantees of ../shared/SECURITY.md: exclusive create, atomic state (while another
//! container cycles, and while one pauses and resumes), PID reuse, a killed create leaves
//! nothing, locking (random verbs from many threads), foreground `run` and its exit status,
//! `list`/`state` during concurrent deletes; and `start` after `kill`. Needs root.
//! `RUSE_STRESS=1` scales the loops up and runs the locking storm for 60 s instead of 15
//! (and `RUSE_KILL_RUNS=N` sets the number of killed creates).

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
    check_state_in(out, id, &["created", "running", "stopped"])
}

/// `state` is either "does not exist" or a valid state document for `id` whose status is
/// one of `statuses`, with a live pid unless stopped (pid 0).
fn check_state_in(out: &Output, id: &str, statuses: &[&str]) -> Result<Option<Value>, String> {
    if out.status.success() {
        let v: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("unparsable state ({e}): {:?}", common::stdout(out)))?;
        let status = v["status"].as_str().unwrap_or("");
        let pid = v["pid"].as_i64();
        let ok = v["id"] == id
            && statuses.contains(&status)
            && pid.is_some_and(|p| (status == "stopped") == (p == 0));
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

/// `state` derives `paused` from the freezer, which `pause` and `resume` rewrite under it: a
/// loop pauses and resumes a running container while 4 threads make 1000 `state` calls (and
/// 100 `list`s). Every answer parses, says running or paused, and both are seen (so the
/// reads really did interleave with the loop).
#[test]
fn state_always_parses_while_a_container_pauses_and_resumes() {
    if !common::root_or_skip() {
        return;
    }
    let env = Arc::new(Env::new(&["sleep", "60"]));
    let id = unique_id("pausing");
    env.create(&id);
    assert!(env.ruse(&["start", &id]).status.success());
    env.wait_status(&id, "running");
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicUsize::new(0));
    let pauser = {
        let (env, id, stop, cycles) = (env.clone(), id.clone(), stop.clone(), cycles.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for verb in ["pause", "resume"] {
                    let out = env.ruse(&[verb, &id]);
                    assert!(out.status.success(), "{verb}: {}", stderr(&out));
                }
                cycles.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let calls = if stress() { 5000 } else { 1000 };
    let next = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new((0usize, 0usize)));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (env, id, next) = (env.clone(), id.clone(), next.clone());
            let (seen, errors) = (seen.clone(), errors.clone());
            std::thread::spawn(move || loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= calls {
                    break;
                }
                let res = check_state_in(&env.ruse(&["state", &id]), &id, &["running", "paused"])
                    .and_then(|v| v.ok_or_else(|| "the container vanished".to_string()))
                    .map(|v| {
                        let mut s = seen.lock().unwrap();
                        if v["status"] == "paused" {
                            s.0 += 1;
                        } else {
                            s.1 += 1;
                        }
                    });
                if let Err(e) = res {
                    errors.lock().unwrap().push(e);
                }
                // Every tenth call, `list` too (it reads without the lock).
                if n % 10 == 9 {
                    let out = env.ruse(&["list", "--format", "json"]);
                    let ok = serde_json::from_slice::<Vec<Value>>(&out.stdout).is_ok_and(|v| {
                        v.len() == 1 && (v[0]["status"] == "running" || v[0]["status"] == "paused")
                    });
                    if !(ok && out.status.success()) {
                        errors.lock().unwrap().push(format!("list: {out:?}"));
                    }
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    pauser.join().unwrap();
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} bad answers: {:#?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    let (paused, running) = *seen.lock().unwrap();
    eprintln!(
        "{calls} reads over {} pause/resume cycles: {paused} paused, {running} running",
        cycles.load(Ordering::Relaxed)
    );
    assert!(
        paused > 0 && running > 0,
        "the reads never saw both states: {paused} paused, {running} running"
    );
    // The loop ended on a resume: the container runs on, and dies when deleted.
    assert_eq!(env.state(&id)["status"], "running");
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

/// `kill` only sends the signal: a `start` right after `kill KILL` of a created container
/// meets an init that is dead or dying. It must fail, saying so ("cannot start a container
/// that is stopped", or "container init is not running" when init dies under it), and never
/// report a start of a process that never ran.
#[test]
fn start_after_kill_of_a_created_container_never_succeeds() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "30"]);
    // About one run in five meets a dying init at the connect, one in forty after it.
    let runs = if stress() { 500 } else { 50 };
    let mut said = std::collections::BTreeMap::new();
    for i in 0..runs {
        let id = unique_id("killstart");
        env.create(&id);
        assert!(env.ruse(&["kill", &id, "KILL"]).status.success());
        let out = env.ruse(&["start", &id]);
        let st = env.ruse(&["state", &id]);
        assert_ne!(
            out.status.code(),
            Some(0),
            "run {i}: start of a killed init succeeded; state now: {}",
            common::stdout(&st)
        );
        let err = stderr(&out);
        let phrase = [
            "cannot start a container that is stopped",
            "container init is not running",
        ]
        .into_iter()
        .find(|p| err.contains(p));
        assert_error(&format!("run {i}"), &out, &[]);
        assert!(phrase.is_some(), "run {i}: start says why not: {err}");
        *said.entry(phrase.unwrap()).or_insert(0) += 1;
        assert!(env.ruse(&["delete", "--force", &id]).status.success());
        env.assert_clean(&id);
    }
    eprintln!("{runs} starts after kill: {said:?}");
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
    // `--all` of a stopped container signals what is left in its cgroup (here nothing), as
    // runc: it succeeds, and never reaches the pid in state.json.
    let out = env.ruse(&["kill", "--all", &id, "KILL"]);
    assert!(out.status.success(), "kill --all: {out:?}");
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
/// takes, half within 0–200 ms), 500 times: `state` is valid or "does not exist", `delete
/// --force` exits 0, and nothing at all is left. Four workers, each with its own bundle (so
/// each knows its container's processes), share the runs to keep the wall time down.
#[test]
fn a_killed_create_leaves_nothing() {
    if !common::root_or_skip() {
        return;
    }
    let runs: usize = std::env::var("RUSE_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if stress() { 2000 } else { 500 });
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (next, failed) = (next.clone(), failed.clone());
            std::thread::spawn(move || killed_creates(&next, runs, &failed))
        })
        .collect();
    let mut outcomes = [0usize; 2];
    let mut errors = Vec::new();
    for w in workers {
        match w.join().unwrap() {
            Ok(o) => (0..2).for_each(|k| outcomes[k] += o[k]),
            Err(e) => errors.push(e),
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert_eq!(outcomes[0] + outcomes[1], runs);
    eprintln!(
        "{runs} killed creates: {} left no container, {} a container",
        outcomes[0], outcomes[1]
    );
}

/// One worker of `a_killed_create_leaves_nothing`: takes run numbers from `next` until
/// `runs`; returns how many runs left no container and how many a container.
fn killed_creates(
    next: &AtomicUsize,
    runs: usize,
    failed: &AtomicBool,
) -> Result<[usize; 2], String> {
    let env = Env::new(&["sleep", "30"]);
    let b = env.bundle();
    // How long a whole create takes here (with the other workers busy).
    let t = Instant::now();
    let id = unique_id("kc");
    env.create(&id);
    let took = t.elapsed().as_micros() as u64;
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    let mut rng = Rng::new();
    let mut outcomes = [0usize; 2];
    loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= runs || failed.load(Ordering::SeqCst) {
            return Ok(outcomes);
        }
        let id = unique_id("kc");
        let delay = if i % 2 == 0 {
            rng.below(took + took / 5)
        } else {
            rng.below(200_000)
        };
        let tag = format!("kc{i}");
        let mut child = spawn(
            &env,
            &["create", "--bundle", b.to_str().unwrap(), &id],
            &tag,
        );
        std::thread::sleep(Duration::from_micros(delay));
        let _ = child.kill();
        let status = child.wait().unwrap();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let state = env.ruse(&["state", &id]);
            let known = check_state(&state, &id).unwrap_or_else(|e| panic!("state: {e}"));
            let del = env.ruse(&["delete", "--force", &id]);
            assert_eq!(
                del.status.code(),
                Some(0),
                "delete --force: {}",
                stderr(&del)
            );
            // pdeathsig kills an unreleased init; give it a moment to be gone.
            let end = Instant::now() + Duration::from_secs(2);
            while !common::processes_of(&env.rootfs()).is_empty() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(5));
            }
            env.assert_clean(&id);
            known.is_some()
        }));
        match run {
            Ok(known) => outcomes[known as usize] += 1,
            Err(e) => {
                failed.store(true, Ordering::SeqCst);
                return Err(format!(
                    "run {i}: create killed after {delay} us (a full create takes {took} us, \
                     {status}): {}; create said: {}",
                    panic_text(&e),
                    spawned_stderr(&env, &tag)
                ));
            }
        }
        let _ = fs::remove_file(env.dir.join(format!("{tag}.out")));
        let _ = fs::remove_file(env.dir.join(format!("{tag}.err")));
    }
}

/// The message of a caught panic.
fn panic_text(e: &Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(panic without a message)".into())
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

/// The verbs of the locking stress test.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Verb {
    State,
    List,
    /// A signal init traps (it does not stop the container).
    Signal,
    /// The same signal to every process (the `sleep` dies of it, init carries on).
    SignalAll,
    Kill,
    Pause,
    Resume,
    Delete,
    ForceDelete,
    Create,
    Start,
}

impl Verb {
    /// Weighted: mostly reads and harmless changes, sometimes the end of the container.
    const TABLE: &'static [(Verb, u64)] = &[
        (Verb::State, 20),
        (Verb::List, 4),
        (Verb::Signal, 12),
        (Verb::SignalAll, 4),
        (Verb::Kill, 4),
        (Verb::Pause, 12),
        (Verb::Resume, 12),
        (Verb::Delete, 4),
        (Verb::ForceDelete, 3),
        (Verb::Create, 12),
        (Verb::Start, 12),
    ];

    fn pick(rng: &mut Rng) -> Verb {
        let total: u64 = Verb::TABLE.iter().map(|(_, w)| w).sum();
        let mut n = rng.below(total);
        for &(v, w) in Verb::TABLE {
            if n < w {
                return v;
            }
            n -= w;
        }
        unreachable!()
    }

    fn args<'a>(self, id: &'a str, bundle: &'a str) -> Vec<&'a str> {
        match self {
            Verb::State => vec!["state", id],
            Verb::List => vec!["list", "--format", "json"],
            Verb::Signal => vec!["kill", id, "USR1"],
            Verb::SignalAll => vec!["kill", "--all", id, "USR1"],
            Verb::Kill => vec!["kill", id, "KILL"],
            Verb::Pause => vec!["pause", id],
            Verb::Resume => vec!["resume", id],
            Verb::Delete => vec!["delete", id],
            Verb::ForceDelete => vec!["delete", "--force", id],
            Verb::Create => vec!["create", "--bundle", bundle, id],
            Verb::Start => vec!["start", id],
        }
    }

    /// The refusals a verb may meet when it races the others: wrong status or a missing
    /// (or already made) container. Anything else (a parse error, a vanished file, a
    /// freezer that failed) is a torn or orphaned state.
    fn may_refuse(self, line: &str) -> bool {
        let phrases: &[&str] = match self {
            Verb::State | Verb::List => &[],
            Verb::Signal | Verb::SignalAll | Verb::Kill | Verb::Pause => &["container not running"],
            Verb::Resume => &["container not paused"],
            Verb::Delete => &["cannot delete a container that is"],
            Verb::ForceDelete => &[],
            Verb::Create => &["container with id exists"],
            // (A dead init: ruse's phrase when nothing listens on exec.sock any more.)
            Verb::Start => &[
                "cannot start a container that is",
                "container init is not running",
            ],
        };
        line.contains("does not exist") || phrases.iter().any(|p| line.contains(p))
    }
}

static RUN_SEQ: AtomicUsize = AtomicUsize::new(0);

/// Runs ruse with `args` (output through files: `create` leaves init holding them) and
/// waits at most `bound`; a command still running then is killed and reported as hung.
fn run_bounded(env: &Env, args: &[&str], bound: Duration) -> Result<Output, String> {
    let n = RUN_SEQ.fetch_add(1, Ordering::SeqCst);
    let (o, e) = (
        env.dir.join(format!("b{n}.out")),
        env.dir.join(format!("b{n}.err")),
    );
    let mut child = env
        .cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&o).unwrap())
        .stderr(fs::File::create(&e).unwrap())
        .spawn()
        .unwrap();
    let end = Instant::now() + bound;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "`ruse {}` hung: still running after {bound:?} (killed); stderr so far: {:?}",
                args.join(" "),
                fs::read_to_string(&e).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let out = Output {
        status,
        stdout: fs::read(&o).unwrap(),
        stderr: fs::read(&e).unwrap(),
    };
    let _ = fs::remove_file(&o);
    let _ = fs::remove_file(&e);
    Ok(out)
}

const ALL_STATUSES: &[&str] = &["created", "running", "paused", "stopped"];

/// Judges one answer: `state` a valid document or "does not exist", `list` valid JSON with
/// valid entries, any other verb exit 0 or one error line of the refusals it may meet.
/// Returns whether the verb did what it asked.
fn judge(verb: Verb, id: &str, args: &[&str], out: &Output) -> Result<bool, String> {
    let what = || format!("`ruse {}`: {out:?}", args.join(" "));
    let err = stderr(out);
    if out.status.code().is_none() || err.contains("panicked") {
        return Err(format!("died: {}", what()));
    }
    match verb {
        Verb::State => {
            return check_state_in(out, id, ALL_STATUSES)
                .map(|v| v.is_some())
                .map_err(|e| format!("{e} ({})", what()))
        }
        Verb::List => {
            let v: Vec<Value> = serde_json::from_slice(&out.stdout)
                .map_err(|e| format!("unparsable list ({e}): {}", what()))?;
            let ok = out.status.success()
                && v.iter().all(|c| {
                    c["id"] == id && ALL_STATUSES.contains(&c["status"].as_str().unwrap_or(""))
                });
            return if ok { Ok(true) } else { Err(what()) };
        }
        _ => {}
    }
    if out.status.success() {
        return Ok(true);
    }
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("ruse: warning") && !l.contains("level=warning"))
        .collect();
    if out.status.code() == Some(1) && lines.len() == 1 && verb.may_refuse(lines[0]) {
        return Ok(false);
    }
    Err(format!("unexpected failure: {}", what()))
}

/// Once the storm is over: what `state` says of the container matches the kernel (a live
/// init in its rootfs for every status but stopped; no state dir, cgroup, mount or process
/// when it does not exist); then `delete --force` leaves nothing.
fn settle(env: &Env, id: &str, bound: Duration) {
    let out = run_bounded(env, &["state", id], bound).unwrap();
    let st = check_state_in(&out, id, ALL_STATUSES).unwrap();
    match &st {
        None => env.assert_clean(id),
        Some(v) if v["status"] != "stopped" => {
            let pid = v["pid"].as_i64().unwrap() as i32;
            let procs = common::processes_of(&env.rootfs());
            assert!(
                procs.contains(&pid),
                "state says {} with pid {pid}, but the container's processes are {procs:?}",
                v["status"]
            );
        }
        Some(_) => {}
    }
    let out = run_bounded(env, &["delete", "--force", id], bound).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "final delete --force (state was {st:?}): {}",
        stderr(&out)
    );
    let end = Instant::now() + Duration::from_secs(2);
    while !common::processes_of(&env.rootfs()).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    env.assert_clean(id);
}

/// The container locks: 6 threads run random verbs (state, list, trapped signals, SIGKILL,
/// pause, resume, delete, delete --force, create again once deleted, start) on 3 containers
/// for 15 s (60 s with RUSE_STRESS=1). Every command ends within a bound (else the test
/// fails naming it), every answer is valid JSON, success, or a refusal the race explains; no
/// state is torn or orphaned, and at the end each container's facts match the kernel and
/// `delete --force` leaves nothing.
#[test]
fn random_verbs_from_many_threads_never_tear_state_or_hang() {
    if !common::root_or_skip() {
        return;
    }
    let secs = if stress() { 60 } else { 15 };
    // delete --force and pause have 10 s limits of their own inside ruse.
    let bound = Duration::from_secs(30);
    // One bundle (and state root) per container, so each one's processes are known: init
    // traps the signals that must not stop it (as a pid namespace's init, it ignores those it
    // has no handler for anyway; the trap makes them delivered).
    let boxes: Vec<(Arc<Env>, String)> = (0..3)
        .map(|_| {
            let env = Env::new(&[
                "sh",
                "-c",
                "trap 'echo usr1' USR1; while :; do sleep 1; done",
            ]);
            (Arc::new(env), unique_id("storm"))
        })
        .collect();
    let _cleanup = ThawAndDelete(boxes.clone());
    for (env, id) in &boxes {
        env.create(id);
    }
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let failed = Arc::new(AtomicBool::new(false));
    // What ran when, to show the interleaving that led to a failure.
    let history = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let (boxes, failed, history) = (boxes.clone(), failed.clone(), history.clone());
            std::thread::spawn(move || -> Result<Vec<(Verb, bool)>, String> {
                let mut rng = Rng::new();
                let mut done = Vec::new();
                while Instant::now() < end && !failed.load(Ordering::SeqCst) {
                    let (env, id) = &boxes[rng.below(boxes.len() as u64) as usize];
                    let verb = Verb::pick(&mut rng);
                    let bundle = env.bundle();
                    let args = verb.args(id, bundle.to_str().unwrap());
                    let t = start.elapsed();
                    let res =
                        run_bounded(env, &args, bound).and_then(|out| judge(verb, id, &args, &out));
                    history.lock().unwrap().push(format!(
                        "{:>8.3}..{:>8.3} s {:?}: {} -> {}",
                        t.as_secs_f64(),
                        start.elapsed().as_secs_f64(),
                        std::thread::current().id(),
                        args.join(" "),
                        match &res {
                            Ok(true) => "ok",
                            Ok(false) => "refused",
                            Err(_) => "FAILED",
                        }
                    ));
                    match res {
                        Ok(did) => done.push((verb, did)),
                        Err(e) => {
                            failed.store(true, Ordering::SeqCst);
                            return Err(format!("{e}\n{}", diagnose(env, id)));
                        }
                    }
                }
                Ok(done)
            })
        })
        .collect();
    let mut done = Vec::new();
    let mut errors = Vec::new();
    for t in threads {
        match t.join().unwrap() {
            Ok(d) => done.extend(d),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        let history = history.lock().unwrap();
        let tail = &history[history.len().saturating_sub(40)..];
        panic!(
            "{}\nthe last commands:\n{}",
            errors.join("\n"),
            tail.join("\n")
        );
    }
    let count = |v: Verb| done.iter().filter(|d| **d == (v, true)).count();
    eprintln!(
        "{} commands in {secs} s: {} creates, {} starts, {} pauses, {} resumes, {} kills, {} deletes, {} forced deletes succeeded",
        done.len(),
        count(Verb::Create),
        count(Verb::Start),
        count(Verb::Pause),
        count(Verb::Resume),
        count(Verb::Kill),
        count(Verb::Delete),
        count(Verb::ForceDelete)
    );
    // The storm went through whole lifecycles, not only refusals.
    for v in [
        Verb::Create,
        Verb::Start,
        Verb::Pause,
        Verb::Resume,
        Verb::Delete,
    ] {
        assert!(count(v) > 0, "no {v:?} ever succeeded");
    }
    for (env, id) in &boxes {
        settle(env, id, bound);
    }
}

/// Resumes and force-deletes containers when dropped, so a failed run leaves no frozen
/// container behind (a plain `delete --force` is what is under test, and may be what failed).
struct ThawAndDelete(Vec<(Arc<Env>, String)>);

impl Drop for ThawAndDelete {
    fn drop(&mut self) {
        for (env, id) in &self.0 {
            let _ = env.ruse(&["resume", id]);
            let _ = env.ruse(&["delete", "--force", id]);
        }
    }
}

/// What the kernel shows of a container's processes and freezer, for a failure message.
fn diagnose(env: &Env, id: &str) -> String {
    let mut out = String::new();
    for pid in common::processes_of(&env.rootfs()) {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        out += &format!("process {pid}: {} wchan {wchan}\n", stat.trim());
    }
    for d in common::cgroup_dirs_named(id) {
        for f in [
            "freezer.state",
            "freezer.self_freezing",
            "cgroup.freeze",
            "cgroup.events",
        ] {
            if let Ok(v) = fs::read_to_string(d.join(f)) {
                out += &format!("{}/{f}: {}\n", d.display(), v.trim());
            }
        }
    }
    out
}

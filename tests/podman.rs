//! podman drives ruse in place of runc (issue 6). Every scenario runs twice through the same
//! podman, under runc (`/usr/sbin/runc`) and then under ruse, so a failure under both is
//! podman's or the machine's, not ruse's, and the panic message says which runtime failed.
//!
//! Each test has a podman of its own: store, run root, libpod tmp dir, locks, events log and
//! network config all in one temp dir, a `containers.conf` of its own (`CONTAINERS_CONF`), a
//! busybox image imported into that store, and a `--cgroup-parent` of its own, so that
//! everything podman, conmon and the runtime make can be found and removed. After each
//! runtime's run the test checks that nothing is left (containers, runtime state dirs,
//! container cgroups, processes, mounts); at the end, the temp dir and the cgroup parent go.
//!
//! What the container did is read from the kernel: the host's cgroupfs files of the container
//! (found from the container pid's `/proc/<pid>/cgroup`), the freezer state and task states of a
//! paused container, `/proc/self/status` and mountinfo inside, the pty seen from both ends.
//! The cgroup checks expect v1 controllers (a v1 or hybrid host, as this machine's).

mod common;

use common::{root_or_skip, RUSE};
use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const RUNC: &str = "/usr/sbin/runc";
const IMAGE: &str = "localhost/ruse-busybox:test";
/// No podman call here takes more than a few seconds; a hung one fails the test instead of
/// hanging it.
const PODMAN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long conmon and podman's exit command (`podman container cleanup`) may take to go
/// after the container they watch has gone.
const SETTLE: Duration = Duration::from_secs(15);

static SEQ: AtomicUsize = AtomicUsize::new(0);

struct Runtime {
    name: &'static str,
    path: &'static str,
}

/// runc first: its result says whether the scenario works on this machine at all.
const RUNTIMES: [Runtime; 2] = [
    Runtime {
        name: "runc",
        path: RUNC,
    },
    Runtime {
        name: "ruse",
        path: RUSE,
    },
];

/// One isolated podman: its files under `dir`, its cgroups under `cgroup_parent`.
struct Podman {
    dir: PathBuf,
    cgroup_parent: String,
    torn_down: bool,
}

impl Podman {
    fn new() -> Podman {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("ruse-podman-{pid}-{n}"));
        let _ = fs::remove_dir_all(&dir);
        let pm = Podman {
            dir,
            cgroup_parent: format!("/ruse-podman-test-{pid}-{n}"),
            torn_down: false,
        };
        for d in [
            "storage",
            "run",
            "libpod-tmp",
            "image-tmp",
            "volumes",
            "net",
        ] {
            fs::create_dir_all(pm.dir.join(d)).unwrap();
        }
        // The hard limits stay within this machine's (`ulimit -H -n` is 20000): without
        // CAP_SYS_RESOURCE podman's default nofile=1048576 fails under runc and ruse alike.
        // `lock_type = "file"` keeps the locks in our tmp dir instead of the host-wide
        // /dev/shm/libpod_lock. podman names a runtime by its path's basename, so "ruse"
        // must be in runtime_supports_json for podman to read ruse's JSON error log.
        fs::write(
            pm.dir.join("containers.conf"),
            format!(
                r#"[containers]
default_ulimits = ["nofile=1024:20000", "nproc=1024:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "ruse"]
[engine.runtimes]
ruse = ["{RUSE}"]
"#
            ),
        )
        .unwrap();
        fs::write(
            pm.dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
                pm.dir.join("run").display(),
                pm.dir.join("storage").display()
            ),
        )
        .unwrap();
        pm.import_image();
        pm
    }

    /// A busybox image built here (there is no registry): the rootfs of tests/common's Env,
    /// plus a file in /tmp that `--read-only`'s tmpfs must copy up.
    fn import_image(&self) {
        let rootfs = self.dir.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("busybox-static must be installed");
        let applets = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for a in String::from_utf8_lossy(&applets.stdout).lines() {
            if a != "busybox" {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
            }
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .unwrap();
        fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        fs::write(rootfs.join("tmp/from-image"), "seeded\n").unwrap();
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut import = self.cmd(&RUNTIMES[1]);
        import
            .args(["import", "-", IMAGE])
            .stdin(tar.stdout.take().unwrap());
        let out = self.output(&mut import);
        assert!(tar.wait().unwrap().success(), "tar of the rootfs failed");
        assert!(
            out.status.success(),
            "podman import failed (before any runtime ran): {}",
            text(&out.stderr)
        );
    }

    /// podman with this store, these dirs and `--runtime <rt>`.
    fn cmd(&self, rt: &Runtime) -> Command {
        let d = |s: &str| self.dir.join(s);
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d("storage.conf"))
            // Where image imports stage their blobs (default /var/tmp).
            .env("TMPDIR", d("image-tmp"))
            .arg("--root")
            .arg(d("storage"))
            .arg("--runroot")
            .arg(d("run"))
            .arg("--tmpdir")
            .arg(d("libpod-tmp"))
            .arg("--volumepath")
            .arg(d("volumes"))
            .arg("--network-config-dir")
            .arg(d("net"))
            .args(["--storage-driver", "overlay", "--runtime", rt.path]);
        c
    }

    /// Runs `c` to completion (bounded), output through files: a detached container's conmon
    /// must not be able to keep a pipe of ours open.
    fn output(&self, c: &mut Command) -> Output {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let (o, e) = (
            self.dir.join(format!("out{n}")),
            self.dir.join(format!("err{n}")),
        );
        let child = c
            .stdout(fs::File::create(&o).unwrap())
            .stderr(fs::File::create(&e).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
        let status = wait_bounded(child, PODMAN_TIMEOUT, &format!("{c:?}"));
        let out = Output {
            status,
            stdout: fs::read(&o).unwrap(),
            stderr: fs::read(&e).unwrap(),
        };
        let _ = fs::remove_file(o);
        let _ = fs::remove_file(e);
        out
    }

    fn podman(&self, rt: &Runtime, args: &[&str]) -> Output {
        let mut c = self.cmd(rt);
        c.args(args).stdin(Stdio::null());
        self.output(&mut c)
    }

    /// `podman args…`, asserted to succeed; its stdout, trimmed.
    fn ok(&self, rt: &Runtime, args: &[&str]) -> String {
        let out = self.podman(rt, args);
        assert!(
            out.status.success(),
            "podman {} failed ({}): {}",
            args.join(" "),
            out.status,
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_string()
    }

    /// The options every container gets: podman here has no network backend, and our
    /// cgroups must land where the test can find and remove them.
    fn container_args<'a>(&'a self, opts: &[&'a str], cmd: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["--network", "none", "--cgroup-parent", &self.cgroup_parent];
        a.extend_from_slice(opts);
        a.push(IMAGE);
        a.extend_from_slice(cmd);
        a
    }

    /// `podman run --rm [opts] IMAGE cmd…` in the foreground.
    fn run_rm(&self, rt: &Runtime, opts: &[&str], cmd: &[&str]) -> Output {
        let mut a = vec!["run", "--rm"];
        a.extend(self.container_args(opts, cmd));
        self.podman(rt, &a)
    }

    /// `podman run -d [opts] IMAGE cmd…`: the container's id, once podman says it runs.
    fn run_d(&self, rt: &Runtime, opts: &[&str], cmd: &[&str]) -> String {
        let mut a = vec!["run", "-d"];
        a.extend(self.container_args(opts, cmd));
        let id = self.ok(rt, &a);
        assert_eq!(self.status(rt, &id), "running");
        id
    }

    fn inspect(&self, rt: &Runtime, id: &str, format: &str) -> String {
        self.ok(rt, &["inspect", "--format", format, id])
    }

    fn status(&self, rt: &Runtime, id: &str) -> String {
        self.inspect(rt, id, "{{.State.Status}}")
    }

    fn host_pid(&self, rt: &Runtime, id: &str) -> i32 {
        let pid = self.inspect(rt, id, "{{.State.Pid}}");
        pid.parse()
            .unwrap_or_else(|_| panic!("pid of {id}: {pid:?}"))
    }

    /// The container's cgroup directory of a v1 `controller` on the host, from its init's
    /// /proc/<pid>/cgroup, checked to be the one `--cgroup-parent` asked for.
    fn host_cgroup(&self, rt: &Runtime, id: &str, controller: &str) -> PathBuf {
        let pid = self.host_pid(rt, id);
        let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let path = cg
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
                ctrls.split(',').any(|c| c == controller).then_some(path)
            })
            .unwrap_or_else(|| panic!("no v1 {controller} line in /proc/{pid}/cgroup:\n{cg}"));
        assert_eq!(
            path,
            format!("{}/libpod-{id}", self.cgroup_parent),
            "the {controller} cgroup of {id} is not under --cgroup-parent"
        );
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(path.trim_start_matches('/'))
    }

    /// Container ids podman made in this store (its events log), removed or not.
    fn container_ids(&self) -> Vec<String> {
        let log =
            fs::read_to_string(self.dir.join("libpod-tmp/events/events.log")).unwrap_or_default();
        let mut ids: Vec<String> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["Type"] == "container" && e["Status"] == "create")
            .filter_map(|e| e["ID"].as_str().map(str::to_string))
            .collect();
        ids.dedup();
        ids
    }

    /// Processes of this podman: in its cgroup parent (conmon, exit commands, containers),
    /// or naming its dir on their command line.
    fn processes(&self) -> Vec<(i32, String)> {
        let me = std::process::id() as i32;
        let dir = self.dir.to_string_lossy().into_owned();
        let under = format!("{}/", self.cgroup_parent);
        common::all_pids()
            .into_iter()
            .filter(|&p| p != me)
            .filter_map(|p| {
                // A zombie is already gone but for its parent's wait (conmon, orphaned,
                // waits for the host's init to reap it).
                let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                if stat
                    .rsplit_once(") ")
                    .is_some_and(|(_, r)| r.starts_with('Z'))
                {
                    return None;
                }
                let cg = fs::read_to_string(format!("/proc/{p}/cgroup")).ok()?;
                let cmd = fs::read(format!("/proc/{p}/cmdline")).ok()?;
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                let ours = cg.lines().any(|l| {
                    let path = l.splitn(3, ':').nth(2).unwrap_or("");
                    path == self.cgroup_parent || path.starts_with(&under)
                }) || cmd.contains(&dir);
                ours.then_some((p, cmd))
            })
            .collect()
    }

    /// Mount points under our dir (overlay roots, shm), deepest last.
    fn mounts(&self) -> Vec<String> {
        common::mount_points()
            .into_iter()
            .filter(|m| Path::new(m).starts_with(&self.dir))
            .collect()
    }

    /// Cgroup directories below our cgroup parent, in every hierarchy, children first.
    /// With `keep_podmans`, the parent itself and podman's `conmon` cgroup (podman makes them
    /// and never removes them; only teardown does) are not listed.
    fn cgroup_dirs(&self, keep_podmans: bool) -> Vec<PathBuf> {
        fn walk(d: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = fs::read_dir(d) {
                for e in rd.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        walk(&e.path(), out);
                    }
                }
            }
            out.push(d.to_path_buf());
        }
        let mut out = Vec::new();
        for root in cgroup_roots() {
            let top = root.join(self.cgroup_parent.trim_start_matches('/'));
            if top.is_dir() {
                walk(&top, &mut out);
            }
        }
        if keep_podmans {
            out.retain(|d| {
                !d.ends_with(self.cgroup_parent.trim_start_matches('/'))
                    && d.file_name().is_some_and(|n| n != "conmon")
            });
        }
        out
    }

    /// What the last runtime's scenario left behind once conmon and podman's exit commands
    /// had time to go: the scenario removes every container it makes.
    fn leftovers(&self) -> Vec<String> {
        let end = Instant::now() + SETTLE;
        while !self.processes().is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut left = Vec::new();
        for (pid, cmd) in self.processes() {
            left.push(format!("process {pid}: {cmd}"));
        }
        let ps = self.podman(
            &RUNTIMES[1],
            &["ps", "-a", "--format", "{{.ID}} {{.Status}}"],
        );
        for l in text(&ps.stdout).lines() {
            left.push(format!("container {l}"));
        }
        for id in self.container_ids() {
            for rt in &RUNTIMES {
                let state = Path::new("/run").join(rt.name).join(&id);
                if state.exists() {
                    left.push(format!("{} state dir {}", rt.name, state.display()));
                }
            }
        }
        for d in self.cgroup_dirs(true) {
            left.push(format!("cgroup {}", d.display()));
        }
        for m in self.mounts() {
            left.push(format!("mount {m}"));
        }
        left
    }

    /// Removes every container, runtime state dir, process and container cgroup of this
    /// podman, so the next runtime starts from nothing. Best effort: `leftovers` and
    /// `teardown` report what stays.
    fn clear(&self) {
        let _ = self.podman(&RUNTIMES[1], &["rm", "--all", "--force", "--time", "0"]);
        for id in self.container_ids() {
            for rt in &RUNTIMES {
                if Path::new("/run").join(rt.name).join(&id).exists() {
                    let _ = Command::new(rt.path)
                        .args(["delete", "--force", &id])
                        .stdin(Stdio::null())
                        .output();
                }
            }
        }
        let end = Instant::now() + SETTLE;
        loop {
            let procs = self.processes();
            if procs.is_empty() || Instant::now() > end {
                for (pid, _) in procs {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for d in self.cgroup_dirs(true) {
            let _ = fs::remove_dir(d);
        }
    }

    /// Everything goes: containers, mounts under our dir (unmounted before the dir is
    /// removed, deepest first), the dir, and every cgroup directory under our parent.
    /// Returns what could not be removed.
    fn teardown(&mut self) -> Vec<String> {
        self.torn_down = true;
        self.clear();
        let mut left = Vec::new();
        for m in self.mounts().iter().rev() {
            let _ = Command::new("umount").args(["-l", m]).output();
        }
        for m in self.mounts() {
            left.push(format!("mount {m}"));
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            left.push(format!("dir {}: {e}", self.dir.display()));
        }
        for d in self.cgroup_dirs(false) {
            if let Err(e) = fs::remove_dir(&d) {
                left.push(format!("cgroup {}: {e}", d.display()));
            }
        }
        for (pid, cmd) in self.processes() {
            left.push(format!("process {pid}: {cmd}"));
        }
        left
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if !self.torn_down {
            let _ = self.teardown();
        }
    }
}

/// Mount points of the cgroup hierarchies (v1 controllers and cgroup2).
fn cgroup_roots() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            (fstype == "cgroup" || fstype == "cgroup2")
                .then(|| PathBuf::from(pre.split(' ').nth(4).unwrap()))
        })
        .collect()
}

/// Waits for `child` at most `limit`, killing it (and failing) past that.
fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out after {limit:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `cond` until it holds, at most `secs` seconds.
fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < end, "timed out after {secs} s: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn read_trim(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(non-text panic)".into())
}

/// Runs `scenario` under runc, then under ruse, in one fresh podman, and fails naming the
/// runtime(s) that failed. A scenario that passes must leave nothing behind.
fn under_both(scenario: impl Fn(&Podman, &Runtime)) {
    if !root_or_skip() {
        return;
    }
    let mut pm = Podman::new();
    let mut failed: Vec<(&str, String)> = Vec::new();
    for rt in &RUNTIMES {
        match catch_unwind(AssertUnwindSafe(|| scenario(&pm, rt))) {
            Err(e) => failed.push((rt.name, panic_text(&*e))),
            Ok(()) => {
                let left = pm.leftovers();
                if !left.is_empty() {
                    failed.push((rt.name, format!("passed, but left behind: {left:#?}")));
                }
            }
        }
        pm.clear();
    }
    let left = pm.teardown();
    let mut report = String::new();
    let runc = failed.iter().any(|(rt, _)| *rt == "runc");
    let ruse = failed.iter().any(|(rt, _)| *rt == "ruse");
    report.push_str(match (runc, ruse) {
        (true, true) => {
            "FAILS UNDER runc TOO: podman's or this machine's problem, maybe not ruse's\n"
        }
        (true, false) => {
            "fails under runc only (ruse passes): podman's or this machine's problem\n"
        }
        (false, true) => "fails under ruse (passes under runc)\n",
        (false, false) => "",
    });
    for (rt, msg) in &failed {
        report.push_str(&format!("--- {rt}: {msg}\n"));
    }
    if !left.is_empty() {
        report.push_str(&format!("--- teardown could not remove: {left:#?}\n"));
    }
    assert!(report.is_empty(), "{report}");
}

/// The CapEff/CapPrm/CapBnd masks of `/proc/self/status` output.
fn cap(status: &str, key: &str) -> u64 {
    let v = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {status}"));
    u64::from_str_radix(v.trim(), 16).unwrap()
}

#[test]
fn run_rm_passes_stdout_and_stderr_apart_and_removes_the_container() {
    under_both(|pm, rt| {
        let out = pm.run_rm(
            rt,
            &[],
            &[
                "sh",
                "-c",
                "echo to-stdout; echo to-stderr >&2; [ -t 1 ] || echo stdout-is-not-a-tty",
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "to-stdout\nstdout-is-not-a-tty\n");
        assert!(
            text(&out.stderr).contains("to-stderr"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(
            pm.ok(rt, &["ps", "-a", "-q"]),
            "",
            "--rm left the container"
        );
    });
}

#[test]
fn detached_container_takes_exec_and_stop_delivers_sigterm_then_rm_removes_it() {
    under_both(|pm, rt| {
        // sh as pid 1 ignores an unhandled SIGTERM, so the trap's exit status tells that
        // `stop` delivered SIGTERM (podman's SIGKILL after the timeout would give 137).
        let id = pm.run_d(
            rt,
            &[],
            &[
                "sh",
                "-c",
                "trap 'exit 7' TERM; while :; do sleep 0.1; done",
            ],
        );
        let pid = pm.host_pid(rt, &id);
        let host_pidns = fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
        let out = pm.ok(
            rt,
            &[
                "exec",
                &id,
                "sh",
                "-c",
                "echo exec-ran; readlink /proc/self/ns/pid; cat /proc/1/cmdline | tr '\\0' ' '",
            ],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.first(), Some(&"exec-ran"), "{out}");
        assert_eq!(
            lines.get(1).copied(),
            host_pidns.to_str(),
            "exec is not in the container's pid namespace: {out}"
        );
        assert!(
            lines.get(2).is_some_and(|l| l.starts_with("sh -c trap")),
            "pid 1 seen by exec is not the container's init: {out}"
        );
        let exec5 = pm.podman(rt, &["exec", &id, "sh", "-c", "exit 5"]);
        assert_eq!(exec5.status.code(), Some(5), "{}", text(&exec5.stderr));

        let started = Instant::now();
        pm.ok(rt, &["stop", "--time", "30", &id]);
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "stop waited for its timeout: SIGTERM did not reach the trap"
        );
        assert_eq!(pm.status(rt, &id), "exited");
        assert_eq!(pm.inspect(rt, &id, "{{.State.ExitCode}}"), "7");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "init {pid} still alive after stop"
        );
        pm.ok(rt, &["rm", &id]);
        assert_eq!(pm.ok(rt, &["ps", "-a", "-q"]), "");
        let state = Path::new("/run").join(rt.name).join(&id);
        assert!(!state.exists(), "{} left after rm", state.display());
    });
}

/// Reads the nonblocking pty master until `want` shows up or `secs` pass.
fn read_until(master: &mut fs::File, want: &str, secs: u64) -> String {
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 4096];
    while Instant::now() < end && !text(&got).contains(want) {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            // EIO: every slave fd is closed.
            Err(_) => break,
        }
    }
    text(&got)
}

#[test]
fn run_tty_gives_the_container_a_pty_sized_like_the_callers() {
    // podman runs on a pty of ours, as in a terminal; the runtime hands the container's pty
    // master to conmon over --console-socket, and conmon copies both ways. podman 4.3 puts
    // no consoleSize in config.json: conmon sets the size on that master once podman has
    // attached, which may be after the container starts (under runc too), so the container
    // waits (5 s at most) for a size other than 0 0.
    under_both(|pm, rt| {
        let ws = nix::pty::Winsize {
            ws_row: 37,
            ws_col: 123,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).unwrap();
        let slave = fs::File::from(pty.slave);
        let mut a = vec!["run", "--rm", "-i", "-t"];
        a.extend(pm.container_args(
            &[],
            &[
                "sh",
                "-c",
                "tty; [ -t 0 ] && echo stdin-is-a-tty; [ -t 1 ] && echo stdout-is-a-tty; \
                 i=0; while [ \"$(stty size)\" = '0 0' ] && [ $i -lt 100 ]; do \
                 sleep 0.05; i=$((i+1)); done; stty size; echo READY; read x; echo got:$x; exit 3",
            ],
        ));
        let mut c = pm.cmd(rt);
        c.args(&a)
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        let child = c.spawn().unwrap();
        drop(c);
        let mut master = fs::File::from(pty.master);
        nix::fcntl::fcntl(
            master.as_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let first = read_until(&mut master, "READY", 30);
        // A pty turns "\n" into "\r\n": the container's output crossed a terminal.
        for want in [
            "/dev/pts/0\r\n",
            "stdin-is-a-tty\r\n",
            "stdout-is-a-tty\r\n",
            "37 123\r\n",
        ] {
            assert!(first.contains(want), "{want:?} missing from: {first:?}");
        }
        // In a terminal one presses Enter: "\r", which the container's pty makes "\n".
        master.write_all(b"typed\r").unwrap();
        let rest = read_until(&mut master, "got:typed", 10);
        assert!(rest.contains("got:typed"), "input did not arrive: {rest:?}");
        let status = wait_bounded(child, PODMAN_TIMEOUT, "podman run -it");
        assert_eq!(status.code(), Some(3), "{first}{rest}");
    });
}

#[test]
fn memory_and_pids_limits_reach_the_containers_cgroup() {
    under_both(|pm, rt| {
        let id = pm.run_d(
            rt,
            &["--memory", "64m", "--pids-limit", "77"],
            &["sleep", "1000"],
        );
        // Inside, /sys/fs/cgroup/<controller> is the container's own cgroup (runc binds the
        // container's directory there on v1). Read before the fork bomb below leaves no pid
        // for another exec.
        let inside = pm.podman(
            rt,
            &[
                "exec",
                &id,
                "cat",
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                "/sys/fs/cgroup/pids/pids.max",
            ],
        );
        let mem = pm.host_cgroup(rt, &id, "memory");
        let pids = pm.host_cgroup(rt, &id, "pids");
        assert_eq!(read_trim(&mem.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(read_trim(&pids.join("pids.max")), "77");
        let pid = pm.host_pid(rt, &id);
        assert!(
            read_trim(&pids.join("cgroup.procs"))
                .lines()
                .any(|l| l == pid.to_string()),
            "init {pid} is not in {}",
            pids.display()
        );

        // The limit holds: an exec'd shell (in the same cgroup) cannot fork past it, and
        // the kernel counts the refusals.
        let bomb = pm.podman(
            rt,
            &[
                "exec",
                &id,
                "sh",
                "-c",
                "n=0; while [ $n -lt 100 ]; do sleep 100 & n=$((n+1)); done; echo forked-100",
            ],
        );
        assert!(
            !text(&bomb.stdout).contains("forked-100") && text(&bomb.stderr).contains("can't fork"),
            "forked past pids.max 77: {} {}",
            text(&bomb.stdout),
            text(&bomb.stderr)
        );
        let events = read_trim(&pids.join("pids.events"));
        assert!(
            events.strip_prefix("max ").is_some_and(|n| n != "0"),
            "pids.events: {events}"
        );

        // Checked last, so that a wrong view inside does not hide how the limits work.
        assert_eq!(
            text(&inside.stdout).trim(),
            "67108864\n77",
            "the container does not see its own cgroup's limits: {}",
            text(&inside.stderr)
        );
        pm.ok(rt, &["rm", "--force", "--time", "0", &id]);
    });
}

#[test]
fn pause_freezes_the_cgroup_and_unpause_thaws_it() {
    under_both(|pm, rt| {
        let id = pm.run_d(
            rt,
            &[],
            &[
                "sh",
                "-c",
                "i=0; while :; do i=$((i+1)); echo $i > /tmp/tick; sleep 0.05; done",
            ],
        );
        let freezer = pm.host_cgroup(rt, &id, "freezer");
        let pid = pm.host_pid(rt, &id);
        // The container's files, seen from the host through its init's root.
        let tick = PathBuf::from(format!("/proc/{pid}/root/tmp/tick"));
        wait_until("the container's first tick", 10, || tick.exists());

        pm.ok(rt, &["pause", &id]);
        assert_eq!(read_trim(&freezer.join("freezer.state")), "FROZEN");
        assert_eq!(pm.status(rt, &id), "paused");
        // FROZEN is the kernel's word that every task is frozen; /proc shows it per task as
        // D (TASK_FROZEN). Not wchan: since Linux 6.1 a sleeping task is frozen where it
        // sleeps (wchan hrtimer_nanosleep), only a running one enters __refrigerator.
        let tasks = read_trim(&freezer.join("tasks"));
        assert!(!tasks.is_empty(), "no tasks in {}", freezer.display());
        for t in tasks.lines() {
            // A task may have exited since the list was read (then it has no status, or is a
            // zombie): only live ones count.
            let Ok(status) = fs::read_to_string(format!("/proc/{t}/status")) else {
                continue;
            };
            let state = status
                .lines()
                .find(|l| l.starts_with("State:"))
                .unwrap_or("");
            if state.contains("Z (zombie)") {
                continue;
            }
            assert!(
                state.contains("D (disk sleep)"),
                "task {t} of a FROZEN cgroup is {state:?}"
            );
        }

        pm.ok(rt, &["unpause", &id]);
        assert_eq!(read_trim(&freezer.join("freezer.state")), "THAWED");
        assert_eq!(pm.status(rt, &id), "running");
        let before = read_trim(&tick);
        wait_until("a tick after unpause", 10, || {
            fs::read_to_string(&tick).is_ok_and(|t| t.trim() != before)
        });
        pm.ok(rt, &["rm", "--force", "--time", "0", &id]);
    });
}

#[test]
fn kill_delivers_the_signal_asked_for_and_sigkill_by_default() {
    under_both(|pm, rt| {
        let id = pm.run_d(
            rt,
            &[],
            &[
                "sh",
                "-c",
                "trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.1; done",
            ],
        );
        let logs = || text(&pm.podman(rt, &["logs", &id]).stdout);
        wait_until("the trap to be set", 10, || logs().contains("ready"));
        pm.ok(rt, &["kill", "--signal", "USR1", &id]);
        wait_until("the USR1 trap to run", 10, || logs().contains("got-usr1"));
        assert_eq!(pm.status(rt, &id), "running", "USR1 stopped the container");

        pm.ok(rt, &["kill", &id]);
        assert_eq!(pm.ok(rt, &["wait", &id]), "137", "128 + SIGKILL");
        pm.ok(rt, &["rm", &id]);
    });
}

#[test]
fn top_lists_the_containers_processes_with_their_host_pids() {
    under_both(|pm, rt| {
        let id = pm.run_d(rt, &[], &["sleep", "1000"]);
        let pid = pm.host_pid(rt, &id);
        let top = pm.ok(rt, &["top", &id]);
        assert!(
            top.lines()
                .next()
                .is_some_and(|h| h.contains("PID") && h.contains("USER") && h.contains("COMMAND")),
            "{top}"
        );
        assert!(top.contains("sleep 1000"), "{top}");
        let top = pm.ok(rt, &["top", &id, "pid", "hpid", "user", "args"]);
        let row: Vec<&str> = top
            .lines()
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            row,
            ["1", pid.to_string().as_str(), "root", "sleep", "1000"],
            "{top}"
        );
        pm.ok(rt, &["rm", "--force", "--time", "0", &id]);
    });
}

#[test]
fn read_only_root_refuses_writes_but_tmp_is_a_writable_copy_up_tmpfs() {
    under_both(|pm, rt| {
        let out = pm.run_rm(
            rt,
            &["--read-only"],
            &[
                "sh",
                "-c",
                "touch /written 2>&1; echo touch-root=$?; \
                 echo hi > /tmp/written && cat /tmp/written; cat /tmp/from-image; \
                 grep -E ' / | /tmp ' /proc/self/mountinfo",
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let o = text(&out.stdout);
        assert!(o.contains("Read-only file system"), "{o}");
        assert!(o.contains("touch-root=1"), "{o}");
        assert!(o.contains("hi\n"), "/tmp not writable: {o}");
        // tmpcopyup: the tmpfs on /tmp starts with the image's /tmp.
        assert!(
            o.contains("seeded\n"),
            "the image's /tmp was not copied up: {o}"
        );
        let mounts: Vec<Vec<&str>> = o
            .lines()
            .filter(|l| l.contains(" - "))
            .map(|l| l.split(' ').collect())
            .collect();
        let root = mounts.iter().find(|f| f[4] == "/").expect(&o);
        assert!(root[5].split(',').any(|x| x == "ro"), "/ not ro: {o}");
        let tmp = mounts.iter().find(|f| f[4] == "/tmp").expect(&o);
        let fstype = tmp.iter().skip_while(|x| **x != "-").nth(1);
        assert_eq!(fstype, Some(&"tmpfs"), "{o}");
    });
}

#[test]
fn user_sets_every_uid_and_gid_of_the_process() {
    under_both(|pm, rt| {
        let out = pm.run_rm(
            rt,
            &["--user", "1234:5678"],
            &["grep", "-E", "^(Uid|Gid|Groups):", "/proc/self/status"],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let o = text(&out.stdout);
        let fields = |k: &str| -> Vec<String> {
            o.lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        assert_eq!(fields("Uid:"), ["1234"; 4], "{o}");
        assert_eq!(fields("Gid:"), ["5678"; 4], "{o}");
        // A name is looked up in the image's /etc/passwd.
        let out = pm.run_rm(rt, &["--user", "nobody"], &["id"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout).trim(),
            "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
        );
    });
}

#[test]
fn cap_drop_and_cap_add_shape_the_capability_sets() {
    const CHOWN: u64 = 1 << 0;
    const KILL: u64 = 1 << 5;
    under_both(|pm, rt| {
        let out = pm.run_rm(
            rt,
            &["--cap-drop", "all", "--cap-add", "chown,kill"],
            &["cat", "/proc/self/status"],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let s = text(&out.stdout);
        for k in ["CapEff:", "CapPrm:", "CapBnd:"] {
            assert_eq!(
                cap(&s, k),
                CHOWN | KILL,
                "{k} of --cap-drop all --cap-add chown,kill"
            );
        }
        let out = pm.run_rm(rt, &["--cap-drop", "chown"], &["cat", "/proc/self/status"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let s = text(&out.stdout);
        for k in ["CapEff:", "CapBnd:"] {
            assert_eq!(cap(&s, k) & CHOWN, 0, "{k} still has CHOWN");
            assert_ne!(cap(&s, k) & KILL, 0, "{k} lost a default capability (KILL)");
        }
    });
}

#[test]
fn exit_42_and_podmans_127_and_126_pass_through() {
    under_both(|pm, rt| {
        let out = pm.run_rm(rt, &[], &["sh", "-c", "exit 42"]);
        assert_eq!(out.status.code(), Some(42), "{}", text(&out.stderr));
        // podman turns the runtime's error text into 127 (not found) and 126 (cannot run).
        let out = pm.run_rm(rt, &[], &["no-such-command"]);
        assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("executable file not found in $PATH"),
            "{}",
            text(&out.stderr)
        );
        let out = pm.run_rm(rt, &[], &["/etc/passwd"]);
        assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
        assert_eq!(
            pm.ok(rt, &["ps", "-a", "-q"]),
            "",
            "a failed run left its container"
        );
    });
}

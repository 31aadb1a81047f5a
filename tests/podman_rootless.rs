//! Rootless podman drives ruse (issue 6). A throwaway non-root user (common::user: /etc/subuid
//! and /etc/subgid ranges, a private XDG_RUNTIME_DIR, its own copy of ruse) runs podman 4.3
//! with `--runtime` set to that copy, and in the same test to runc (`/usr/sbin/runc`), so a
//! failure under both is podman's or the machine's, and the panic message says which runtime
//! failed.
//!
//! Rootless podman re-execs itself in a user namespace that maps the user to 0 and its
//! subordinate ranges above (newuidmap/newgidmap), kept alive by its "pause process", and runs
//! conmon and the runtime as root of that namespace: config.json asks for no user namespace of
//! its own. So the runtime is uid 0 in a namespace that owns no cgroup (the v1 controllers of
//! this hybrid host cannot be delegated: `cgroup_manager = "cgroupfs"`, no limits) and may not
//! mknod (runc bind-mounts the host's /dev/null and the other default devices instead). There
//! is no systemd session or D-Bus: events go to a file, XDG_RUNTIME_DIR is the user's private
//! dir, and the runtime's state is in `$XDG_RUNTIME_DIR/<runtime name>`. Every scenario of the
//! issue works rootless under runc on this machine, `--read-only` included, so none is left out.
//!
//! Each test has a user and a podman of its own, all in the user's dir: the store (native
//! overlay inside the user namespace), run root, libpod tmp dir (file locks, events log,
//! pause.pid), volumes, network config, `containers.conf` (ulimits within this machine's hard
//! limits, as tests/podman.rs) and `storage.conf`, and a busybox image the user imports. What
//! is asserted is what the kernel shows: the id maps read inside, `/proc/<pid>/status` of the
//! container process read from the host, owners of files on the host. After each runtime the
//! test checks that nothing but the pause process is left: no container, runtime state dir,
//! process, mount in podman's namespace or on the host. At the end the pause process is killed
//! by its pid, every process of the user (by uid, or in its user namespace: those of
//! subordinate uids) must be gone, and the user, its ranges and its dir are removed.

mod common;

use common::root_or_skip;
use common::user::User;
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
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

/// runc first: its result says whether the scenario works rootless on this machine at all.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Rt {
    Runc,
    Ruse,
}

const RUNTIMES: [Rt; 2] = [Rt::Runc, Rt::Ruse];

impl Rt {
    /// podman names a runtime by its path's basename; the runtime's rootless state root is
    /// `$XDG_RUNTIME_DIR/<name>`.
    fn name(self) -> &'static str {
        match self {
            Rt::Runc => "runc",
            Rt::Ruse => "ruse",
        }
    }
}

/// One rootless podman of one throwaway user, every file of it under `dir`.
struct Podman {
    user: User,
    dir: PathBuf,
    /// The test's own (the host's) user namespace.
    host_userns: PathBuf,
    /// The user namespace of podman's pause process, once the import made it.
    podman_userns: Option<PathBuf>,
    torn_down: bool,
}

impl Podman {
    fn new() -> Podman {
        let user = User::new();
        let dir = user.dir.join("podman");
        for d in [
            "storage",
            "run",
            "libpod-tmp",
            "image-tmp",
            "volumes",
            "net",
        ] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        // As tests/podman.rs: hard limits within this machine's (`ulimit -H -n` is 20000, and
        // there is no CAP_SYS_RESOURCE to raise them), the locks in our tmp dir rather than
        // /dev/shm, events to a file (no journald), and "ruse" among the runtimes whose JSON
        // error log podman reads. cgroupfs: no systemd to ask for a scope; on v1 rootless
        // podman then runs containers without a cgroup.
        fs::write(
            dir.join("containers.conf"),
            r#"[containers]
default_ulimits = ["nofile=1024:20000", "nproc=1024:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "ruse"]
"#,
        )
        .unwrap();
        fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
                dir.join("run").display(),
                dir.join("storage").display()
            ),
        )
        .unwrap();
        user.chown(&dir);
        let mut pm = Podman {
            user,
            dir,
            host_userns: fs::read_link("/proc/self/ns/user").unwrap(),
            podman_userns: None,
            torn_down: false,
        };
        // From here a failure tears down through Drop.
        pm.import_image();
        let pause = pm
            .pause_pid()
            .expect("podman import left no pause.pid: podman did not make its user namespace");
        pm.podman_userns = fs::read_link(format!("/proc/{pause}/ns/user")).ok();
        assert!(
            pm.podman_userns
                .as_ref()
                .is_some_and(|n| *n != pm.host_userns),
            "podman's pause process {pause} is not in a user namespace of its own"
        );
        pm
    }

    /// A busybox image built here (there is no registry), imported by the user into its own
    /// store: the rootfs of tests/common's Env, plus a file in /tmp that `--read-only`'s tmpfs
    /// must copy up.
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
        // Root reads the rootfs; the user's podman only reads the tar on its stdin.
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut import = self.cmd(Rt::Ruse);
        import
            .args(["import", "-", IMAGE])
            .stdin(tar.stdout.take().unwrap());
        let out = self.output(&mut import);
        assert!(tar.wait().unwrap().success(), "tar of the rootfs failed");
        assert!(
            out.status.success(),
            "podman import as {} failed (before any runtime ran): {}",
            self.user.name,
            text(&out.stderr)
        );
    }

    fn runtime_path(&self, rt: Rt) -> PathBuf {
        match rt {
            Rt::Runc => PathBuf::from(RUNC),
            // The user's copy: the repository's target dir need not be reachable by it.
            Rt::Ruse => self.user.dir.join("ruse"),
        }
    }

    /// podman as the user, with this store, these dirs and `--runtime <rt>`. The flags name
    /// what the config files say too, so that podman's exit command (`podman container
    /// cleanup`, run by conmon with podman's own flags) gets them as well.
    fn cmd(&self, rt: Rt) -> Command {
        let d = |s: &str| self.dir.join(s);
        let mut c = self.user.command("podman");
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
            .args([
                "--storage-driver",
                "overlay",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
                "--runtime",
            ])
            .arg(self.runtime_path(rt));
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

    fn podman(&self, rt: Rt, args: &[&str]) -> Output {
        let mut c = self.cmd(rt);
        c.args(args).stdin(Stdio::null());
        self.output(&mut c)
    }

    /// `podman args…`, asserted to succeed; its stdout, trimmed.
    fn ok(&self, rt: Rt, args: &[&str]) -> String {
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

    /// `--network none`: rootless podman's other modes need slirp4netns or pasta, which this
    /// issue leaves out.
    fn container_args<'a>(opts: &[&'a str], cmd: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["--network", "none"];
        a.extend_from_slice(opts);
        a.push(IMAGE);
        a.extend_from_slice(cmd);
        a
    }

    /// `podman run --rm [opts] IMAGE cmd…` in the foreground.
    fn run_rm(&self, rt: Rt, opts: &[&str], cmd: &[&str]) -> Output {
        let mut a = vec!["run", "--rm"];
        a.extend(Self::container_args(opts, cmd));
        self.podman(rt, &a)
    }

    /// `podman run -d [opts] IMAGE cmd…`: the container's id, once podman says it runs.
    fn run_d(&self, rt: Rt, opts: &[&str], cmd: &[&str]) -> String {
        let mut a = vec!["run", "-d"];
        a.extend(Self::container_args(opts, cmd));
        let id = self.ok(rt, &a);
        assert_eq!(self.status(rt, &id), "running");
        id
    }

    fn inspect(&self, rt: Rt, id: &str, format: &str) -> String {
        self.ok(rt, &["inspect", "--format", format, id])
    }

    fn status(&self, rt: Rt, id: &str) -> String {
        self.inspect(rt, id, "{{.State.Status}}")
    }

    /// The container init's pid on the host.
    fn host_pid(&self, rt: Rt, id: &str) -> i32 {
        let pid = self.inspect(rt, id, "{{.State.Pid}}");
        pid.parse()
            .unwrap_or_else(|_| panic!("pid of {id}: {pid:?}"))
    }

    /// `$XDG_RUNTIME_DIR/<runtime name>`: where podman expects a rootless runtime's state.
    fn state_root(&self, rt: Rt) -> PathBuf {
        self.user.dir.join("xdg").join(rt.name())
    }

    fn pause_pid(&self) -> Option<i32> {
        fs::read_to_string(self.dir.join("libpod-tmp/pause.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Live processes of this podman: the user's uid (podman, its pause process, conmon, the
    /// container's root), or in a user namespace of the user's (the container's processes of
    /// subordinate uids). Zombies are left out: an orphan waits for the host's init to reap it.
    fn processes(&self) -> Vec<(i32, String)> {
        let procs: Vec<(i32, u32, Option<PathBuf>)> = common::all_pids()
            .into_iter()
            .filter_map(|p| {
                let status = fs::read_to_string(format!("/proc/{p}/status")).ok()?;
                let field = |f: &str| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix(f))
                        .and_then(|v| v.split_whitespace().next())
                        .map(str::to_string)
                };
                if field("State:").as_deref() == Some("Z") {
                    return None;
                }
                let uid = field("Uid:")?.parse().ok()?;
                Some((p, uid, fs::read_link(format!("/proc/{p}/ns/user")).ok()))
            })
            .collect();
        let mut namespaces: HashSet<PathBuf> = self.podman_userns.iter().cloned().collect();
        for (_, uid, ns) in &procs {
            if let Some(ns) = ns.as_ref().filter(|_| *uid == self.user.uid) {
                if *ns != self.host_userns {
                    namespaces.insert(ns.clone());
                }
            }
        }
        procs
            .into_iter()
            .filter(|(_, uid, ns)| {
                *uid == self.user.uid || ns.as_ref().is_some_and(|n| namespaces.contains(n))
            })
            .map(|(p, _, _)| {
                let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                (p, String::from_utf8_lossy(&cmd).replace('\0', " "))
            })
            .collect()
    }

    /// Mount points under the user's dir in `mountinfo` (the host's, or podman's namespace's:
    /// container rootfs overlays and /dev/shm binds are made in the latter).
    fn mounts_in(&self, mountinfo: &str) -> Vec<String> {
        fs::read_to_string(mountinfo)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| Path::new(m).starts_with(&self.user.dir))
            .map(str::to_string)
            .collect()
    }

    /// What the last runtime's scenario left behind once conmon and podman's exit commands
    /// had time to go: the scenario removes every container it makes, and only the pause
    /// process (podman's, kept for the next command) may stay.
    fn leftovers(&self) -> Vec<String> {
        let pause = self.pause_pid();
        let others = || -> Vec<(i32, String)> {
            self.processes()
                .into_iter()
                .filter(|(p, _)| Some(*p) != pause)
                .collect()
        };
        let end = Instant::now() + SETTLE;
        while !others().is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut left = Vec::new();
        for (pid, cmd) in others() {
            left.push(format!("process {pid}: {cmd}"));
        }
        let ps = self.podman(Rt::Ruse, &["ps", "-a", "--format", "{{.ID}} {{.Status}}"]);
        for l in text(&ps.stdout).lines() {
            left.push(format!("container {l}"));
        }
        for rt in RUNTIMES {
            for e in fs::read_dir(self.state_root(rt))
                .into_iter()
                .flatten()
                .flatten()
            {
                left.push(format!("{} state {}", rt.name(), e.path().display()));
            }
        }
        if let Some(p) = pause {
            for m in self.mounts_in(&format!("/proc/{p}/mountinfo")) {
                left.push(format!("mount in podman's namespace: {m}"));
            }
        }
        for m in self.mounts_in("/proc/self/mountinfo") {
            left.push(format!("host mount {m}"));
        }
        left
    }

    /// Removes every container and runtime state dir of this podman and kills what is left of
    /// its processes but the pause process, so the next runtime starts from nothing. Best
    /// effort: `leftovers` and `teardown` report what stays.
    fn clear(&self) {
        let _ = self.podman(Rt::Ruse, &["rm", "--all", "--force", "--time", "0"]);
        for rt in RUNTIMES {
            for e in fs::read_dir(self.state_root(rt))
                .into_iter()
                .flatten()
                .flatten()
            {
                // In podman's namespaces, where podman itself runs the runtime.
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.podman(
                    rt,
                    &[
                        "unshare",
                        &self.runtime_path(rt).to_string_lossy(),
                        "delete",
                        "--force",
                        &id,
                    ],
                );
            }
        }
        let pause = self.pause_pid();
        self.kill_all_but(pause);
    }

    /// Waits (bounded) for this podman's processes but `keep` to go, then SIGKILLs the rest by
    /// pid.
    fn kill_all_but(&self, keep: Option<i32>) {
        let others = || -> Vec<i32> {
            self.processes()
                .into_iter()
                .map(|(p, _)| p)
                .filter(|p| Some(*p) != keep)
                .collect()
        };
        let end = Instant::now() + SETTLE;
        while !others().is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in others() {
            kill(pid);
        }
        wait_for(Duration::from_secs(5), || others().is_empty());
    }

    /// Everything of the user's podman goes: containers, the pause process (by the pid in its
    /// pause.pid), every other process of the user, mounts under its dir. Returns what could
    /// not be removed. The user, its ranges and its dir go when `user` is dropped.
    fn teardown(&mut self) -> Vec<String> {
        self.torn_down = true;
        self.clear();
        if let Some(p) = self.pause_pid() {
            kill(p);
        }
        self.kill_all_but(None);
        let mut left = Vec::new();
        for (pid, cmd) in self.processes() {
            left.push(format!("process {pid}: {cmd}"));
        }
        for m in self.mounts_in("/proc/self/mountinfo").iter().rev() {
            let _ = Command::new("umount").args(["-l", m]).output();
            left.push(format!("host mount {m}"));
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

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
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

/// Polls `cond` until it holds or `limit` passes; whether it held.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(non-text panic)".into())
}

/// Runs `scenario` under runc, then under ruse, in one fresh user's podman, and fails naming
/// the runtime(s) that failed. A scenario that passes must leave nothing behind; at the end
/// the user must be gone with everything of it.
fn under_both(scenario: impl Fn(&Podman, Rt)) {
    if !root_or_skip() {
        return;
    }
    let mut pm = Podman::new();
    let mut failed: Vec<(&str, String)> = Vec::new();
    for rt in RUNTIMES {
        match catch_unwind(AssertUnwindSafe(|| scenario(&pm, rt))) {
            Err(e) => failed.push((rt.name(), panic_text(&*e))),
            Ok(()) => {
                let left = pm.leftovers();
                if !left.is_empty() {
                    failed.push((rt.name(), format!("passed, but left behind: {left:#?}")));
                }
            }
        }
        pm.clear();
    }
    let (name, dir) = (pm.user.name.clone(), pm.user.dir.clone());
    let mut left = pm.teardown();
    // User's Drop: userdel, the ranges, the dir.
    drop(pm);
    if dir.exists() {
        left.push(format!("dir {}", dir.display()));
    }
    for f in ["/etc/passwd", "/etc/subuid", "/etc/subgid"] {
        let prefix = format!("{name}:");
        if fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with(&prefix))
        {
            left.push(format!("{name} still in {f}"));
        }
    }
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

/// The rows of a /proc/<pid>/uid_map or gid_map: (inside, outside, count).
fn map_rows(text: &str) -> Vec<(u32, u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            (f.len() == 3).then(|| (f[0], f[1], f[2]))
        })
        .collect()
}

/// The map rootless podman writes: `id` (the user's own uid or gid) at 0, then its
/// subordinate ranges from `file` one after the other from 1.
fn expected_map(u: &User, id: u32, file: &str) -> Vec<(u32, u32, u32)> {
    let mut rows = vec![(0, id, 1)];
    let mut next = 1;
    for (first, count) in u.subordinate_ranges(file) {
        rows.push((next, first, count));
        next += count;
    }
    rows
}

/// The first subordinate id `file` grants the user: uid (gid) 1 in the container.
fn first_subordinate(u: &User, file: &str) -> u32 {
    u.subordinate_ranges(file)
        .first()
        .unwrap_or_else(|| panic!("{} has no range in {file}", u.name))
        .0
}

/// The four ids of a `Uid:` or `Gid:` line of /proc/<pid>/status text.
fn ids(status: &str, key: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {status}"))
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect()
}

#[test]
fn run_rm_with_network_none_passes_output_and_exit_codes_and_removes_the_container() {
    under_both(|pm, rt| {
        // --network none: a network namespace of the container's own with lo alone.
        let out = pm.run_rm(
            rt,
            &[],
            &[
                "sh",
                "-c",
                "echo to-stdout; echo to-stderr >&2; \
                 awk -F: 'NR > 2 { gsub(/ /, \"\", $1); print \"if:\" $1 }' /proc/net/dev; \
                 exit 42",
            ],
        );
        assert_eq!(out.status.code(), Some(42), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "to-stdout\nif:lo\n");
        assert!(
            text(&out.stderr).contains("to-stderr"),
            "{}",
            text(&out.stderr)
        );
        // A command that is not there: podman makes the runtime's error text 127.
        let out = pm.run_rm(rt, &[], &["no-such-command"]);
        assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("executable file not found in $PATH"),
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
fn uid_and_gid_maps_put_the_user_at_0_and_its_subordinate_ranges_above() {
    under_both(|pm, rt| {
        let out = pm.run_rm(
            rt,
            &[],
            &[
                "sh",
                "-c",
                "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; id",
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let o = text(&out.stdout);
        let parts: Vec<&str> = o.split("--\n").collect();
        assert_eq!(parts.len(), 3, "{o}");
        let u = &pm.user;
        assert_eq!(
            map_rows(parts[0]),
            expected_map(u, u.uid, "/etc/subuid"),
            "uid_map inside, against /etc/subuid: {o}"
        );
        assert_eq!(
            map_rows(parts[1]),
            expected_map(u, u.gid, "/etc/subgid"),
            "gid_map inside, against /etc/subgid: {o}"
        );
        assert!(
            parts[2].starts_with("uid=0(root) gid=0(root)"),
            "not root inside: {o}"
        );
    });
}

#[test]
fn the_containers_root_is_the_user_on_the_host_and_its_uid_1_the_first_subordinate_uid() {
    under_both(|pm, rt| {
        let u = &pm.user;
        // The same process says who it is inside, then sleeps to be looked at from the host.
        let cases = [
            (vec![], "ids=0:0", u.uid, u.gid),
            (
                vec!["--user", "1:1"],
                "ids=1:1",
                first_subordinate(u, "/etc/subuid"),
                first_subordinate(u, "/etc/subgid"),
            ),
        ];
        for (opts, inside, host_uid, host_gid) in cases {
            let id = pm.run_d(
                rt,
                &opts,
                &["sh", "-c", "echo ids=$(id -u):$(id -g); exec sleep 1000"],
            );
            let logs = || text(&pm.podman(rt, &["logs", &id]).stdout);
            assert!(
                wait_for(Duration::from_secs(10), || logs().contains("ids=")),
                "no id output: {}",
                logs()
            );
            assert!(logs().starts_with(inside), "{opts:?}: inside: {}", logs());
            let pid = pm.host_pid(rt, &id);
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            assert_eq!(
                ids(&status, "Uid:"),
                [host_uid; 4],
                "{opts:?}: host uids of container process {pid}"
            );
            assert_eq!(
                ids(&status, "Gid:"),
                [host_gid; 4],
                "{opts:?}: host gids of container process {pid}"
            );
            // The process is the container's init (pid 1 of its pid namespace), in podman's
            // user namespace.
            let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
            assert!(nspid.ends_with("\t1"), "{nspid}");
            assert_eq!(
                fs::read_link(format!("/proc/{pid}/ns/user")).ok(),
                pm.podman_userns,
                "container process {pid} is not in podman's user namespace"
            );
            pm.ok(rt, &["rm", "--force", "--time", "0", &id]);
        }
    });
}

#[test]
fn files_written_in_a_bind_mounted_volume_belong_to_the_user_and_its_first_subordinate_uid() {
    under_both(|pm, rt| {
        let u = &pm.user;
        let vol = pm.dir.join(format!("vol-{}", rt.name()));
        fs::create_dir(&vol).unwrap();
        u.chown(&vol);
        // Writable by uid 1 inside too, which is none of the user's ids on the host.
        common::user::chmod(&vol, 0o777);
        let bind = format!("{}:/data", vol.display());
        let out = pm.run_rm(
            rt,
            &["-v", &bind],
            &[
                "sh",
                "-c",
                "touch /data/by-root && stat -c %u:%g /data/by-root",
            ],
        );
        assert!(out.status.success(), "as root: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "0:0", "owner seen inside");
        let out = pm.run_rm(
            rt,
            &["--user", "1:1", "-v", &bind],
            &[
                "sh",
                "-c",
                "touch /data/by-uid1 && stat -c %u:%g /data/by-uid1",
            ],
        );
        assert!(out.status.success(), "as uid 1: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "1:1", "owner seen inside");

        let owner = |f: &str| {
            let m = fs::metadata(vol.join(f)).unwrap_or_else(|e| panic!("{f} on the host: {e}"));
            (m.uid(), m.gid())
        };
        assert_eq!(owner("by-root"), (u.uid, u.gid), "root's file on the host");
        assert_eq!(
            owner("by-uid1"),
            (
                first_subordinate(u, "/etc/subuid"),
                first_subordinate(u, "/etc/subgid")
            ),
            "uid 1's file on the host"
        );
    });
}

#[test]
fn detached_container_takes_exec_and_stop_delivers_sigterm_then_rm_removes_its_state() {
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
        // The runtime's state where podman looks for it (runc's rule for rootless).
        let state = pm.state_root(rt).join(&id);
        assert!(state.is_dir(), "no state dir {}", state.display());
        let host_pidns = fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
        let out = pm.ok(
            rt,
            &[
                "exec",
                &id,
                "sh",
                "-c",
                "echo exec-ran; id -u; readlink /proc/self/ns/pid; cat /proc/1/cmdline | tr '\\0' ' '",
            ],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.first(), Some(&"exec-ran"), "{out}");
        assert_eq!(lines.get(1), Some(&"0"), "exec is not root: {out}");
        assert_eq!(
            lines.get(2).copied(),
            host_pidns.to_str(),
            "exec is not in the container's pid namespace: {out}"
        );
        assert!(
            lines.get(3).is_some_and(|l| l.starts_with("sh -c trap")),
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
        assert!(!state.exists(), "{} left after rm", state.display());
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

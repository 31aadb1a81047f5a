//! containerd drives ruse: a private `containerd` (its own config, root, state and socket
//! under a temp dir) runs a locally built busybox image through `containerd-shim-runc-v2`
//! with `--runc-binary` pointing at ruse, and each scenario is run first with runc, the
//! reference, then with ruse. A runc failure is reported as such: it is the engine's or the
//! machine's problem, not ruse's. What is checked is what the kernel shows from the host
//! (cgroupfs knobs, `/proc/<pid>`), what ctr reports, and that nothing is left behind
//! (cgroup directories, the runtime's state dir, the bundle and its mounts, shims).
//!
//! The shim talks to the runtime as go-runc does (`../shared/COMPAT.md`): `create --bundle B
//! --pid-file P [--console-socket S]`, `start`, `state`, `kill [--all]`, `delete [--force]`,
//! `pause`/`resume`, `ps --format json`, `exec --process F --detach --pid-file P`, always
//! with `--root R --log <bundle>/log.json --log-format json`.
//!
//! The containers get ctr's default spec: a new network namespace with no setup (loopback
//! only, nothing reaches outside) and a cgroup under `/<parent>/<id>` (`--cgroup`), the
//! parent being this daemon's, so that every directory made can be found and removed.
//! cgroup knobs are read from v1 or v2 files, whichever hierarchy serves the controller
//! (`common::cgroup`); only this machine's hybrid layout has run them (the VM does not run
//! this file).

mod common;

use common::cgroup::{dir_of, hierarchy_mounts, mount_for, CgDir};
use common::{root_or_skip, RUSE};
use serde_json::{json, Value};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const RUNC: &str = "/usr/sbin/runc";
const IMAGE: &str = "localhost/ruse-ctr-test:latest";
const TOOLS: [&str; 5] = [
    "/usr/bin/containerd",
    "/usr/bin/ctr",
    "/usr/bin/containerd-shim-runc-v2",
    RUNC,
    "/usr/bin/script",
];

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Daemons alive in this process, and whether `/run/containerd` existed before the first.
/// The shims put their sockets in `/run/containerd/s` whatever the config says (containerd
/// 1.6 hard-codes it), and it is shared by every daemon of this file.
static LIVE: Mutex<usize> = Mutex::new(0);
static RUN_CONTAINERD_EXISTED: OnceLock<bool> = OnceLock::new();

#[derive(Clone, Copy)]
struct Runtime {
    name: &'static str,
    bin: &'static str,
}

/// runc first: when it fails too, the problem is not ruse's.
const RUNTIMES: [Runtime; 2] = [
    Runtime {
        name: "runc",
        bin: RUNC,
    },
    Runtime {
        name: "ruse",
        bin: RUSE,
    },
];

/// Root, every tool installed; otherwise a skip (a failure under `CI=true`).
fn prerequisites_or_skip() -> bool {
    if !root_or_skip() {
        return false;
    }
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| !Path::new(t).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("missing {missing:?} (`just deps` installs containerd and runc); CI=true forbids skipping");
    }
    eprintln!("skipped: missing {missing:?}");
    false
}

/// The outcome of one command.
struct Res {
    cmd: String,
    code: Option<i32>,
    out: String,
    err: String,
}

impl Res {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for Res {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "`{}` exited {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.cmd, self.code, self.out, self.err
        )
    }
}

/// Runs `c` to completion within `secs`, output through files (ctr's children must not hold
/// a pipe the test waits on); killed and reported with code None when it takes longer.
fn run_bounded(c: &mut Command, scratch: &Path, secs: u64) -> Res {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let (o, e) = (
        scratch.join(format!("cmd{n}.out")),
        scratch.join(format!("cmd{n}.err")),
    );
    let cmd = format!("{c:?}").replace('"', "");
    let mut child = c
        .stdin(Stdio::null())
        .stdout(fs::File::create(&o).unwrap())
        .stderr(fs::File::create(&e).unwrap())
        .spawn()
        .unwrap_or_else(|err| panic!("spawn {cmd}: {err}"));
    let end = Instant::now() + Duration::from_secs(secs);
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let res = Res {
        cmd,
        code,
        out: fs::read_to_string(&o).unwrap_or_default(),
        err: fs::read_to_string(&e).unwrap_or_default()
            + if code.is_none() {
                "\n(timed out, killed)"
            } else {
                ""
            },
    };
    let _ = fs::remove_file(o);
    let _ = fs::remove_file(e);
    res
}

/// `sha256:<hex>` of a file, by coreutils (no hashing crate among the dev-dependencies).
fn sha256_of(p: &Path) -> String {
    let out = Command::new("sha256sum").arg(p).output().unwrap();
    assert!(out.status.success(), "sha256sum {}: {out:?}", p.display());
    let hex = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    format!("sha256:{hex}")
}

/// Stores `bytes` as a content-addressed blob of the layout; its descriptor.
fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let tmp = blobs.join("incoming");
    fs::write(&tmp, bytes).unwrap();
    let digest = sha256_of(&tmp);
    fs::rename(&tmp, blobs.join(digest.trim_start_matches("sha256:"))).unwrap();
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// An OCI image layout archive of one uncompressed layer: the host's static busybox with its
/// applets, /etc/passwd and /etc/group (as `common::Env` makes its rootfs). No registry is
/// reachable here, so the image is made, not pulled.
fn build_image(dir: &Path) -> PathBuf {
    let rootfs = dir.join("image-rootfs");
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static must be installed");
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

    let layer_tar = dir.join("layer.tar");
    let st = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer_tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar of the image layer");
    let layout = dir.join("image");
    let layer = put_blob(
        &layout,
        "application/vnd.oci.image.layer.v1.tar",
        &fs::read(&layer_tar).unwrap(),
    );
    // Uncompressed, so the layer's diff id is its digest.
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    });
    let config = put_blob(
        &layout,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer],
    });
    let mut manifest = put_blob(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    manifest["annotations"] = json!({
        "io.containerd.image.name": IMAGE,
        "org.opencontainers.image.ref.name": "latest",
    });
    fs::write(
        layout.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [manifest]}).to_string(),
    )
    .unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("image.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .unwrap();
    assert!(st.success(), "tar of the image layout");
    archive
}

/// Host mount points (this process's mount namespace).
fn mount_points() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .collect()
}

/// Pids whose command line has the shim binary and `-address <sock>` (this daemon's shims).
fn shims_of(sock: &Path) -> Vec<i32> {
    let sock = sock.to_string_lossy();
    common::all_pids()
        .into_iter()
        .filter(|pid| {
            let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.first().is_some_and(|a| a.contains("containerd-shim"))
                && args.windows(2).any(|w| w[0] == "-address" && w[1] == sock)
        })
        .collect()
}

fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

fn sigkill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// A private containerd: config, root, state, socket and FIFOs in `dir`, its own namespace,
/// and a cgroup parent of its own in every hierarchy. Dropping it removes everything,
/// also after a failed assertion.
struct Daemon {
    dir: PathBuf,
    sock: PathBuf,
    ns: String,
    cg_parent: String,
    child: Option<Child>,
}

impl Daemon {
    fn start() -> Daemon {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("ruse-ctr-{pid}-{n}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        {
            let mut live = LIVE.lock().unwrap();
            RUN_CONTAINERD_EXISTED.get_or_init(|| Path::new("/run/containerd").exists());
            *live += 1;
        }
        let mut d = Daemon {
            sock: dir.join("containerd.sock"),
            ns: format!("ruse-test-{pid}-{n}"),
            cg_parent: format!("ruse-ctr-{pid}-{n}"),
            dir,
            child: None,
        };
        // CRI (network, streaming server) and the snapshotters that need other filesystems
        // are off; `opt` would make /opt/containerd. Debug logs say what the shim did.
        let config = format!(
            r#"version = 2
root = "{dir}/root"
state = "{dir}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  level = "debug"
"#,
            dir = d.dir.display(),
            sock = d.sock.display(),
        );
        fs::write(d.dir.join("config.toml"), config).unwrap();
        let log = fs::File::create(d.log_path()).unwrap();
        d.child = Some(
            Command::new("containerd")
                .arg("--config")
                .arg(d.dir.join("config.toml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("spawn containerd"),
        );
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "containerd exited ({st}) before answering:\n{}",
                    d.log_tail(30)
                );
            }
            if d.ctr_raw(&["version"], 10).ok() {
                break;
            }
            assert!(
                Instant::now() < end,
                "containerd did not answer within 30 s:\n{}",
                d.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let archive = build_image(&d.dir);
        let res = d.ctr_raw(
            &[
                "images",
                "import",
                "--all-platforms",
                archive.to_str().unwrap(),
            ],
            60,
        );
        assert!(res.ok(), "image import: {res}\n{}", d.log_tail(20));
        d
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn runc_root(&self) -> PathBuf {
        self.dir.join("runc")
    }

    /// Where the shim keeps a container's state: runc's `--root` is `<runc-root>/<ns>`.
    fn runtime_state(&self, id: &str) -> PathBuf {
        self.runc_root().join(&self.ns).join(id)
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.dir
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns)
            .join(id)
    }

    fn ctr_raw(&self, args: &[&str], secs: u64) -> Res {
        let mut c = Command::new("ctr");
        c.arg("-a")
            .arg(&self.sock)
            .arg("-n")
            .arg(&self.ns)
            .args(args);
        run_bounded(&mut c, &self.dir, secs)
    }

    /// `ctr … args` inside a pty (`script`): ctr -t insists on a terminal on its stdin.
    fn ctr_in_pty(&self, args: &[String]) -> Res {
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let mut line = format!(
            "ctr -a {} -n {}",
            quote(&self.sock.to_string_lossy()),
            self.ns
        );
        for a in args {
            line.push(' ');
            line.push_str(&quote(a));
        }
        let mut c = Command::new("script");
        c.args(["-q", "-e", "-c", &line, "/dev/null"]);
        run_bounded(&mut c, &self.dir, 60)
    }

    /// Every container id ctr knows in this namespace.
    fn containers(&self) -> Vec<String> {
        let r = self.ctr_raw(&["containers", "ls", "-q"], 30);
        r.out.lines().map(str::to_string).collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let mut found = Vec::new();
        // A frozen process dies of SIGKILL only once thawed: a test that failed while its
        // container was paused would otherwise leave it behind.
        for m in hierarchy_mounts() {
            let Ok(rd) = fs::read_dir(m.join(&self.cg_parent)) else {
                continue;
            };
            for e in rd.flatten().filter(|e| e.path().is_dir()) {
                let p = e.path();
                if fs::read_to_string(p.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED") {
                    let _ = fs::write(p.join("freezer.state"), "THAWED");
                }
                if fs::read_to_string(p.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1") {
                    let _ = fs::write(p.join("cgroup.freeze"), "0");
                }
            }
        }
        let daemon_up = self
            .child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none());
        if daemon_up {
            for id in self.containers() {
                found.push(format!("container {id}"));
                self.ctr_raw(&["tasks", "delete", "--force", &id], 30);
                self.ctr_raw(&["containers", "rm", &id], 30);
            }
        }
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let end = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // A shim outlives containerd while it has a task; every task is gone by now, so one
        // still here is a leftover (the shim exits once its task is deleted).
        let end = Instant::now() + Duration::from_secs(5);
        while !shims_of(&self.sock).is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        for pid in shims_of(&self.sock) {
            found.push(format!("shim {pid}"));
            sigkill(pid);
        }
        // A shim removes its socket (in /run/containerd/s) on a clean exit only; the bundle's
        // `address` file names it.
        let tasks = self
            .dir
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns);
        for e in fs::read_dir(tasks).into_iter().flatten().flatten() {
            let addr = fs::read_to_string(e.path().join("address")).unwrap_or_default();
            let sock = addr.trim().trim_start_matches("unix://");
            if !sock.is_empty() && Path::new(sock).exists() {
                found.push(format!("shim socket {sock}"));
                let _ = fs::remove_file(sock);
            }
        }
        let cg_dirs: Vec<PathBuf> = hierarchy_mounts()
            .into_iter()
            .map(|m| m.join(&self.cg_parent))
            .filter(|p| p.exists())
            .collect();
        for d in &cg_dirs {
            let Ok(rd) = fs::read_dir(d) else { continue };
            for e in rd.flatten().filter(|e| e.path().is_dir()) {
                found.push(format!("cgroup {}", e.path().display()));
                let procs = fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.parse().ok()) {
                    found.push(format!("process {pid}"));
                    sigkill(pid);
                }
            }
        }
        let mut mounts: Vec<PathBuf> = mount_points()
            .into_iter()
            .filter(|m| m.starts_with(&self.dir))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        for m in mounts {
            found.push(format!("mount {}", m.display()));
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
        // Leaves first; a killed process leaves its cgroup a moment after SIGKILL.
        let end = Instant::now() + Duration::from_secs(5);
        for d in &cg_dirs {
            if let Ok(rd) = fs::read_dir(d) {
                for e in rd.flatten().filter(|e| e.path().is_dir()) {
                    while fs::remove_dir(e.path()).is_err() && Instant::now() < end {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            let _ = fs::remove_dir(d);
        }
        let _ = fs::remove_dir_all(&self.dir);
        {
            let mut live = LIVE.lock().unwrap();
            *live -= 1;
            if *live == 0 && RUN_CONTAINERD_EXISTED.get() == Some(&false) {
                // remove_dir: only when empty, so nobody else's sockets go.
                let _ = fs::remove_dir("/run/containerd/s");
                let _ = fs::remove_dir("/run/containerd");
            }
        }
        if !std::thread::panicking() {
            assert!(
                found.is_empty(),
                "left behind after every scenario had removed its containers: {found:?}"
            );
            assert!(!self.dir.exists(), "{} not removed", self.dir.display());
        }
    }
}

/// One runtime's run of a scenario: every failure names the runtime.
struct Case<'a> {
    d: &'a Daemon,
    rt: Runtime,
}

impl Case<'_> {
    fn new(d: &Daemon, rt: Runtime) -> Case<'_> {
        Case { d, rt }
    }

    /// Panics with the runtime named, the bundle's log.json and containerd's last lines.
    #[track_caller]
    fn fail(&self, msg: impl fmt::Display) -> ! {
        let who = if self.rt.name == "runc" {
            "under runc 1.1.5, the reference (so an engine or environment problem, not a ruse bug)"
        } else {
            "under ruse"
        };
        let mut logs = String::new();
        let task_dir = self.d.dir.join("state/io.containerd.runtime.v2.task");
        if let Ok(rd) = fs::read_dir(task_dir.join(&self.d.ns)) {
            for e in rd.flatten() {
                if let Ok(t) = fs::read_to_string(e.path().join("log.json")) {
                    logs += &format!("--- {}/log.json:\n{t}\n", e.path().display());
                }
            }
        }
        panic!(
            "{who}: {msg}\n{logs}--- containerd log (last lines):\n{}",
            self.d.log_tail(15)
        );
    }

    #[track_caller]
    fn check(&self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.fail(msg());
        }
    }

    /// Polls `f` (every 10 ms, up to 10 s) until it gives a value.
    #[track_caller]
    fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > end {
                self.fail(format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn id(&self, tag: &str) -> String {
        format!("{}-{tag}", self.rt.name)
    }

    fn cgroup_path(&self, id: &str) -> String {
        format!("/{}/{id}", self.d.cg_parent)
    }

    fn ctr(&self, args: &[&str]) -> Res {
        self.d.ctr_raw(args, 60)
    }

    /// `ctr args`, which must succeed.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> Res {
        let r = self.ctr(args);
        self.check(r.ok(), || r.to_string());
        r
    }

    /// `ctr run` of IMAGE with this runtime, its root in the daemon's dir and the cgroup
    /// under the daemon's parent; `opts` go before the image (`--rm`, `-d`, limits).
    fn run_args(&self, opts: &[&str], id: &str, cmd: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "run".into(),
            "--runc-binary".into(),
            self.rt.bin.into(),
            "--runc-root".into(),
            self.d.runc_root().to_string_lossy().into_owned(),
            "--cgroup".into(),
            self.cgroup_path(id),
            "--fifo-dir".into(),
            self.d.dir.join("fifo").to_string_lossy().into_owned(),
        ];
        a.extend(opts.iter().map(|s| s.to_string()));
        a.push(IMAGE.into());
        a.push(id.into());
        a.extend(cmd.iter().map(|s| s.to_string()));
        a
    }

    fn run(&self, opts: &[&str], id: &str, cmd: &[&str]) -> Res {
        let a = self.run_args(opts, id, cmd);
        self.ctr(&a.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `ctr task exec` of `cmd` as `exec_id` into `id`, FIFOs in the daemon's dir; `opts`
    /// (`-d`, `-t`) go before the id.
    fn exec_args(&self, opts: &[&str], exec_id: &str, id: &str, cmd: &[&str]) -> Vec<String> {
        let fifo = self.d.dir.join("fifo").to_string_lossy().into_owned();
        let mut a: Vec<String> = ["tasks", "exec", "--fifo-dir", &fifo, "--exec-id", exec_id]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(opts.iter().map(|s| s.to_string()));
        a.push(id.into());
        a.extend(cmd.iter().map(|s| s.to_string()));
        a
    }

    fn exec(&self, opts: &[&str], exec_id: &str, id: &str, cmd: &[&str]) -> Res {
        let a = self.exec_args(opts, exec_id, id, cmd);
        self.ctr(&a.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// A detached container running `script`, and its init's host pid.
    #[track_caller]
    fn start_detached(&self, opts: &[&str], id: &str, script: &str) -> i32 {
        let mut o = vec!["-d"];
        o.extend_from_slice(opts);
        let r = self.run(&o, id, &["sh", "-c", script]);
        self.check(r.ok(), || format!("ctr run -d: {r}"));
        let (pid, status) = self
            .task(id)
            .unwrap_or_else(|| self.fail("no task after run -d"));
        self.check(status == "RUNNING", || format!("task {id} is {status}"));
        pid
    }

    /// (pid, STATUS) of the task, from `ctr task ls`.
    fn task(&self, id: &str) -> Option<(i32, String)> {
        let r = self.ok(&["tasks", "ls"]);
        r.out.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[0] == id).then(|| (f[1].parse().unwrap(), f[2].to_string()))
        })
    }

    /// The container's directory for a controller, as the kernel places init; it must be
    /// the `--cgroup` path under that hierarchy.
    #[track_caller]
    fn cgroup(&self, pid: i32, v1: &str, v2: &str) -> CgDir {
        let dir = dir_of(pid, v1, v2)
            .unwrap_or_else(|| self.fail(format!("no {v1} cgroup for pid {pid}")));
        let want = mount_for(v1, v2)
            .unwrap()
            .join(self.cgroup_path("").trim_start_matches('/'));
        self.check(dir.path.parent() == Some(want.as_path()), || {
            format!(
                "{v1} cgroup of {pid} is {}, not under {}",
                dir.path.display(),
                want.display()
            )
        });
        dir
    }

    /// Host pids in the container's cgroup (from the pids controller's cgroup.procs).
    fn cgroup_procs(&self, dir: &CgDir) -> Vec<i32> {
        let mut v: Vec<i32> = dir
            .read("cgroup.procs")
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect();
        v.sort();
        v
    }

    /// SIGKILL, wait for STOPPED, delete the task with exit status 137, remove the container,
    /// and check that the runtime and the shim left nothing.
    #[track_caller]
    fn kill_and_remove(&self, id: &str, init: i32) {
        self.ok(&["tasks", "kill", "-s", "SIGKILL", id]);
        self.wait("the task to stop after SIGKILL", || {
            (self.task(id).map(|t| t.1).as_deref() == Some("STOPPED")).then_some(())
        });
        self.check(!alive(init), || format!("init {init} still alive"));
        let r = self.ok(&["tasks", "delete", id]);
        self.check(r.err.contains("exit code 137"), || {
            format!("SIGKILL's status not reported: {r}")
        });
        self.check(self.task(id).is_none(), || {
            format!("task {id} still listed")
        });
        self.ok(&["containers", "rm", id]);
        self.assert_gone(id);
    }

    /// Nothing of `id` is left: not in ctr's list, no cgroup directory in any hierarchy, no
    /// state dir in the runtime's root, no bundle, nothing mounted in it.
    #[track_caller]
    fn assert_gone(&self, id: &str) {
        let listed = self.d.containers();
        self.check(!listed.iter().any(|c| c == id), || {
            format!("{id} still in `ctr containers ls`: {listed:?}")
        });
        for m in hierarchy_mounts() {
            let p = m.join(self.cgroup_path(id).trim_start_matches('/'));
            self.check(!p.exists(), || {
                format!("cgroup {} left behind", p.display())
            });
        }
        let st = self.d.runtime_state(id);
        self.check(!st.exists(), || {
            format!("runtime state {} left behind", st.display())
        });
        let b = self.d.bundle(id);
        let mounts: Vec<PathBuf> = mount_points()
            .into_iter()
            .filter(|m| m.starts_with(&b))
            .collect();
        self.check(mounts.is_empty(), || format!("mounts left: {mounts:?}"));
        self.check(!b.exists(), || {
            format!("bundle {} left behind", b.display())
        });
    }
}

/// Runs `scenario` under runc, then under ruse, against one private containerd.
fn each_runtime(scenario: impl Fn(&Case)) {
    if !prerequisites_or_skip() {
        return;
    }
    let d = Daemon::start();
    for rt in RUNTIMES {
        scenario(&Case::new(&d, rt));
    }
}

fn ns_inode(pid: i32, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn run_rm_passes_output_and_exit_code_through_and_leaves_nothing() {
    each_runtime(|c| {
        let id = c.id("run");
        let r = c.run(
            &["--rm"],
            &id,
            &[
                "sh",
                "-c",
                "echo out-line; echo err-line >&2; cat /proc/self/cgroup; cat /proc/net/dev; exit 7",
            ],
        );
        c.check(r.code == Some(7), || format!("exit code 7 wanted: {r}"));
        c.check(r.out.starts_with("out-line\n"), || format!("stdout: {r}"));
        c.check(r.err.contains("err-line"), || format!("stderr: {r}"));
        // Every hierarchy (v1 controllers and cgroup2) puts the process at --cgroup.
        let cg = c.cgroup_path(&id);
        let lines: Vec<&str> = r.out.lines().filter(|l| l.contains(":/")).collect();
        c.check(
            !lines.is_empty() && lines.iter().all(|l| l.ends_with(&format!(":{cg}"))),
            || format!("/proc/self/cgroup is not all {cg}: {r}"),
        );
        // ctr's default spec: a network namespace of its own, with loopback only.
        let ifaces: Vec<&str> = r
            .out
            .lines()
            .filter_map(|l| l.split_once(':').map(|(a, _)| a.trim()))
            .filter(|a| {
                !a.is_empty() && !a.contains(' ') && !a.chars().all(|ch| ch.is_ascii_digit())
            })
            .collect();
        c.check(ifaces == ["lo"], || format!("interfaces {ifaces:?}: {r}"));
        c.assert_gone(&id);
    });
}

#[test]
fn exec_joins_the_running_container_and_passes_its_exit_code() {
    each_runtime(|c| {
        let id = c.id("exec");
        let init = c.start_detached(&[], &id, "sleep 1000");
        let script = "echo exec-out; echo exec-err >&2; \
             for n in pid mnt net ipc uts; do readlink /proc/self/ns/$n; done; \
             cat /proc/self/cgroup; exit 3";
        let r = c.exec(&[], "e1", &id, &["sh", "-c", script]);
        c.check(r.code == Some(3), || format!("exit code 3 wanted: {r}"));
        c.check(r.err.contains("exec-err"), || format!("stderr: {r}"));
        let mut lines = r.out.lines();
        c.check(lines.next() == Some("exec-out"), || format!("stdout: {r}"));
        // The exec'd process is in init's namespaces (as the host sees init's)…
        for n in ["pid", "mnt", "net", "ipc", "uts"] {
            let want = ns_inode(init, n);
            let got = lines.next().unwrap_or_default();
            c.check(got == want, || {
                format!("exec's {n} namespace {got}, init's {want}: {r}")
            });
        }
        c.check(ns_inode(init, "net") != ns_inode(1, "net"), || {
            "the container shares the host's network namespace".into()
        });
        // …and in its cgroups.
        let init_cg = fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
        let exec_cg: Vec<&str> = lines.collect();
        c.check(exec_cg == init_cg.lines().collect::<Vec<_>>(), || {
            format!("exec's cgroups {exec_cg:?}, init's {init_cg}")
        });
        c.kill_and_remove(&id, init);
    });
}

#[test]
fn kill_delivers_a_trapped_signal_and_kill_all_reaches_every_process() {
    each_runtime(|c| {
        let id = c.id("kill");
        let init = c.start_detached(
            &[],
            &id,
            "trap 'echo usr1 >> /tmp/got' USR1; sleep 1000 & sleep 1000 & \
             echo ready > /tmp/ready; while :; do sleep 0.05; done",
        );
        let root = PathBuf::from(format!("/proc/{init}/root/tmp"));
        c.wait("the container's ready file", || {
            root.join("ready").exists().then_some(())
        });
        c.ok(&["tasks", "kill", "-s", "SIGUSR1", &id]);
        // The trap ran in init (pid 1 of its namespace ignores signals it has no handler for).
        c.wait("the USR1 trap's file", || {
            (fs::read_to_string(root.join("got")).unwrap_or_default() == "usr1\n").then_some(())
        });
        c.check(alive(init), || "init died of a trapped signal".into());

        let pids = c.cgroup(init, "pids", "pids");
        // Forked before `ready`, but maybe not exec'd yet.
        let sleepers = c.wait("the two background sleepers", || {
            let v: Vec<i32> = c
                .cgroup_procs(&pids)
                .into_iter()
                .filter(|p| {
                    fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default()
                        == b"sleep\x001000\x00"
                })
                .collect();
            (v.len() == 2).then_some(v)
        });
        // SIGTERM to all: the sleepers die, init (no handler, pid 1) does not.
        c.ok(&["tasks", "kill", "--all", "-s", "SIGTERM", &id]);
        c.wait("the sleepers to die of kill --all", || {
            sleepers.iter().all(|p| !alive(*p)).then_some(())
        });
        c.check(alive(init), || {
            "init died of SIGTERM without a handler".into()
        });
        c.check(
            c.task(&id).map(|t| t.1).as_deref() == Some("RUNNING"),
            || "the task is no longer running after kill --all TERM".into(),
        );
        c.kill_and_remove(&id, init);
    });
}

#[test]
fn ps_lists_the_pids_the_host_sees_in_the_container_cgroup() {
    each_runtime(|c| {
        let id = c.id("ps");
        let init = c.start_detached(&[], &id, "sleep 1000 & sleep 1000 & wait");
        let pids = c.cgroup(init, "pids", "pids");
        let ps = |c: &Case| -> Vec<i32> {
            let r = c.ok(&["tasks", "ps", &id]);
            let mut v: Vec<i32> = r
                .out
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next()?.parse().ok())
                .collect();
            v.sort();
            v
        };
        let procs = c.wait("init and its two sleepers", || {
            Some(c.cgroup_procs(&pids)).filter(|v| v.len() == 3)
        });
        c.check(procs.contains(&init), || format!("{init} not in {procs:?}"));
        let listed = ps(c);
        c.check(listed == procs, || {
            format!("ctr task ps {listed:?}, the cgroup holds {procs:?}")
        });
        // A detached exec joins the cgroup and shows up in ps.
        let r = c.exec(&["-d"], "bg", &id, &["sleep", "999"]);
        c.check(r.ok(), || format!("exec -d: {r}"));
        let procs = c.wait("the exec'd sleeper in the cgroup", || {
            Some(c.cgroup_procs(&pids)).filter(|v| v.len() == 4)
        });
        let listed = ps(c);
        c.check(listed == procs, || {
            format!("after exec: ctr task ps {listed:?}, the cgroup holds {procs:?}")
        });
        c.kill_and_remove(&id, init);
    });
}

#[test]
fn pause_freezes_the_cgroup_and_resume_thaws_it() {
    each_runtime(|c| {
        let id = c.id("pause");
        let init = c.start_detached(
            &[],
            &id,
            "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.02; done",
        );
        let freezer = c.cgroup(init, "freezer", "freezer");
        let frozen = || -> bool {
            if freezer.v2 {
                freezer
                    .read("cgroup.events")
                    .lines()
                    .any(|l| l == "frozen 1")
            } else {
                freezer.read("freezer.state") == "FROZEN"
            }
        };
        c.check(!frozen(), || "frozen before pause".into());
        c.ok(&["tasks", "pause", &id]);
        // pause returns once the kernel says the cgroup is frozen, not merely freezing.
        c.check(frozen(), || {
            format!(
                "not frozen after pause: {:?}",
                freezer.read(if freezer.v2 {
                    "cgroup.events"
                } else {
                    "freezer.state"
                })
            )
        });
        let st = c.task(&id).map(|t| t.1);
        c.check(st.as_deref() == Some("PAUSED"), || {
            format!("ctr task ls says {st:?}")
        });
        c.ok(&["tasks", "resume", &id]);
        c.check(!frozen(), || "still frozen after resume".into());
        let st = c.task(&id).map(|t| t.1);
        c.check(st.as_deref() == Some("RUNNING"), || {
            format!("ctr task ls says {st:?}")
        });
        // Thawed for real: the loop counts on.
        let n = PathBuf::from(format!("/proc/{init}/root/tmp/n"));
        let count = || fs::read_to_string(&n).ok()?.trim().parse::<u64>().ok();
        let before = c.wait("the counter file", count);
        c.wait("the counter to advance after resume", || {
            count().filter(|v| *v > before)
        });
        c.kill_and_remove(&id, init);
    });
}

#[test]
fn force_delete_of_a_paused_task_kills_and_removes_it() {
    each_runtime(|c| {
        let id = c.id("pause-rm");
        let init = c.start_detached(&[], &id, "sleep 1000 & sleep 1000 & wait");
        let pids = c.cgroup(init, "pids", "pids");
        let procs = c.wait("init and its two sleepers", || {
            Some(c.cgroup_procs(&pids)).filter(|v| v.len() == 3)
        });
        c.ok(&["tasks", "pause", &id]);
        // ctr kills every process (`kill --all <id> 9`) and waits for init's exit, which
        // never comes while the cgroup stays frozen: bounded well below the 60 s default.
        let r = c.d.ctr_raw(&["tasks", "delete", "--force", &id], 15);
        c.check(r.ok(), || format!("force delete of a paused task: {r}"));
        let left: Vec<i32> = procs.iter().copied().filter(|p| alive(*p)).collect();
        c.check(left.is_empty(), || format!("processes {left:?} survived"));
        c.check(c.task(&id).is_none(), || format!("task {id} still listed"));
        c.ok(&["containers", "rm", &id]);
        c.assert_gone(&id);
    });
}

#[test]
fn metrics_are_the_container_cgroup_numbers_with_its_limits() {
    each_runtime(|c| {
        let id = c.id("metrics");
        let limit: u64 = 64 << 20;
        let init = c.start_detached(
            &["--memory-limit", &limit.to_string(), "--cpus", "0.5"],
            &id,
            "sleep 1000 & sleep 1000 & wait",
        );
        let pids = c.cgroup(init, "pids", "pids");
        c.wait("init and its two sleepers", || {
            (c.cgroup_procs(&pids).len() == 3).then_some(())
        });
        // The limits ctr put in the spec are in the kernel's knobs.
        let mem = c.cgroup(init, "memory", "memory");
        let cpu = c.cgroup(init, "cpu", "cpu");
        if mem.v2 {
            c.check(mem.read("memory.max") == limit.to_string(), || {
                "memory.max".into()
            });
            c.check(cpu.read("cpu.max") == "50000 100000", || "cpu.max".into());
        } else {
            c.check(
                mem.read("memory.limit_in_bytes") == limit.to_string(),
                || {
                    format!(
                        "memory.limit_in_bytes {}",
                        mem.read("memory.limit_in_bytes")
                    )
                },
            );
            c.check(cpu.read("cpu.cfs_quota_us") == "50000", || {
                "cpu.cfs_quota_us".into()
            });
            c.check(cpu.read("cpu.cfs_period_us") == "100000", || {
                "cpu.cfs_period_us".into()
            });
        }
        let r = c.ok(&["tasks", "metrics", "--format", "json", &id]);
        let m: Value = serde_json::from_str(&r.out).unwrap_or_else(|e| c.fail(format!("{e}: {r}")));
        let n = |p: &str| m.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        c.check(n("/pids/current") == 3, || format!("pids.current: {m}"));
        c.check(pids.read("pids.current") == "3", || {
            "pids.current file".into()
        });
        let (usage, mem_limit, cpu_total) = if mem.v2 {
            (
                n("/memory/usage"),
                n("/memory/usage_limit"),
                n("/cpu/usage_usec"),
            )
        } else {
            (
                n("/memory/usage/usage"),
                n("/memory/usage/limit"),
                n("/cpu/usage/total"),
            )
        };
        c.check(usage > 0, || format!("memory usage 0: {m}"));
        c.check(mem_limit == limit, || {
            format!("memory limit {mem_limit}: {m}")
        });
        // CPU time is cumulative: what was reported cannot exceed what the kernel says now.
        let now: u64 = if cpu.v2 {
            cpu.read("cpu.stat")
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec ")?.parse().ok())
                .unwrap_or(0)
        } else {
            let acct = c.cgroup(init, "cpuacct", "cpu");
            acct.read("cpuacct.usage").parse().unwrap()
        };
        c.check(cpu_total > 0 && cpu_total <= now, || {
            format!("cpu total {cpu_total}, the cgroup's {now}: {m}")
        });
        c.kill_and_remove(&id, init);
    });
}

#[test]
fn missing_executable_error_reaches_ctr_verbatim_from_run_and_exec() {
    const WANT: &str = r#"exec: "nonexistent": executable file not found in $PATH"#;
    each_runtime(|c| {
        let id = c.id("enoent");
        let r = c.run(&["--rm"], &id, &["nonexistent"]);
        c.check(!r.ok() && r.err.contains(WANT), || {
            format!("ctr run of a missing command: {r}")
        });
        // --rm removes the container that could not start, and the runtime its leftovers.
        c.assert_gone(&id);

        let id = c.id("enoent-exec");
        let init = c.start_detached(&[], &id, "sleep 1000");
        let r = c.exec(&[], "bad", &id, &["nonexistent"]);
        c.check(!r.ok() && r.err.contains(WANT), || {
            format!("ctr task exec of a missing command: {r}")
        });
        // The runtime's own record of it: a JSON error line in the bundle's log.json.
        let log = fs::read_to_string(c.d.bundle(&id).join("log.json")).unwrap_or_default();
        let logged = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|v| v["level"] == "error" && v["msg"].as_str().is_some_and(|m| m.contains(WANT)));
        c.check(logged, || {
            format!("no error line with {WANT:?} in log.json:\n{log}")
        });
        c.check(alive(init), || "init died of a failed exec".into());
        let pids = c.cgroup(init, "pids", "pids");
        c.check(c.cgroup_procs(&pids) == [init], || {
            format!(
                "the failed exec left processes: {:?}",
                c.cgroup_procs(&pids)
            )
        });
        c.kill_and_remove(&id, init);
    });
}

/// Prints the terminal's name and whether stdin and stdout both are one, then exits `code`.
fn tty_script(code: i32) -> String {
    format!("tty; [ -t 0 ] && [ -t 1 ] && echo both-ttys; exit {code}")
}

#[test]
fn run_and_exec_with_a_terminal_get_a_pty_through_the_console_socket() {
    each_runtime(|c| {
        let id = c.id("tty");
        let a = c.run_args(&["-t", "--rm"], &id, &["sh", "-c", &tty_script(5)]);
        let r = c.d.ctr_in_pty(&a);
        c.check(r.code == Some(5), || format!("exit code 5 wanted: {r}"));
        c.check(
            r.out.contains("/dev/pts/") && r.out.contains("both-ttys"),
            || format!("no pty in the container: {r}"),
        );
        c.assert_gone(&id);

        let id = c.id("tty-exec");
        let init = c.start_detached(&[], &id, "sleep 1000");
        let a = c.exec_args(&["-t"], "t1", &id, &["sh", "-c", &tty_script(4)]);
        let r = c.d.ctr_in_pty(&a);
        c.check(r.code == Some(4), || format!("exit code 4 wanted: {r}"));
        c.check(
            r.out.contains("/dev/pts/") && r.out.contains("both-ttys"),
            || format!("no pty in the exec'd process: {r}"),
        );
        c.kill_and_remove(&id, init);
    });
}

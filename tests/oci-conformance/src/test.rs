//! One check's environment: a private directory (bundles, hook scripts, output files) and a
//! private `--root` for the runtime, unique container ids, and a Drop guard that force-deletes
//! every container, kills every helper process and unmounts every host mount the check made,
//! whether it passed or failed.

use crate::bundle;
use crate::host;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// How long one runtime invocation may take before the check fails (and the process is killed).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The result of one command: exit code (None when killed by a signal or the timeout) and
/// its output, read from files (a detached container keeps inherited pipes open forever).
pub struct Out {
    pub cmd: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Debug for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }
}

/// Asserts that a command succeeded, printing its output otherwise.
#[macro_export]
macro_rules! assert_ok {
    ($out:expr) => {{
        let o = &$out;
        assert!(o.ok(), "{o:?}");
    }};
    ($out:expr, $($msg:tt)+) => {{
        let o = &$out;
        assert!(o.ok(), "{}: {o:?}", format!($($msg)+));
    }};
}

/// Asserts that a command failed (an error was generated).
#[macro_export]
macro_rules! assert_fails {
    ($out:expr) => {{
        let o = &$out;
        assert!(!o.ok() && o.code.is_some(), "expected an error: {o:?}");
    }};
    ($out:expr, $($msg:tt)+) => {{
        let o = &$out;
        assert!(!o.ok() && o.code.is_some(), "{}: expected an error: {o:?}", format!($($msg)+));
    }};
}

/// Runs `cmd` with stdin from /dev/null and stdout/stderr to fresh files, killing it after
/// `timeout`.
pub fn run_cmd(mut cmd: Command, out_base: &Path, timeout: Duration) -> Out {
    let desc = format!("{cmd:?}");
    if let Some(d) = out_base.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let (o, e) = (
        out_base.with_extension("out"),
        out_base.with_extension("err"),
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .unwrap_or_else(|err| panic!("spawn {desc}: {err}"));
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(1);
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let mut err = std::fs::read_to_string(&e).unwrap_or_default();
            err.push_str(&format!("\n[killed after {timeout:?}]"));
            std::fs::write(&e, err).unwrap();
            break None;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    };
    Out {
        cmd: desc,
        code,
        stdout: std::fs::read_to_string(&o).unwrap_or_default(),
        stderr: std::fs::read_to_string(&e).unwrap_or_default(),
    }
}

/// A name unique on this host: `oci<pid>-<n>-<tag>`.
pub fn unique(tag: &str) -> String {
    format!(
        "oci{}-{}-{tag}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

pub struct Test {
    name: String,
    pub dir: PathBuf,
    /// The runtime's private `--root`.
    pub root: PathBuf,
    ids: RefCell<Vec<String>>,
    children: RefCell<Vec<Child>>,
    mounts: RefCell<Vec<PathBuf>>,
    seq: Cell<usize>,
}

impl Test {
    /// The environment of the calling check (named after the test thread), or None when the
    /// check must be skipped because we are not root (a failure with `CI=true`).
    pub fn new() -> Option<Test> {
        let name = std::thread::current()
            .name()
            .filter(|n| *n != "main")
            .unwrap_or("check")
            .to_string();
        if !crate::is_root() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{name}: the OCI conformance checks need root, and CI=true forbids skipping them");
            }
            crate::skip(&name, "root", "needs root");
            return None;
        }
        let _ = crate::rt();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("oci-conf-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("io")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Some(Test {
            name,
            root: dir.join("state"),
            dir,
            ids: RefCell::new(Vec::new()),
            children: RefCell::new(Vec::new()),
            mounts: RefCell::new(Vec::new()),
            seq: Cell::new(0),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn next(&self) -> usize {
        let n = self.seq.get();
        self.seq.set(n + 1);
        n
    }

    /// A container id unique on this host (cgroup paths are shared by everyone), registered
    /// for cleanup.
    pub fn id(&self, tag: &str) -> String {
        let id = unique(tag);
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// Registers an id chosen by the check itself for cleanup.
    pub fn track(&self, id: &str) {
        self.ids.borrow_mut().push(id.to_string());
    }

    /// A new bundle directory with a busybox rootfs and `cfg` as config.json.
    pub fn bundle(&self, cfg: &Value) -> PathBuf {
        let b = self.dir.join(format!("b{}", self.next()));
        bundle::make_rootfs(&b.join("rootfs"));
        self.write_config(&b, cfg);
        b
    }

    pub fn write_config(&self, bundle: &Path, cfg: &Value) {
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(cfg).unwrap(),
        )
        .unwrap();
    }

    /// A runtime command with this check's `--root`.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&crate::rt().path);
        c.arg("--root").arg(&self.root);
        c
    }

    fn io(&self, tag: &str) -> PathBuf {
        self.dir.join("io").join(format!("{}-{tag}", self.next()))
    }

    /// Runs the runtime with `args` after `--root`.
    pub fn rt(&self, args: &[&str]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        run_cmd(
            c,
            &self.io(args.first().copied().unwrap_or("none")),
            TIMEOUT,
        )
    }

    /// Runs the runtime with another `--root` (for checks of hostile ids, which must not be
    /// able to harm this check's own directory).
    pub fn rt_root(&self, root: &Path, args: &[&str]) -> Out {
        let mut c = Command::new(&crate::rt().path);
        c.arg("--root").arg(root).args(args);
        run_cmd(c, &self.io("other-root"), TIMEOUT)
    }

    /// `create --bundle B ID`; the container's stdio goes to files read by `output(id)`.
    pub fn create(&self, id: &str, bundle: &Path) -> Out {
        self.create_with(id, bundle, &[])
    }

    pub fn create_with(&self, id: &str, bundle: &Path, extra: &[&str]) -> Out {
        self.track(id);
        let mut c = self.cmd();
        c.arg("create")
            .args(extra)
            .arg("--bundle")
            .arg(bundle)
            .arg(id);
        run_cmd(c, &self.container_io(id), TIMEOUT)
    }

    /// Base name of the files holding a created container's stdio (ids may be hostile).
    fn container_io(&self, id: &str) -> PathBuf {
        let safe: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join("io").join(format!("c-{safe}"))
    }

    /// What the container of `create(id)` wrote to stdout and stderr so far.
    pub fn output(&self, id: &str) -> (String, String) {
        let base = self.container_io(id);
        (
            std::fs::read_to_string(base.with_extension("out")).unwrap_or_default(),
            std::fs::read_to_string(base.with_extension("err")).unwrap_or_default(),
        )
    }

    pub fn start(&self, id: &str) -> Out {
        self.rt(&["start", id])
    }

    pub fn kill(&self, id: &str, signal: i32) -> Out {
        self.rt(&["kill", id, &signal.to_string()])
    }

    pub fn delete(&self, id: &str) -> Out {
        self.rt(&["delete", id])
    }

    pub fn delete_force(&self, id: &str) -> Out {
        self.rt(&["delete", "--force", id])
    }

    /// The runtime's `state` of `id`, or None when it generates an error.
    pub fn state(&self, id: &str) -> Option<Value> {
        let o = self.rt(&["state", id]);
        if !o.ok() {
            return None;
        }
        Some(
            serde_json::from_str(&o.stdout)
                .unwrap_or_else(|e| panic!("state {id}: not JSON ({e}): {o:?}")),
        )
    }

    pub fn status(&self, id: &str) -> Option<String> {
        self.state(id)
            .and_then(|s| s["status"].as_str().map(str::to_string))
    }

    /// The pid of the container process, from `state`.
    pub fn pid(&self, id: &str) -> u32 {
        let s = self
            .state(id)
            .unwrap_or_else(|| panic!("state {id} failed"));
        s["pid"]
            .as_u64()
            .filter(|p| *p > 0)
            .unwrap_or_else(|| panic!("state {id} has no pid: {s}")) as u32
    }

    pub fn wait_status(&self, id: &str, want: &str) -> bool {
        host::wait_until(Duration::from_secs(20), || {
            self.status(id).as_deref() == Some(want)
        })
    }

    /// create + start of `cfg`, whose process must exec `comm` (e.g. `sleep`); returns once
    /// the user program runs: (id, host pid).
    pub fn start_running(&self, cfg: &Value, comm: &str) -> (String, u32) {
        let b = self.bundle(cfg);
        self.start_bundle(&b, comm)
    }

    /// create + start of an existing bundle, as `start_running`.
    pub fn start_bundle(&self, b: &Path, comm: &str) -> (String, u32) {
        let id = self.id("run");
        crate::assert_ok!(self.create(&id, b));
        let pid = self.pid(&id);
        crate::assert_ok!(self.start(&id));
        assert!(
            host::wait_comm(pid, comm),
            "container {id}: pid {pid} never exec'd {comm}"
        );
        (id, pid)
    }

    /// `run --bundle B ID` of a new bundle with `cfg`, in the foreground; the container is
    /// force-deleted afterwards.
    pub fn run(&self, cfg: &Value) -> Out {
        let b = self.bundle(cfg);
        self.run_bundle(&b)
    }

    pub fn run_bundle(&self, bundle: &Path) -> Out {
        let id = self.id("run");
        let mut c = self.cmd();
        c.arg("run").arg("--bundle").arg(bundle).arg(&id);
        let out = run_cmd(c, &self.io("run"), TIMEOUT);
        let _ = self.delete_force(&id);
        out
    }

    /// `run` of the base config with `/bin/sh -c script`.
    pub fn sh(&self, script: &str) -> Out {
        self.run(&bundle::sh_config(script))
    }

    /// `run` of the base config with `/bin/sh -c script`, edited by `f`.
    pub fn sh_with(&self, script: &str, f: impl FnOnce(&mut Value)) -> Out {
        let mut cfg = bundle::sh_config(script);
        f(&mut cfg);
        self.run(&cfg)
    }

    /// Writes an executable `#!/bin/sh` script under the check's directory.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// A process outside any runtime holding new namespaces: `unshare <flags> --fork sleep`.
    /// Returns the pid of the sleeping process (inside any new pid namespace).
    pub fn holder(&self, flags: &[&str]) -> u32 {
        let child = Command::new("unshare")
            .args(flags)
            .args(["--fork", "--kill-child", "/bin/sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare (util-linux)");
        let parent = child.id();
        self.children.borrow_mut().push(child);
        let mut found = None;
        let ok = host::wait_until(Duration::from_secs(10), || {
            found = children_of(parent)
                .into_iter()
                .find(|p| host::wait_comm(*p, "sleep"));
            found.is_some()
        });
        assert!(ok, "unshare {flags:?}: no sleeping child");
        found.unwrap()
    }

    /// Mounts `fstype` on the host at `dst`, unmounted when the check ends.
    pub fn host_mount(&self, src: &str, dst: &Path, fstype: &str, flags: libc::c_ulong) {
        mount(src, dst, fstype, flags).unwrap_or_else(|e| panic!("mount {}: {e}", dst.display()));
        self.mounts.borrow_mut().push(dst.to_path_buf());
    }

    /// Makes `dir` a bind mount of itself with shared propagation (a peer group of its own),
    /// so that a container below it can receive host mount events.
    pub fn shared_bind(&self, dir: &Path) {
        let d = dir.to_str().unwrap();
        self.host_mount(d, dir, "", libc::MS_BIND);
        mount("", dir, "", libc::MS_SHARED).unwrap();
    }
}

fn children_of(ppid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(") ")
                        .and_then(|(_, r)| r.split(' ').nth(1).map(str::to_string))
                })
                .is_some_and(|p| p == ppid.to_string())
        })
        .collect()
}

pub fn mount(src: &str, dst: &Path, fstype: &str, flags: libc::c_ulong) -> std::io::Result<()> {
    let src = CString::new(src).unwrap();
    let dst = CString::new(dst.as_os_str().as_bytes()).unwrap();
    let fstype = CString::new(fstype).unwrap();
    // SAFETY: valid NUL-terminated strings that outlive the call; no data argument.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            fstype.as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

pub fn umount_detach(p: &Path) -> std::io::Result<()> {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Drop for Test {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter().rev() {
            let _ = self.delete_force(id);
        }
        for c in self.children.borrow_mut().iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for m in self.mounts.borrow().iter().rev() {
            let _ = umount_detach(m);
        }
        // Whatever is still mounted below the check's directory was leaked by the runtime:
        // detach it before removing the tree, so removal never walks into a bind mount.
        let mut leaked = host::host_mounts_under(&self.dir);
        leaked.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for m in &leaked {
            let _ = umount_detach(m);
        }
        if !leaked.is_empty() {
            let line = format!("{}: runtime left mounts behind: {leaked:?}\n", self.name);
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

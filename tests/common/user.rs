//! Throwaway unprivileged users for the rootless tests: `useradd`, a subordinate id range
//! (`usermod --add-subuids/--add-subgids`), a private `XDG_RUNTIME_DIR`, a copy of ruse it can
//! run and bundles it owns; ruse run as the user through `setpriv`. Dropping a `User` deletes
//! its containers, kills what is left of its processes (by pid), and removes the user, its
//! ranges and its files. Also a cgroup v2 directory delegated to such a user.

use super::{stderr, stdout, unique_id, RUSE};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A throwaway user with a subordinate id range, a home for its state, binary and bundle.
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// First id of its 65536 subordinate uids and gids.
    pub sub: u32,
    pub dir: PathBuf,
}

/// Runs a shadow-utils command, retrying while another one holds the passwd lock.
fn shadow(args: &[&str]) {
    let mut last = String::new();
    for _ in 0..50 {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        if out.status.success() {
            return;
        }
        last = stderr(&out);
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{args:?}: {last}");
}

fn id_of(name: &str, flag: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().unwrap();
    stdout(&out).trim().parse().unwrap()
}

impl User {
    pub fn new() -> User {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let name = format!("rl{}x{n}", std::process::id());
        let sub = 400_000 + (((std::process::id() % 1000) * 8 + n as u32 % 8) * 65_536);
        for f in ["/etc/subuid", "/etc/subgid"] {
            // usermod --add-sub*ids wants the files to exist (Debian's passwd makes them).
            if !Path::new(f).exists() {
                let _ = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(f);
            }
        }
        shadow(&[
            "useradd",
            "--no-create-home",
            "--user-group",
            "--shell",
            "/bin/sh",
            &name,
        ]);
        let range = format!("{sub}-{}", sub + 65_535);
        shadow(&[
            "usermod",
            "--add-subuids",
            &range,
            "--add-subgids",
            &range,
            &name,
        ]);
        let dir = std::env::temp_dir().join(format!("ruse-rl-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("xdg")).unwrap();
        // The repository (and so the test binary) need not be reachable by the user.
        std::fs::copy(RUSE, dir.join("ruse")).unwrap();
        let u = User {
            uid: id_of(&name, "-u"),
            gid: id_of(&name, "-g"),
            name,
            sub,
            dir,
        };
        chmod(&u.dir, 0o755);
        chmod(&u.dir.join("xdg"), 0o700);
        chmod(&u.dir.join("ruse"), 0o755);
        u.chown(&u.dir);
        u
    }

    pub fn chown(&self, p: &Path) {
        let st = Command::new("chown")
            .args(["-R", &format!("{}:{}", self.uid, self.gid)])
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// `program` as this user through `setpriv`, with what a login would give it and no
    /// more: PATH, USER, LOGNAME, HOME (its dir) and its private XDG_RUNTIME_DIR; cwd its dir.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &self.uid.to_string(),
            "--regid",
            &self.gid.to_string(),
            "--init-groups",
            "--",
        ])
        .arg(program)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("XDG_RUNTIME_DIR", self.dir.join("xdg"))
        .env("USER", &self.name)
        .env("LOGNAME", &self.name)
        .env("HOME", &self.dir)
        .current_dir(&self.dir);
        c
    }

    /// The user's subordinate ranges in `file` (/etc/subuid or /etc/subgid) as (first id,
    /// count), in the file's order: `useradd` may have granted one of its own (SUB_UID_MIN…)
    /// before `new` added the `sub` range.
    pub fn subordinate_ranges(&self, file: &str) -> Vec<(u32, u32)> {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.trim().split(':');
                if f.next()? != self.name {
                    return None;
                }
                Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
            })
            .collect()
    }

    pub fn state_root(&self) -> PathBuf {
        self.dir.join("xdg/ruse")
    }

    /// ruse as this user, no `--root` (the default must be $XDG_RUNTIME_DIR/ruse). Output of
    /// verbs that leave a container running goes to files, as in `Env::ruse`.
    pub fn ruse(&self, args: &[&str]) -> Output {
        self.ruse_in(None, args)
    }

    /// `ruse` as this user, started in cgroup `cg` (a v2 directory) when given.
    pub fn ruse_in(&self, cg: Option<&Path>, args: &[&str]) -> Output {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let (o, e) = (
            self.dir.join(format!("out{n}.txt")),
            self.dir.join(format!("err{n}.txt")),
        );
        let mut cmd = match cg {
            // Root's shell moves itself into the cgroup, then becomes the user's ruse.
            Some(cg) => {
                let mut c = Command::new("/bin/sh");
                c.args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""])
                    .arg(cg)
                    .arg("setpriv");
                c
            }
            None => Command::new("setpriv"),
        };
        let status = cmd
            .args([
                "--reuid",
                &self.uid.to_string(),
                "--regid",
                &self.gid.to_string(),
                "--init-groups",
                "--",
            ])
            .arg(self.dir.join("ruse"))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("XDG_RUNTIME_DIR", self.dir.join("xdg"))
            .env("USER", &self.name)
            .env("HOME", &self.dir)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }

    /// A busybox bundle the user owns, with the config `ruse spec --rootless` writes for it
    /// (run as the user), `terminal` off and `args`.
    pub fn bundle(&self, args: &[&str]) -> PathBuf {
        let env = super::Env::new(&["true"]);
        let b = self
            .dir
            .join(format!("bundle{}", SEQ.fetch_add(1, Ordering::SeqCst)));
        let st = Command::new("cp")
            .arg("-a")
            .arg(env.bundle())
            .arg(&b)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::remove_file(b.join("config.json")).unwrap();
        self.chown(&b);
        let out = self.ruse(&["spec", "--rootless", "--bundle", b.to_str().unwrap()]);
        assert!(out.status.success(), "spec --rootless: {}", stderr(&out));
        edit(&b, |c| {
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = args.iter().map(|s| Value::from(*s)).collect();
        });
        b
    }

    /// Live processes of this user (the container's: its root is the user). Zombies are left
    /// out: a killed init that outlived `ruse create` is reaped by the host's init.
    pub fn processes(&self) -> Vec<i32> {
        let uid = self.uid.to_string();
        super::all_pids()
            .into_iter()
            .filter(|p| {
                let s = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
                let field = |f: &str| {
                    s.lines()
                        .find(|l| l.starts_with(f))
                        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
                };
                field("Uid:").as_deref() == Some(uid.as_str())
                    && field("State:").as_deref() != Some("Z")
            })
            .collect()
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.ruse(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn wait_status(&self, id: &str, want: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        while self.state(id)["status"] != want {
            assert!(Instant::now() < end, "{id} never became {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Nothing of container `id` left: no state dir, no process of the user.
    pub fn assert_clean(&self, id: &str) {
        assert!(
            !self.state_root().join(id).exists(),
            "state dir of {id} left behind"
        );
        assert!(
            self.processes().is_empty(),
            "processes left: {:?}",
            self.processes()
        );
    }
}

impl Drop for User {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(self.state_root()) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.ruse(&["delete", "--force", &id]);
            }
        }
        for pid in self.processes() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = Command::new("userdel").arg(&self.name).output();
        for f in ["/etc/subuid", "/etc/subgid"] {
            // userdel drops the user's ranges; make sure, under the same lock it takes.
            let text = std::fs::read_to_string(f).unwrap_or_default();
            if text
                .lines()
                .any(|l| l.starts_with(&format!("{}:", self.name)))
            {
                let _ = Command::new("usermod")
                    .args([
                        "--del-subuids",
                        "0-4294967294",
                        "--del-subgids",
                        "0-4294967294",
                    ])
                    .arg(&self.name)
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn edit(bundle: &Path, f: impl FnOnce(&mut Value)) {
    let p = bundle.join("config.json");
    let mut c: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut c);
    std::fs::write(&p, c.to_string()).unwrap();
}

pub fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .filter(|r: &Vec<String>| !r.is_empty())
        .collect()
}

pub fn status_line(pid: i64, field: &str) -> Vec<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// Waits until `file` exists and has a line "ready".
pub fn wait_file(file: &Path) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let t = std::fs::read_to_string(file).unwrap_or_default();
        if t.contains("ready") {
            return t;
        }
        assert!(
            Instant::now() < end,
            "{} never got ready: {t}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A cgroup v2 directory delegated to a user (as systemd's Delegate=yes: the directory and its
/// cgroup.procs, cgroup.subtree_control and cgroup.threads are the user's), with a leaf
/// `runtime` for the user's ruse to run in. Removed on drop.
pub struct Delegated(pub PathBuf);

impl Delegated {
    pub fn new(u: &User) -> Delegated {
        let d = Path::new("/sys/fs/cgroup").join(unique_id("deleg"));
        std::fs::create_dir(&d).unwrap();
        std::fs::create_dir(d.join("runtime")).unwrap();
        for p in [
            d.clone(),
            d.join("cgroup.procs"),
            d.join("cgroup.subtree_control"),
            d.join("cgroup.threads"),
            d.join("runtime"),
            d.join("runtime/cgroup.procs"),
        ] {
            std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
        }
        Delegated(d)
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.0.join("runtime"));
        let _ = std::fs::remove_dir(&self.0);
    }
}

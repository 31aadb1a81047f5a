//! Attack tests of ../shared/SECURITY.md that concern the core (classes 1–13): each
//! builds the hostile image or config of the advisory and asserts what the kernel shows
//! afterwards: seals, /proc fds, mountinfo inside and outside, host files by content, mode,
//! owner and mtime. Needs root. `RUSE_STRESS=1` makes the race loops longer.

mod common;

use common::{assert_error, stderr, stdout, unique_id, Env, RUSE};
use serde_json::{json, Value};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn stress() -> bool {
    std::env::var("RUSE_STRESS").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn run_ok(env: &Env, tag: &str) -> String {
    let id = unique_id(tag);
    let out = env.run(&id);
    assert_eq!(out.status.code(), Some(0), "run {tag}: {}", stderr(&out));
    env.assert_clean(&id);
    stdout(&out)
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// What must not change about a host file: content, type, mode, owner, mtime, inode.
#[derive(Debug, PartialEq, Eq)]
struct FileFacts {
    content: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    ino: u64,
    rdev: u64,
}

fn facts(p: &Path) -> FileFacts {
    let m = fs::symlink_metadata(p).unwrap();
    FileFacts {
        content: if m.is_file() {
            fs::read(p).unwrap()
        } else {
            Vec::new()
        },
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ino: m.ino(),
        rdev: m.rdev(),
    }
}

/// Every path under `dir` with its facts (a host marker directory's full snapshot).
fn tree(dir: &Path) -> Vec<(PathBuf, FileFacts)> {
    let mut out = vec![(dir.to_path_buf(), facts(dir))];
    if fs::symlink_metadata(dir).unwrap().is_dir() {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        names.sort();
        for p in names {
            out.extend(tree(&p));
        }
    }
    out
}

fn push_mount(env: &Env, m: Value) {
    env.edit(|c| c["mounts"].as_array_mut().unwrap().push(m.clone()));
}

// ---- 1. runtime binary overwrite (CVE-2019-5736) ----

fn assert_sealed(f: &fs::File) {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    let seals = SealFlag::from_bits_truncate(fcntl(f, FcntlArg::F_GET_SEALS).unwrap());
    let all = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    assert!(seals.contains(all), "seals {seals:?}");
}

const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// The write of the CVE: through the exe link while it runs, then (the real exploit) by
/// reopening a kept fd once the process has exited. The exe is either a memfd copy with all
/// four seals, or the binary seen through a detached read-only overlayfs (runc 1.2's way).
fn assert_unwritable_exe(pid: i64) -> fs::File {
    let exe = format!("/proc/{pid}/exe");
    let link = fs::read_link(&exe).unwrap();
    let w = fs::OpenOptions::new().write(true).open(&exe);
    assert!(w.is_err(), "opened {link:?} for writing");
    let kept = fs::File::open(&exe).unwrap();
    if link.to_string_lossy().starts_with("/memfd:") {
        assert_sealed(&kept);
    } else {
        let st = nix::sys::statfs::fstatfs(&kept).unwrap();
        assert_eq!(
            st.filesystem_type().0 as i64,
            OVERLAYFS_SUPER_MAGIC,
            "{link:?} is neither a memfd nor on overlayfs"
        );
        assert_eq!(w.unwrap_err().raw_os_error(), Some(libc::EROFS), "{link:?}");
    }
    kept
}

fn assert_reopen_for_write_fails(kept: &fs::File) {
    use std::os::fd::AsRawFd;
    let again = format!("/proc/self/fd/{}", kept.as_raw_fd());
    let w = fs::OpenOptions::new().write(true).open(&again);
    match w {
        Err(e) => assert!(
            matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EROFS)),
            "{e}"
        ),
        Ok(mut f) => assert!(f.write_all(b"x").is_err(), "wrote to the sealed copy"),
    }
}

/// Copies the shared libraries and loader of `binary` (per `ldd`) into `rootfs`, so the
/// binary can run in there.
fn copy_libraries(binary: &Path, rootfs: &Path) {
    let out = Command::new("ldd").arg(binary).output().expect("ldd");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        if let Some(p) = path {
            let dst = rootfs.join(p.strip_prefix("/").unwrap());
            fs::create_dir_all(dst.parent().unwrap()).unwrap();
            fs::copy(&p, &dst).unwrap();
        }
    }
}

#[test]
fn init_runs_from_a_sealed_copy_of_ruse() {
    if !common::root_or_skip() {
        return;
    }
    let host_binary = fs::read(RUSE).unwrap();
    let env = Env::new(&["true"]);
    let id = unique_id("sealed");
    env.create(&id);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let kept = assert_unwritable_exe(pid);
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    assert_reopen_for_write_fails(&kept);
    assert_eq!(fs::read(RUSE).unwrap(), host_binary, "host binary changed");
    env.assert_clean(&id);
}

/// `#!/proc/self/exe` as the container's program: the kernel runs the interpreter that init's
/// /proc/self/exe names, which must be the sealed copy. Its `--log` is a FIFO, so the copy
/// blocks (running, inside the container) until the test has tried to write it.
#[test]
fn shebang_proc_self_exe_reaches_only_the_sealed_copy() {
    if !common::root_or_skip() {
        return;
    }
    let host_binary = fs::read(RUSE).unwrap();
    let env = Env::new(&["/evil"]);
    let evil = env.rootfs().join("evil");
    fs::write(&evil, "#!/proc/self/exe --log=/tmp/fifo\n").unwrap();
    chmod(&evil, 0o755);
    copy_libraries(Path::new(RUSE), &env.rootfs());
    let fifo = env.rootfs().join("tmp/fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let id = unique_id("shebang");
    env.create(&id);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let out = env.ruse(&["start", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let kept = assert_unwritable_exe(pid);
    // Let the copy go: it logs its (expected) usage error to the FIFO and exits 1.
    let mut r = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let (mut got, end) = (Vec::new(), Instant::now() + Duration::from_secs(10));
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match r.read(&mut buf) {
            Ok(0) if !got.is_empty() => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = String::from_utf8_lossy(&got);
    assert!(
        log.contains("not supported: command") && log.contains("/evil"),
        "{log}"
    );
    env.wait_status(&id, "stopped");
    assert_reopen_for_write_fails(&kept);
    assert_eq!(fs::read(RUSE).unwrap(), host_binary, "host binary changed");
    assert!(env.ruse(&["delete", &id]).status.success());
    env.assert_clean(&id);
}

// ---- 2 and 6. what init holds ----

#[test]
fn created_init_is_not_dumpable_and_holds_only_sockets() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    let id = unique_id("fds");
    env.create(&id);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let mut fds = Vec::new();
    for e in fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        let n: i32 = e.file_name().to_str().unwrap().parse().unwrap();
        let target = fs::read_link(e.path()).unwrap();
        let is_dir = fs::metadata(e.path()).is_ok_and(|m| m.is_dir());
        assert!(!is_dir, "init holds a directory: fd {n} -> {target:?}");
        if n > 2 {
            let t = target.to_string_lossy();
            assert!(
                t.starts_with("socket:["),
                "fd {n} -> {t} is not on the allow-list"
            );
        }
        fds.push(n);
    }
    assert!(fds.len() <= 5, "0-2, the channel and exec.sock: {fds:?}");
    // Without CAP_SYS_PTRACE, a root process with a superset of init's capabilities may follow
    // /proc/<pid>/exe of a dumpable process, never of a non-dumpable one.
    let probe = |pid: u32| {
        Command::new("setpriv")
            .args(["--bounding-set=-sys_ptrace", "readlink", "-v"])
            .arg(format!("/proc/{pid}/exe"))
            .output()
            .expect("setpriv (util-linux)")
    };
    // The control: a dumpable process with the same capabilities as the probe.
    let mut control = Command::new("setpriv")
        .args(["--bounding-set=-sys_ptrace", "sleep", "10"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let out = probe(control.id());
    let _ = control.kill();
    let _ = control.wait();
    assert!(out.status.success(), "the probe itself fails: {out:?}");
    let out = probe(pid as u32);
    assert!(
        !out.status.success() && stderr(&out).contains("Permission denied"),
        "init is dumpable: {out:?}"
    );
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

/// CVE-2024-21626: process.cwd through an fd init holds at that point.
#[test]
fn cwd_through_proc_self_fd_stays_inside() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sh", "-c", "pwd -P; ls -a"]);
    for n in 3..=64 {
        env.edit(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{n}")));
        let id = unique_id("cwd");
        let out = env.run(&id);
        match out.status.code() {
            Some(0) => {
                let text = stdout(&out);
                let pwd = text.lines().next().unwrap_or("");
                assert!(
                    pwd.starts_with('/') && !pwd.contains("unreachable"),
                    "fd {n}: {text}"
                );
                for l in text.lines().skip(1).filter(|l| !l.starts_with('.')) {
                    // Whatever directory it is, it is one of the container's.
                    assert!(
                        !l.starts_with("ruse-t-"),
                        "fd {n}: a host directory: {text}"
                    );
                }
            }
            _ => assert_error(&format!("fd {n}"), &out, &["process.cwd", "/proc/self/fd/"]),
        }
        env.assert_clean(&id);
    }
}

/// An fd leaked into ruse without CLOEXEC never reaches the container, which holds exactly
/// stdio plus the `--preserve-fds` range.
#[test]
fn leaked_fds_never_reach_the_container() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "30"]);
    let secret = env.dir.join("secret");
    fs::write(&secret, "host secret").unwrap();
    for (preserve, want) in [(0u32, vec![0, 1, 2]), (2, vec![0, 1, 2, 3, 4])] {
        let id = unique_id("leak");
        // The shell opens 3, 4, 7 and 9 without CLOEXEC, then becomes ruse.
        let script = format!(
            "exec 3<'{s}' 4<'{s}' 7<'{s}' 9<'{d}'; exec \"$0\" \"$@\"",
            s = secret.display(),
            d = env.dir.display()
        );
        let status = Command::new("sh")
            .args(["-c", &script, RUSE, "--root"])
            .arg(&env.root)
            .args([
                "run",
                "-d",
                "--preserve-fds",
                &preserve.to_string(),
                "--bundle",
            ])
            .arg(env.bundle())
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(fs::File::create(env.dir.join("leak.out")).unwrap())
            .stderr(fs::File::create(env.dir.join("leak.err")).unwrap())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{}",
            fs::read_to_string(env.dir.join("leak.err")).unwrap()
        );
        let pid = env.state(&id)["pid"].as_i64().unwrap();
        let mut fds: Vec<i32> = fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_str().unwrap().parse().unwrap())
            .collect();
        fds.sort();
        assert_eq!(fds, want, "--preserve-fds {preserve}");
        for fd in 3..3 + preserve {
            assert_eq!(
                fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap(),
                secret
            );
        }
        assert!(env.ruse(&["delete", "--force", &id]).status.success());
        env.assert_clean(&id);
    }
}

// ---- 3. /proc and /sys ----

#[test]
fn proc_or_sys_as_a_symlink_in_the_image() {
    if !common::root_or_skip() {
        return;
    }
    for dir in ["proc", "sys"] {
        for target in ["/tmp", "../../../../../../tmp", "/nonexistent", "."] {
            let env = Env::new(&["true"]);
            let p = env.rootfs().join(dir);
            fs::remove_dir(&p).unwrap();
            std::os::unix::fs::symlink(target, &p).unwrap();
            let b = env.bundle();
            for verb in ["create", "run"] {
                let id = unique_id("procsym");
                let out = env.ruse(&[verb, "--bundle", b.to_str().unwrap(), &id]);
                assert_error(
                    &format!("/{dir} -> {target} ({verb})"),
                    &out,
                    &[&format!("/{dir} must be mounted on ordinary directory")],
                );
                env.assert_clean(&id);
            }
        }
    }
}

#[test]
fn only_procfs_on_proc_and_only_allowed_binds_inside_it() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    std::os::unix::fs::symlink("/proc", env.rootfs().join("p")).unwrap();
    std::os::unix::fs::symlink("../../proc/sys", env.rootfs().join("tmp/ps")).unwrap();
    let base = env.config();
    let b = env.bundle();
    for dest in [
        "/proc",
        "/dev/../proc",
        "//proc/",
        "/proc/sys",
        "/proc/self/attr",
        "/proc/sys/kernel/core_pattern",
        "/p/sys",
        "/p/version",
        "/tmp/ps/kernel",
        "/p",
    ] {
        env.write_config(&base.to_string());
        let (typ, src, opts) = if dest.ends_with("pattern") || dest.ends_with("version") {
            ("bind", env.dir.join("f"), json!(["bind"]))
        } else if dest.contains("proc") && !dest.contains("sys") && !dest.contains("attr") {
            ("tmpfs", PathBuf::from("tmpfs"), json!([]))
        } else {
            ("bind", env.dir.clone(), json!(["rbind"]))
        };
        fs::write(env.dir.join("f"), "fake").unwrap();
        push_mount(
            &env,
            json!({"destination": dest, "type": typ, "source": src, "options": opts}),
        );
        for verb in ["create", "run"] {
            let id = unique_id("procdst");
            let out = env.ruse(&[verb, "--bundle", b.to_str().unwrap(), &id]);
            assert_error(&format!("{dest} ({verb})"), &out, &["mounts[7]"]);
            let e = stderr(&out);
            assert!(
                e.contains("/proc") && !e.contains("panicked"),
                "{dest}: {e}"
            );
            env.assert_clean(&id);
        }
    }
    // The allow-list (lxcfs-style files) works, and binds what it says.
    env.write_config(&base.to_string());
    fs::write(env.dir.join("uptime"), "12345.67 1.00\n").unwrap();
    push_mount(
        &env,
        json!({"destination": "/proc/uptime", "type": "bind",
        "source": env.dir.join("uptime"), "options": ["bind", "ro"]}),
    );
    env.edit(|c| c["process"]["args"] = json!(["cat", "/proc/uptime"]));
    assert_eq!(run_ok(&env, "uptime"), "12345.67 1.00\n");
}

// ---- 4 and 5. mount destinations through symlinks ----

/// Static symlinks of every kind: each mount lands inside the rootfs, where the symlink
/// leads when the rootfs is `/`; the host paths they name are untouched.
#[test]
fn mount_destinations_through_symlinks_land_inside() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["cat", "/proc/self/mountinfo"]);
    let host = env.dir.join("hostdir");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("marker"), "host").unwrap();
    let hs = host.to_str().unwrap().trim_start_matches('/').to_string();
    let r = env.rootfs();
    let ln = |target: &str, name: &str| std::os::unix::fs::symlink(target, r.join(name)).unwrap();
    ln(&format!("/{hs}"), "abs");
    ln(&format!("{}{hs}", "../".repeat(12)), "rel");
    ln("/nonexistent-in-root/deeper", "dangling");
    ln("..", "up");
    ln("/", "slash");
    ln("abs", "chain");
    let before = tree(&host);
    let cases = [
        ("/abs/m1", format!("/{hs}/m1")),
        ("/rel/m2", format!("/{hs}/m2")),
        ("/dangling/m3", "/nonexistent-in-root/deeper/m3".to_string()),
        ("/up/up/up/up/m4", "/m4".to_string()),
        ("/slash/../../m5", "/m5".to_string()),
        ("/chain/m6", format!("/{hs}/m6")),
        ("/tmp/../../../../m7/../m8", "/m8".to_string()),
    ];
    for (dest, _) in &cases {
        push_mount(
            &env,
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs"}),
        );
    }
    let info = run_ok(&env, "symdest");
    let points: Vec<&str> = info.lines().filter_map(|l| l.split(' ').nth(4)).collect();
    for (dest, want) in &cases {
        assert!(
            points.contains(&want.as_str()),
            "{dest} should be at {want}: {points:?}"
        );
    }
    assert_eq!(tree(&host), before, "the host directory changed");
    assert!(env.new_mounts().is_empty());
}

/// A helper swaps a directory and a symlink (to `/`, or to a host marker directory) with
/// RENAME_EXCHANGE while containers mount onto paths through it, creating missing mount
/// points on the way: host mountinfo never grows, no container sees the host, nothing new
/// appears in the marker directory. (CVE-2021-30465, CVE-2024-45310.)
#[test]
fn racing_symlink_swaps_during_mounts() {
    if !common::root_or_skip() {
        return;
    }
    let runs = if stress() { 1000 } else { 200 };
    let env = Env::new(&["true"]);
    let host = env.dir.join("hostmarker");
    fs::create_dir_all(host.join("sub")).unwrap();
    fs::write(host.join("sentinel"), "host").unwrap();
    let before = tree(&host);
    let sentinel = host.join("sentinel").display().to_string();
    env.edit(|c| {
        let check = format!("test ! -e {sentinel} && test ! -e /proc/1/root{sentinel}");
        c["process"]["args"] = json!(["sh", "-c", check]);
    });
    let r = env.rootfs();
    fs::create_dir_all(r.join("race/mnt")).unwrap();
    std::os::unix::fs::symlink("/", r.join("swap-root")).unwrap();
    std::os::unix::fs::symlink(&host, r.join("swap-host")).unwrap();
    push_mount(
        &env,
        json!({"destination": "/race/mnt", "type": "tmpfs", "source": "tmpfs"}),
    );
    push_mount(
        &env,
        json!({"destination": "/race/new/a/b", "type": "tmpfs", "source": "tmpfs"}),
    );
    let vol = env.dir.join("vol");
    fs::create_dir(&vol).unwrap();
    push_mount(
        &env,
        json!({"destination": "/race/sub", "type": "bind",
        "source": vol, "options": ["rbind", "ro"]}),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let grown = Arc::new(Mutex::new(Vec::new()));
    let swapper = {
        let (stop, swaps, grown, r) = (stop.clone(), swaps.clone(), grown.clone(), r.clone());
        let base: Vec<String> = common::mount_points();
        // Only mounts that could be ours: other tests on this machine mount elsewhere.
        let ours = [
            env.dir.to_string_lossy().into_owned(),
            host.to_string_lossy().into_owned(),
        ];
        std::thread::spawn(move || {
            use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let other = if i % 4 < 2 { "swap-root" } else { "swap-host" };
                let _ = renameat2(
                    AT_FDCWD,
                    &r.join("race"),
                    AT_FDCWD,
                    &r.join(other),
                    RenameFlags::RENAME_EXCHANGE,
                );
                i += 1;
                swaps.fetch_add(1, Ordering::Relaxed);
                if i % 50 == 0 {
                    let new: Vec<String> = common::mount_points()
                        .into_iter()
                        .filter(|m| {
                            !base.contains(m)
                                && (m == "/" || ours.iter().any(|o| m.starts_with(o.as_str())))
                        })
                        .collect();
                    if !new.is_empty() {
                        grown.lock().unwrap().extend(new);
                    }
                }
                std::thread::yield_now();
            }
        })
    };
    let failures = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let env = Arc::new(env);
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (env, next, failures, ok) =
                (env.clone(), next.clone(), failures.clone(), ok.clone());
            std::thread::spawn(move || {
                while next.fetch_add(1, Ordering::SeqCst) < runs {
                    let id = unique_id("race");
                    let out = env.run(&id);
                    match out.status.code() {
                        Some(0) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        // A mount may fail when its path changes under it; that is fine if
                        // the error is clean. A container that sees the host exits 1 too, so
                        // it is told apart by its (empty) stderr.
                        Some(1) if stderr(&out).starts_with("ruse: run ") => {
                            eprintln!("clean failure: {}", stderr(&out).trim());
                        }
                        _ => failures.lock().unwrap().push(format!("{id}: {out:?}")),
                    }
                    if env.root.join(&id).exists() || !common::cgroup_dirs_named(&id).is_empty() {
                        failures.lock().unwrap().push(format!("{id}: left behind"));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        grown.lock().unwrap().is_empty(),
        "host mounts grew: {:?}",
        grown.lock().unwrap()
    );
    let (ok, swaps) = (ok.load(Ordering::Relaxed), swaps.load(Ordering::Relaxed));
    eprintln!("{runs} runs under {swaps} swaps: {ok} ran, the rest failed cleanly");
    assert!(swaps > runs, "the swapper hardly ran");
    assert!(ok > 0, "no container ever ran");
    assert_eq!(tree(&host), before, "the host marker directory changed");
    env.assert_clean("");
}

// ---- 7. inheritable capabilities ----

#[test]
fn no_inheritable_capabilities_unless_asked() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["grep", "CapInh", "/proc/self/status"]);
    assert_eq!(run_ok(&env, "capinh"), "CapInh:\t0000000000000000\n");
    let id = unique_id("capinh");
    env.create(&id);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("CapInh:\t0000000000000000"), "{status}");
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
    env.edit(|c| c["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]));
    assert_eq!(run_ok(&env, "capinh2"), "CapInh:\t0000000000000020\n");
}

// ---- 8 and 12. fake /dev/null ----

fn host_core_pattern() -> String {
    fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap()
}

#[test]
fn masks_are_genuine_null_devices() {
    if !common::root_or_skip() {
        return;
    }
    let (core, null) = (host_core_pattern(), facts(Path::new("/dev/null")));
    let env = Env::new(&[
        "sh",
        "-c",
        // (Masked paths this kernel has: /proc/kcore is not built everywhere.)
        "stat -c '%F %t:%T' /proc/keys /proc/timer_list",
    ]);
    // Under the config's /dev tmpfs the image's /dev/null is never used.
    let dev_null = env.rootfs().join("dev/null");
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", &dev_null).unwrap();
    let out = run_ok(&env, "mask");
    for l in out.lines() {
        assert_eq!(l, "character special file 1:3", "{out}");
    }
    // Without it, a symlink or a regular file at /dev/null refuses the create.
    env.drop_mount("/dev");
    for regular in [false, true] {
        if regular {
            fs::remove_file(&dev_null).unwrap();
            fs::write(&dev_null, "").unwrap();
        }
        let b = env.bundle();
        for verb in ["create", "run"] {
            let id = unique_id("fakenull");
            let out = env.ruse(&[verb, "--bundle", b.to_str().unwrap(), &id]);
            assert_error(&format!("regular {regular} {verb}"), &out, &["/dev/null"]);
            env.assert_clean(&id);
        }
    }
    assert_eq!(host_core_pattern(), core);
    assert_eq!(facts(Path::new("/dev/null")), null);
}

#[test]
fn host_dev_null_is_never_changed() {
    if !common::root_or_skip() {
        return;
    }
    let null = facts(Path::new("/dev/null"));
    let env = Env::new(&["true"]);
    env.drop_mount("/dev");
    env.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3,
            "fileMode": 0o600, "uid": 4242, "gid": 4242}]);
        c["linux"]["maskedPaths"] = json!([]);
    });
    let dev = env.rootfs().join("dev");
    for target in [
        "/dev/null",
        "../../../../../../dev/null",
        "/proc/self/root/dev/null",
    ] {
        let _ = fs::remove_file(dev.join("null"));
        std::os::unix::fs::symlink(target, dev.join("null")).unwrap();
        let id = unique_id("hostnull");
        let out = env.run(&id);
        // The symlink is not the requested device: config-linux.md makes that an error.
        // Either way nothing may reach the host's node.
        if out.status.code() != Some(0) {
            assert_error(&format!("via {target}"), &out, &["/dev/null"]);
        }
        env.assert_clean(&id);
        assert_eq!(facts(Path::new("/dev/null")), null, "via {target}");
    }
}

// ---- 9. /dev/console from a path the image controls ----

/// CVE-2025-52565: the image ships `/dev/console` as a symlink to the host's core_pattern
/// (absolute, and relative) under its own /dev (no /dev tmpfs in the config). The console
/// must still be the pty from the container's devpts, bound over the path without following
/// the link; the host file is never reached.
#[test]
fn console_is_the_devpts_pty_even_when_the_image_links_it_elsewhere() {
    if !common::root_or_skip() {
        return;
    }
    let core = host_core_pattern();
    for target in [
        "/proc/sys/kernel/core_pattern",
        "../proc/sys/kernel/core_pattern",
    ] {
        let env = Env::new(&[
            "sh",
            "-c",
            "stat -c '%F %t' /dev/console; grep ' /dev/console ' /proc/self/mountinfo",
        ]);
        env.drop_mount("/dev");
        let dev = env.rootfs().join("dev");
        fs::create_dir(dev.join("pts")).unwrap();
        std::os::unix::fs::symlink(target, dev.join("console")).unwrap();
        env.edit(|c| c["process"]["terminal"] = json!(true));
        let id = unique_id("console");
        let out = env.run(&id);
        assert_eq!(out.status.code(), Some(0), "{target}: {out:?}");
        env.assert_clean(&id);
        let out = stdout(&out);
        let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
        // Major 136 (0x88): a Unix98 pty slave.
        assert_eq!(
            lines.first(),
            Some(&"character special file 88"),
            "{target}: {out}"
        );
        assert!(
            lines.len() == 2 && lines[1].contains(" - devpts "),
            "{target}: /dev/console is not a devpts mount: {out}"
        );
        assert_eq!(host_core_pattern(), core, "{target}");
    }
}

// ---- 10. runtime writes to /proc redirected by overmounts ----

/// Host sysctls a misdirected write of this test could reach, with their values.
fn host_sysctls() -> Vec<(&'static str, String)> {
    [
        "kernel/core_pattern",
        "kernel/shmmni",
        "kernel/shmmax",
        "kernel/shm_rmid_forced",
        "kernel/msgmax",
        "kernel/printk_ratelimit",
        "kernel/hostname",
        "kernel/domainname",
    ]
    .into_iter()
    .map(|k| (k, fs::read_to_string(format!("/proc/sys/{k}")).unwrap()))
    .collect()
}

/// Writes a host sysctl back if it changed (a runtime with the bug under test would have
/// written it), so a failure does not outlive the test.
struct RestoreSysctl(&'static str, String);

impl Drop for RestoreSysctl {
    fn drop(&mut self) {
        let p = format!("/proc/sys/{}", self.0);
        if fs::read_to_string(&p).ok().as_deref() != Some(self.1.as_str()) {
            let _ = fs::write(&p, &self.1);
        }
    }
}

/// `cat <path>` in namespaces of `pid` (nsenter flags: `-i` its IPC namespace, `-m` its
/// mount namespace too). Namespaced sysctls read as the reader's namespace has them, so the
/// container's value is read from its IPC namespace: through the host's /proc (the real
/// one), or through the container's own /proc (what it sees).
fn cat_in(pid: i64, flags: &[&str], path: &str) -> String {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string()])
        .args(flags)
        .args(["cat", path])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nsenter {flags:?} cat {path}: {}",
        stderr(&out)
    );
    stdout(&out).trim().to_string()
}

const SHMMNI: &str = "/proc/sys/kernel/shmmni";

/// CVE-2025-52881: the runtime's writes to /proc (here `linux.sysctl`) must go to the real
/// procfs of the container's namespaces, whatever sits over the container's /proc/sys. Three
/// ways of putting something there: (1) config mounts over /proc/sys, /proc/sys/kernel or the
/// sysctl file itself: refused (only allow-listed files may be mounted inside /proc); (2) a
/// tmpfs pre-mounted over the image's own proc/sys on the host; (3) the race of the CVE,
/// played deterministically by a createContainer hook that runs in the container's mount
/// namespace after /proc is mounted and before the sysctls are written: a tmpfs over
/// /proc/sys, a decoy file bound over the sysctl, or the host's (global) printk_ratelimit
/// bound over it. Each either fails cleanly, or the container's IPC namespace holds the
/// value; decoys keep their content and no host sysctl changes.
#[test]
fn sysctls_reach_the_real_procfs_whatever_is_mounted_over_proc_sys() {
    if !common::root_or_skip() {
        return;
    }
    let host = host_sysctls();
    let _restore = RestoreSysctl("kernel/printk_ratelimit", host[5].1.clone());
    let host_shmmni: u64 = host[1].1.trim().parse().unwrap();
    // A value the container's namespace does not start with.
    let want = (host_shmmni - 7).to_string();
    let env = Env::new(&["sleep", "30"]);
    env.edit(|c| c["linux"]["sysctl"] = json!({"kernel.shmmni": want}));
    let base = env.config();
    let decoy = env.dir.join("decoy");
    fs::write(&decoy, "decoy\n").unwrap();
    let b = env.bundle();
    let b = b.to_str().unwrap();

    // (1) Config mounts inside /proc.
    for (dest, typ, src) in [
        ("/proc/sys", "tmpfs", "tmpfs"),
        ("/proc/sys/kernel", "tmpfs", "tmpfs"),
        ("/proc/sys/kernel/shmmni", "bind", decoy.to_str().unwrap()),
    ] {
        env.write_config(&base.to_string());
        let opts = if typ == "bind" {
            json!(["bind"])
        } else {
            json!([])
        };
        push_mount(
            &env,
            json!({"destination": dest, "type": typ, "source": src, "options": opts}),
        );
        let id = unique_id("sysctlmnt");
        let out = env.ruse(&["create", "--bundle", b, &id]);
        assert_error(dest, &out, &["mounts[7]", "/proc"]);
        env.assert_clean(&id);
    }
    env.write_config(&base.to_string());

    // Each remaining case: create; the overmount is in place in the container (what its
    // /proc/sys/kernel/shmmni shows: `seen`), yet its namespace holds the value; the decoy
    // and the host are untouched.
    let check = |case: &str, seen: &str| {
        let id = unique_id("sysctl");
        let out = env.ruse(&["create", "--bundle", b, &id]);
        if out.status.success() {
            let pid = env.state(&id)["pid"].as_i64().unwrap();
            assert_eq!(
                cat_in(pid, &["-i", "-m"], SHMMNI),
                seen,
                "{case}: what the container sees at {SHMMNI}"
            );
            assert_eq!(
                cat_in(pid, &["-i"], SHMMNI),
                want,
                "{case}: the sysctl did not reach the container's namespace"
            );
            assert!(env.ruse(&["delete", "--force", &id]).status.success());
        } else {
            // Detected and refused: fine, if clean.
            assert_error(case, &out, &[]);
            eprintln!("{case}: refused: {}", stderr(&out));
        }
        env.assert_clean(&id);
        assert_eq!(fs::read_to_string(&decoy).unwrap(), "decoy\n", "{case}");
        assert_eq!(host_sysctls(), host, "{case}: a host sysctl changed");
    };

    // (2) A tmpfs over the image's proc/sys, mounted on the host before create.
    let sys = env.rootfs().join("proc/sys");
    fs::create_dir_all(&sys).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&sys)
        .status()
        .unwrap();
    assert!(mounted.success());
    fs::create_dir(sys.join("kernel")).unwrap();
    fs::copy(&decoy, sys.join("kernel/shmmni")).unwrap();
    let id = unique_id("sysctlpre");
    let out = env.ruse(&["create", "--bundle", b, &id]);
    let pre = if out.status.success() {
        // The container's /proc is a procfs over the image's directory, tmpfs and all.
        let pid = env.state(&id)["pid"].as_i64().unwrap();
        Ok((
            cat_in(pid, &["-i"], SHMMNI),
            cat_in(pid, &["-i", "-m"], SHMMNI),
        ))
    } else {
        Err(stderr(&out))
    };
    let _ = env.ruse(&["delete", "--force", &id]);
    let tmpfs_kept = fs::read_to_string(sys.join("kernel/shmmni")).unwrap();
    assert!(Command::new("umount").arg(&sys).status().unwrap().success());
    match pre {
        Ok((v, seen)) => {
            assert_eq!(
                v, want,
                "pre-mounted tmpfs: the sysctl missed the namespace"
            );
            assert_eq!(seen, want, "pre-mounted tmpfs: seen in the container");
        }
        Err(e) => assert!(e.lines().count() == 1 && !e.contains("panicked"), "{e}"),
    }
    assert_eq!(
        tmpfs_kept, "decoy\n",
        "pre-mounted tmpfs: the decoy was written"
    );
    env.assert_clean(&id);
    assert_eq!(
        host_sysctls(),
        host,
        "pre-mounted tmpfs: a host sysctl changed"
    );

    // (3) Overmounts made from inside, between the /proc mount and the sysctl write.
    let r = env.rootfs();
    let r = r.to_str().unwrap();
    let d = decoy.to_str().unwrap();
    let printk = host[5].1.trim().to_string();
    for (case, script, seen) in [
        (
            "tmpfs over /proc/sys",
            format!(
                "mount -t tmpfs tmpfs {r}/proc/sys && mkdir {r}/proc/sys/kernel && \
                 cp {d} {r}/proc/sys/kernel/shmmni"
            ),
            "decoy",
        ),
        (
            "decoy bound over the sysctl",
            format!("mount --bind {d} {r}/proc/sys/kernel/shmmni"),
            "decoy",
        ),
        (
            "host printk_ratelimit bound over the sysctl",
            format!("mount --bind /proc/sys/kernel/printk_ratelimit {r}/proc/sys/kernel/shmmni"),
            printk.as_str(),
        ),
    ] {
        env.write_config(&base.to_string());
        env.edit(|c| {
            c["hooks"] = json!({"createContainer": [
                {"path": "/bin/sh", "args": ["sh", "-e", "-c", script]}
            ]})
        });
        check(case, seen);
    }
}

// ---- 11. /dev and every created file as a symlink to the host ----

#[test]
fn dev_as_a_symlink_to_a_host_directory() {
    if !common::root_or_skip() {
        return;
    }
    for (tmpfs, relative) in [(false, false), (false, true), (true, false)] {
        let env = Env::new(&["sh", "-c", "ls /dev"]);
        let host = env.dir.join("hostdev");
        fs::create_dir(&host).unwrap();
        fs::write(host.join("marker"), "host").unwrap();
        let before = tree(&host);
        let dev = env.rootfs().join("dev");
        fs::remove_dir(&dev).unwrap();
        let target = if relative {
            format!(
                "{}{}",
                "../".repeat(12),
                host.to_str().unwrap().trim_start_matches('/')
            )
        } else {
            host.to_str().unwrap().to_string()
        };
        std::os::unix::fs::symlink(&target, &dev).unwrap();
        if !tmpfs {
            env.drop_mount("/dev");
        }
        let out = run_ok(&env, "devsym");
        assert!(out.contains("null") && out.contains("ptmx"), "{out}");
        assert_eq!(tree(&host), before, "/dev -> {target} (tmpfs {tmpfs})");
    }
}

/// Every file ruse creates in the rootfs (device nodes, /dev links, mount points, the
/// console, the cwd) is pre-planted as a symlink to a host marker: markers stay untouched.
#[test]
fn planted_symlinks_at_every_created_path_do_not_reach_the_host() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    env.drop_mount("/dev");
    let markers = env.dir.join("markers");
    fs::create_dir(&markers).unwrap();
    let r = env.rootfs();
    let planted = [
        "dev/null",
        "dev/zero",
        "dev/full",
        "dev/random",
        "dev/urandom",
        "dev/tty",
        "dev/fd",
        "dev/stdin",
        "dev/stdout",
        "dev/stderr",
        "dev/ptmx",
        "dev/console",
        "dev/pts",
        "dev/shm",
        "dev/mqueue",
        "dev/custom",
        "etc/bound",
        "workdir",
        "mnt",
    ];
    for (i, rel) in planted.iter().enumerate() {
        let m = markers.join(format!("m{i}"));
        if rel.ends_with("pts") || rel.ends_with("shm") || rel.ends_with("mqueue") || *rel == "mnt"
        {
            fs::create_dir(&m).unwrap();
        } else {
            fs::write(&m, format!("marker {i}")).unwrap();
            chmod(&m, 0o640);
        }
        let target = if i % 2 == 0 {
            m.to_str().unwrap().to_string()
        } else {
            format!(
                "{}{}",
                "../".repeat(10),
                m.to_str().unwrap().trim_start_matches('/')
            )
        };
        std::os::unix::fs::symlink(&target, r.join(rel)).unwrap();
    }
    fs::write(env.dir.join("bindsrc"), "bound").unwrap();
    push_mount(
        &env,
        json!({"destination": "/etc/bound", "type": "bind", "source": env.dir.join("bindsrc"), "options": ["bind"]}),
    );
    push_mount(
        &env,
        json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"}),
    );
    env.edit(|c| {
        c["process"]["cwd"] = json!("/workdir");
        c["linux"]["devices"] = json!([{"path": "/dev/custom", "type": "c", "major": 1, "minor": 5, "uid": 1, "gid": 1}]);
    });
    let before = tree(&markers);
    let null = facts(Path::new("/dev/null"));
    // A configured device whose path holds something else (here the planted symlink) is an
    // error (config-linux.md "Devices"), and nothing is made through the symlink.
    let id = unique_id("planted");
    let out = env.run(&id);
    assert_error("linux.devices", &out, &["/dev/custom"]);
    env.assert_clean(&id);
    assert_eq!(tree(&markers), before, "linux.devices");
    env.edit(|c| c["linux"]["devices"] = json!([]));
    // With the masks (which refuse a /dev/null that is not 1:3), and without them.
    for masks in [true, false] {
        if !masks {
            env.edit(|c| {
                c["linux"]["maskedPaths"] = json!([]);
                c["linux"]["readonlyPaths"] = json!([]);
            });
        }
        let id = unique_id("planted");
        let out = env.run(&id);
        // Refused cleanly: with masks, the /dev/null that is not 1:3; without, the cwd
        // that is a symlink (as runc's MkdirAll).
        let want = if masks {
            "/dev/null"
        } else {
            "process.cwd /workdir"
        };
        assert_error(&format!("masks {masks}"), &out, &[want]);
        env.assert_clean(&id);
        assert_eq!(tree(&markers), before, "masks {masks}");
    }
    // With a terminal (/dev/console) and a real /dev/pts for the pty (ruse opens the
    // multiplexer without following symlinks), the container runs; the rest stays planted.
    let pts = r.join("dev/pts");
    fs::remove_file(&pts).unwrap();
    fs::create_dir(&pts).unwrap();
    env.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["cwd"] = json!("/");
    });
    let id = unique_id("plantedtty");
    let out = env.run(&id);
    assert_eq!(out.status.code(), Some(0), "terminal: {}", stderr(&out));
    env.assert_clean(&id);
    assert_eq!(tree(&markers), before, "terminal");
    assert_eq!(facts(Path::new("/dev/null")), null);
}

// ---- 13. over-long and NUL paths ----

#[test]
fn over_long_and_nul_paths_are_clean_errors() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    let base = env.config();
    let long = format!("/{}", "l/".repeat(2100));
    let name = format!("/{}", "n".repeat(300));
    let cases: Vec<(&str, Value)> = vec![
        ("root.path", json!({"root": {"path": "root\u{0}fs"}})),
        ("root.path", json!({"root": {"path": long}})),
        ("process.cwd", json!({"process": {"cwd": long}})),
        ("process.cwd", json!({"process": {"cwd": name}})),
        ("exec: ", json!({"process": {"args": [long]}})),
        (
            "hooks.prestart[0]",
            json!({"hooks": {"prestart": [{"path": "/bin/\u{0}true"}]}}),
        ),
        (
            "hooks.prestart[0]",
            json!({"hooks": {"prestart": [{"path": long}]}}),
        ),
        (
            "hooks.poststart[0].args",
            json!({"hooks": {"poststart": [{"path": "/bin/true", "args": ["a\u{0}"]}]}}),
        ),
        (
            "linux.devices",
            json!({"linux": {"devices": [{"path": long, "type": "c", "major": 1, "minor": 3}]}}),
        ),
        (
            "linux.devices",
            json!({"linux": {"devices": [{"path": "/dev/a\u{0}b", "type": "c", "major": 1, "minor": 3}]}}),
        ),
        (
            "mounts[0]",
            json!({"mounts": [{"destination": "/mnt", "type": "bind", "source": long, "options": ["bind"]}]}),
        ),
        (
            "linux.namespaces",
            json!({"linux": {"namespaces": [{"type": "mount"}, {"type": "network", "path": "/proc/self/ns/\u{0}net"}]}}),
        ),
        (
            "linux.namespaces",
            json!({"linux": {"namespaces": [{"type": "mount"}, {"type": "network", "path": long}]}}),
        ),
        ("linux.cgroupsPath", json!({"linux": {"cgroupsPath": long}})),
        ("hostname", json!({"hostname": "a\u{0}b"})),
    ];
    let b = env.bundle();
    for (field, patch) in cases {
        let mut c = base.clone();
        merge(&mut c, &patch);
        env.write_config(&c.to_string());
        for verb in ["create", "run"] {
            let id = unique_id("paths");
            let out = env.ruse(&[verb, "--bundle", b.to_str().unwrap(), &id]);
            assert_error(&format!("{patch} ({verb})"), &out, &[field]);
            assert!(!stderr(&out).contains('\0'), "raw NUL in {}", stderr(&out));
            env.assert_clean(&id);
        }
    }
    env.write_config(&base.to_string());
    // Over-long paths on the command line.
    let id = unique_id("paths");
    let bs = b.to_str().unwrap();
    for (want, args) in [
        ("config.json", vec!["create", "--bundle", &long, &id]),
        (
            "--pid-file",
            vec!["create", "--bundle", bs, "--pid-file", &long, &id],
        ),
        (
            "--console-socket",
            vec!["create", "--bundle", bs, "--console-socket", &long, &id],
        ),
    ] {
        let out = env.ruse(&args);
        assert_error(want, &out, &[want]);
        assert!(!stderr(&out).contains('\0'), "raw NUL in {}", stderr(&out));
        env.assert_clean(&id);
    }
    let out = Command::new(RUSE)
        .arg("--root")
        .arg(&long)
        .args(["state", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

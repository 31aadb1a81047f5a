//! `ruse exec`: what the started process is, as the kernel shows it from the host (its
//! namespaces, cgroup, credentials, fds, seccomp mode under /proc/<pid>) and from inside (its
//! output), for runc's flags; the terminal modes; exit statuses (the process's, 255 for
//! ruse's own errors); refusals; rootless exec; and the CVE checks that concern a process
//! entering a running container.

mod common;

use common::{stderr, stdout, unique_id, Env, RUSE};
use serde_json::json;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running container (`sleep 1000`) in `env`.
fn running(env: &Env, tag: &str) -> String {
    let id = unique_id(tag);
    env.create(&id);
    assert!(env.ruse(&["start", &id]).status.success());
    env.wait_status(&id, "running");
    id
}

fn exec(env: &Env, args: &[&str]) -> Output {
    let mut a = vec!["exec"];
    a.extend_from_slice(args);
    env.ruse(&a)
}

/// A detached exec through files (the process keeps the stdio it was given).
fn exec_detached(env: &Env, args: &[&str]) -> Output {
    let mut a = vec!["exec", "-d"];
    a.extend_from_slice(args);
    env.output_via_files(env.cmd().args(&a))
}

/// ruse's own exec errors: one line, exit 255 (runc's), with the phrases wanted.
fn assert_exec_error(what: &str, out: &Output, wants: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(255), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: one line wanted: {err}");
    for w in wants {
        assert!(err.contains(w), "{what}: {w:?} missing from: {err}");
    }
}

fn ns_of(pid: i64, name: &str) -> std::path::PathBuf {
    fs::read_link(format!("/proc/{pid}/ns/{name}")).unwrap()
}

fn status_field(pid: i64, key: &str) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

fn read_pid_file(p: &Path) -> i64 {
    fs::read_to_string(p).unwrap().trim().parse().unwrap()
}

fn kill_pid(pid: i64) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

// The process enters every namespace of init (time included), its cgroup, and is pid 2 of
// the container's pid namespace; --pid-file names its host pid.
#[test]
fn exec_joins_the_namespaces_and_cgroup_of_init() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    env.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}});
    });
    let id = running(&env, "ns");
    let init = env.state(&id)["pid"].as_i64().unwrap();
    let pidfile = env.dir.join("exec.pid");
    let out = exec_detached(
        &env,
        &["--pid-file", pidfile.to_str().unwrap(), &id, "sleep", "100"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = read_pid_file(&pidfile);
    // The program is the container's (the link reads as the container sees it).
    use std::os::unix::fs::MetadataExt;
    let exe = fs::metadata(format!("/proc/{pid}/exe")).unwrap();
    let busybox = fs::metadata(env.rootfs().join("bin/busybox")).unwrap();
    assert_eq!((exe.dev(), exe.ino()), (busybox.dev(), busybox.ino()));
    for ns in ["mnt", "pid", "net", "ipc", "uts", "cgroup", "time"] {
        assert_eq!(ns_of(pid, ns), ns_of(init, ns), "{ns} namespace");
        assert_ne!(ns_of(pid, ns), ns_of(std::process::id() as i64, ns), "{ns}");
    }
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap()
    );
    // Inside: pid 1 is init, and the time namespace's offsets are init's.
    let out = exec(
        &env,
        &[
            &id,
            "sh",
            "-c",
            "ps -o pid,args; cat /proc/self/timens_offsets",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(lines.iter().any(|l| l == "1 sleep 1000"), "{text}");
    assert!(lines.iter().any(|l| l == "2 sleep 100"), "{text}");
    assert!(lines.iter().any(|l| l == "monotonic 86400 0"), "{text}");
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

// Foreground exec returns the process's status; 128+N when a signal killed it.
#[test]
fn exec_exit_statuses() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    let id = running(&env, "status");
    for (script, want) in [("exit 0", 0), ("exit 42", 42), ("kill -9 $$", 137)] {
        let out = exec(&env, &[&id, "sh", "-c", script]);
        assert_eq!(out.status.code(), Some(want), "{script}: {}", stderr(&out));
    }
    let out = exec(&env, &[&id, "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("out\n", "err\n")
    );
    // The command is passed on untouched, flags and all (Go stops parsing at the id).
    let out = exec(&env, &[&id, "echo", "-root", "--tty", "-e"]);
    assert_eq!(stdout(&out), "-root --tty -e\n", "{}", stderr(&out));
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

// runc's process flags: --cwd, --env (overriding the config's), --user, --additional-gids,
// --cap, --no-new-privs; HOME from the container's /etc/passwd.
#[test]
fn exec_process_flags() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    env.edit(|c| c["process"]["env"] = json!(["PATH=/bin", "A=config"]));
    let id = running(&env, "flags");
    let out = exec(
        &env,
        &[
            "--cwd",
            "/tmp",
            "-e",
            "A=flag",
            "--env",
            "B=2",
            "-u",
            "1000:1001",
            "-g",
            "7",
            "--additional-gids",
            "8",
            &id,
            "sh",
            "-c",
            "pwd; echo $A $B $HOME; id -u; id -g; id -G",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "/tmp\nflag 2 /\n1000\n1001\n1001 7 8\n");
    // Root's HOME comes from /etc/passwd; -u uid alone keeps the config's gid (0).
    let out = exec(
        &env,
        &["-u", "65534", &id, "sh", "-c", "echo $HOME; id -u; id -g"],
    );
    assert_eq!(stdout(&out), "/\n65534\n0\n", "{}", stderr(&out));
    let out = exec(&env, &[&id, "sh", "-c", "echo $HOME"]);
    assert_eq!(stdout(&out), "/root\n");
    // Capabilities and no_new_privs, from the host's view of the process.
    let pidfile = env.dir.join("cap.pid");
    let out = exec_detached(
        &env,
        &[
            "--cap",
            "CAP_SYS_ADMIN",
            "--cap",
            "net_admin",
            "--no-new-privs",
            "--pid-file",
            pidfile.to_str().unwrap(),
            &id,
            "sleep",
            "100",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = read_pid_file(&pidfile);
    let eff = u64::from_str_radix(&status_field(pid, "CapEff:"), 16).unwrap();
    let bnd = u64::from_str_radix(&status_field(pid, "CapBnd:"), 16).unwrap();
    for cap in [21u32, 12] {
        assert!(
            eff & (1 << cap) != 0 && bnd & (1 << cap) != 0,
            "cap {cap}: {eff:x}"
        );
    }
    assert_eq!(status_field(pid, "NoNewPrivs:"), "1");
    assert_eq!(status_field(pid, "CapInh:"), "0000000000000000");
    kill_pid(pid);
    // Without flags, the process has the container's capabilities (no CAP_SYS_ADMIN).
    let out = exec(
        &env,
        &[
            &id,
            "sh",
            "-c",
            "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status",
        ],
    );
    let text = stdout(&out);
    let eff = text
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap();
    assert_eq!(
        u64::from_str_radix(eff, 16).unwrap() & (1 << 21),
        0,
        "{text}"
    );
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

// -p process.json replaces the process wholesale; bad files are refused naming the field.
#[test]
fn exec_process_file() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    let id = running(&env, "pfile");
    let p = env.dir.join("process.json");
    fs::write(
        &p,
        json!({
            "args": ["sh", "-c", "pwd; echo $X; id -u; ulimit -n"],
            "env": ["PATH=/bin", "X=from-file"],
            "cwd": "/etc",
            "user": {"uid": 5, "gid": 6},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 77}]
        })
        .to_string(),
    )
    .unwrap();
    let out = exec(&env, &["-p", p.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "/etc\nfrom-file\n5\n77\n");
    for (text, wants) in [
        ("{", &["--process", "EOF"][..]),
        ("[]", &["--process", "JSON object"]),
        (r#"{"args": "sh", "cwd": "/"}"#, &["args"]),
        (
            r#"{"args": ["sh"], "cwd": "rel"}"#,
            &["process.cwd", "absolute"],
        ),
        (r#"{"args": [], "cwd": "/"}"#, &["process.args"]),
    ] {
        fs::write(&p, text).unwrap();
        let out = exec(&env, &["-p", p.to_str().unwrap(), &id]);
        assert_exec_error(text, &out, wants);
    }
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

// Refusals: one line, exit 255, nothing started.
#[test]
fn exec_refusals() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    let id = running(&env, "refuse");
    let before = common::processes_of(&env.rootfs()).len();
    let sock = env.dir.join("console.sock");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["no-such-id", "true"], vec!["does not exist"]),
        (vec!["../x", "true"], vec!["invalid container id"]),
        (vec![&id], vec!["no command given"]),
        (
            vec![&id, "no-such-prog"],
            vec!["executable file not found in $PATH"],
        ),
        (
            vec!["--cwd", "/no/such", &id, "true"],
            vec!["process.cwd /no/such", "No such file"],
        ),
        (
            vec!["--cwd", "rel", &id, "true"],
            vec!["process.cwd", "absolute"],
        ),
        (vec!["-u", "abc", &id, "true"], vec!["--user"]),
        (vec!["-u", "1:", &id, "true"], vec!["--user"]),
        (vec!["-u", "-1", &id, "true"], vec!["--user"]),
        (vec!["-u", "4294967296", &id, "true"], vec!["--user"]),
        (vec!["-g", "x", &id, "true"], vec!["--additional-gids"]),
        (
            vec!["--cap", "CAP_BOGUS", &id, "true"],
            vec!["--cap", "unknown capability"],
        ),
        (vec!["-e", "NOEQ", &id, "true"], vec!["--env", "KEY=value"]),
        (
            vec!["--apparmor", "p", &id, "true"],
            vec!["not supported: --apparmor"],
        ),
        (
            vec!["--process-label", "l", &id, "true"],
            vec!["not supported: --process-label"],
        ),
        (vec!["-d", "-t", &id, "true"], vec!["console socket"]),
        (
            vec!["--console-socket", sock.to_str().unwrap(), &id, "true"],
            vec!["console socket"],
        ),
        (
            vec!["--preserve-fds", "40", &id, "true"],
            vec!["--preserve-fds", "not open"],
        ),
        (vec!["--cgroup", "../x", &id, "true"], vec!["--cgroup"]),
        (
            vec!["--cgroup", "nosuch", &id, "true"],
            vec!["--cgroup", "does not exist"],
        ),
    ];
    for (args, wants) in cases {
        let out = exec(&env, &args);
        assert_exec_error(&format!("{args:?}"), &out, &wants);
    }
    assert_eq!(
        common::processes_of(&env.rootfs()).len(),
        before,
        "a process was left"
    );
    // Paused: refused unless --ignore-paused (then it starts once resumed).
    assert!(env.ruse(&["pause", &id]).status.success());
    let out = exec(&env, &[&id, "true"]);
    assert_exec_error(
        "paused",
        &out,
        &["cannot exec in a paused container", "--ignore-paused"],
    );
    let mut waiter = env
        .cmd()
        .args(["exec", "--ignore-paused", &id, "sh", "-c", "echo thawed"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(waiter.try_wait().unwrap().is_none(), "ran while frozen");
    assert!(env.ruse(&["resume", &id]).status.success());
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "thawed\n", "{}", stderr(&out));
    // Stopped.
    assert!(env.ruse(&["kill", &id, "KILL"]).status.success());
    env.wait_status(&id, "stopped");
    let out = exec(&env, &[&id, "true"]);
    assert_exec_error("stopped", &out, &["cannot exec in a stopped container"]);
    assert!(env.ruse(&["delete", &id]).status.success());
    env.assert_clean(&id);
}

// A created (not yet started) container can be exec'd into, as with runc.
#[test]
fn exec_into_a_created_container() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    let id = unique_id("created");
    env.create(&id);
    let out = exec(
        &env,
        &[&id, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ruse init"), "{}", stdout(&out));
    assert_eq!(env.state(&id)["status"], "created");
    assert!(env.ruse(&["start", &id]).status.success());
    env.wait_status(&id, "running");
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

/// Reads `fd` until `want` shows up or `secs` pass.
fn read_until(f: &mut fs::File, want: &str, secs: u64) -> String {
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 4096];
    while Instant::now() < end && !String::from_utf8_lossy(&got).contains(want) {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

// `exec -t` in the foreground: ruse proxies a pty from the container's devpts, with the
// caller's window size, input and output.
#[test]
fn exec_tty_foreground() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    let id = running(&env, "tty");
    let ws = nix::pty::Winsize {
        ws_row: 33,
        ws_col: 111,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).unwrap();
    let slave = fs::File::from(pty.slave);
    let mut child = env
        .cmd()
        .args(["exec", "-t", &id, "sh", "-c"])
        .arg("tty; stty size; echo READY; read x; echo got:$x; exit 3")
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut master = fs::File::from(pty.master);
    nix::fcntl::fcntl(
        master.as_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let first = read_until(&mut master, "READY", 10);
    assert!(first.contains("/dev/pts/0"), "{first}");
    assert!(first.contains("33 111"), "{first}");
    master.write_all(b"typed\n").unwrap();
    let rest = read_until(&mut master, "got:typed", 10);
    assert!(rest.contains("got:typed"), "{first}{rest}");
    assert_eq!(child.wait().unwrap().code(), Some(3));
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

// `exec -d -t --console-socket`: the pty master reaches the socket (runc's protocol) and
// carries the process's output.
#[test]
fn exec_tty_console_socket() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    let id = running(&env, "console");
    let path = env.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let out = exec_detached(
        &env,
        &[
            "-t",
            "--console-socket",
            path.to_str().unwrap(),
            &id,
            "sh",
            "-c",
            "tty; echo via-console; sleep 5",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (conn, _) = listener.accept().unwrap();
    let (name, fd) = recv_fd(&conn);
    assert_eq!(name, "/dev/ptmx");
    let mut master = fs::File::from(fd);
    let text = read_until(&mut master, "via-console", 10);
    assert!(
        text.contains("/dev/pts/0") && text.contains("via-console"),
        "{text}"
    );
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

/// One message with one fd (SCM_RIGHTS): (payload, fd).
#[allow(unsafe_code)]
fn recv_fd(conn: &std::os::unix::net::UnixStream) -> (String, std::os::fd::OwnedFd) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            fd = fds.first().copied();
        }
    }
    let n = msg.bytes;
    let fd = fd.expect("no fd in the message");
    let name = String::from_utf8_lossy(&buf[..n]).into_owned();
    // SAFETY: the fd arrived with the message and nothing else owns it.
    (name, unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

// --pidfd-socket: a pidfd of the exec'd process reaches the socket; --preserve-fds passes
// fds 3.. and nothing else of ruse's (an fd leaked into ruse stays out).
#[test]
fn exec_pidfd_socket_and_fds() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    let id = running(&env, "pidfd");
    let path = env.dir.join("pidfd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let pidfile = env.dir.join("p.pid");
    let out = exec_detached(
        &env,
        &[
            "--pidfd-socket",
            path.to_str().unwrap(),
            "--pid-file",
            pidfile.to_str().unwrap(),
            &id,
            "sleep",
            "100",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (conn, _) = listener.accept().unwrap();
    let (_, pidfd) = recv_fd(&conn);
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).unwrap();
    let pid = read_pid_file(&pidfile);
    assert!(info.contains(&format!("Pid:\t{pid}\n")), "{info}");
    kill_pid(pid);
    // fds: the shell leaks 5 and 9 into ruse; with --preserve-fds 2, fds 3 and 4 pass.
    let secret = env.dir.join("secret");
    fs::write(&secret, "x").unwrap();
    let script = format!(
        "exec 3<'{s}' 4<'{s}' 5<'{s}' 9<'{d}'; exec \"$0\" \"$@\"",
        s = secret.display(),
        d = env.dir.display()
    );
    let out = Command::new("sh")
        .args(["-c", &script, RUSE, "--root"])
        .arg(&env.root)
        .args(["exec", "--preserve-fds", "2", &id, "ls", "/proc/self/fd"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // ls's own directory fd is the one more.
    let fds: Vec<&str> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3", "4", "5"], "fd 5 is ls's own");
    let out = Command::new("sh")
        .args(["-c", &script, RUSE, "--root"])
        .arg(&env.root)
        .args([
            "exec",
            &id,
            "sh",
            "-c",
            "ls -l /proc/$$/fd | grep -c secret; true",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "0", "{}", stderr(&out));
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

// CVE-2024-21626 for exec: --cwd through /proc/self/fd/N never reaches a host directory.
#[test]
fn exec_cwd_through_proc_self_fd_stays_inside() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    let id = running(&env, "cwdfd");
    for n in 3..=20 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = exec(&env, &["--cwd", &cwd, &id, "sh", "-c", "pwd -P; ls -a"]);
        match out.status.code() {
            Some(0) => {
                let text = stdout(&out);
                let pwd = text.lines().next().unwrap_or("");
                assert!(
                    pwd.starts_with('/') && !pwd.contains("unreachable"),
                    "{n}: {text}"
                );
                assert!(
                    !text.contains("ruse-t-"),
                    "fd {n}: a host directory: {text}"
                );
            }
            _ => assert_exec_error(&cwd, &out, &["process.cwd"]),
        }
    }
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

// CVE-2019-5736 for exec: `#!/proc/self/exe` as the exec'd program reaches only the
// write-protected binary ruse's exec init ran from, never the host's ruse.
#[test]
fn exec_shebang_proc_self_exe_cannot_reach_the_host_binary() {
    if !common::root_or_skip() {
        return;
    }
    let host_binary = fs::read(RUSE).unwrap();
    let env = Env::new(&["sleep", "1000"]);
    let evil = env.rootfs().join("evil");
    fs::write(&evil, "#!/proc/self/exe --log=/tmp/fifo\n").unwrap();
    fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for line in stdout(&Command::new("ldd").arg(RUSE).output().unwrap()).lines() {
        if let Some(p) = line.split_whitespace().find(|w| w.starts_with('/')) {
            let dst = env.rootfs().join(&p[1..]);
            fs::create_dir_all(dst.parent().unwrap()).unwrap();
            fs::copy(p, &dst).unwrap();
        }
    }
    let fifo = env.rootfs().join("tmp/fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let id = running(&env, "shebang");
    let pidfile = env.dir.join("evil.pid");
    let out = exec_detached(
        &env,
        &["--pid-file", pidfile.to_str().unwrap(), &id, "/evil"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = read_pid_file(&pidfile);
    // The interpreter runs (blocked on the FIFO): its exe may not be opened for writing.
    let exe = format!("/proc/{pid}/exe");
    let link = fs::read_link(&exe).unwrap();
    assert_ne!(
        link,
        fs::canonicalize(RUSE).unwrap(),
        "the host binary itself"
    );
    let w = fs::OpenOptions::new().write(true).open(&exe);
    assert!(w.is_err(), "opened {link:?} for writing");
    let mut r = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let mut log = read_until_file(&mut r);
    log.truncate(400);
    assert!(log.contains("/evil"), "{log}");
    assert_eq!(fs::read(RUSE).unwrap(), host_binary, "host binary changed");
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

fn read_until_file(f: &mut fs::File) -> String {
    let (mut got, end) = (Vec::new(), Instant::now() + Duration::from_secs(10));
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match f.read(&mut buf) {
            Ok(0) if !got.is_empty() => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    String::from_utf8_lossy(&got).into_owned()
}

// The container's seccomp filter and rlimits apply to exec'd processes too.
#[test]
fn exec_gets_the_containers_seccomp_filter() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    env.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
        });
    });
    let id = running(&env, "seccomp");
    let out = exec(
        &env,
        &[
            &id,
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status; mkdir /tmp/d 2>&1; true",
        ],
    );
    let text = stdout(&out);
    assert!(text.contains("Seccomp:\t2"), "{text} {}", stderr(&out));
    assert!(text.contains("Function not implemented"), "{text}");
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

// --cgroup: the process lands in an existing sub-cgroup of the container's.
#[test]
fn exec_into_a_sub_cgroup() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    let id = running(&env, "subcg");
    let dirs = common::cgroup_dirs_named(&id);
    if dirs.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no cgroup for {id}"
        );
        return;
    }
    for d in &dirs {
        fs::create_dir(d.join("sub")).unwrap();
        // A v1 cpuset cgroup takes no process before it has cpus and mems.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = fs::read_to_string(d.join(f)) {
                fs::write(d.join("sub").join(f), v.trim()).unwrap();
            }
        }
    }
    let pidfile = env.dir.join("sub.pid");
    let out = exec_detached(
        &env,
        &[
            "--cgroup",
            "sub",
            "--pid-file",
            pidfile.to_str().unwrap(),
            &id,
            "sleep",
            "100",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = read_pid_file(&pidfile);
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cg.lines().filter(|l| l.contains(&id)) {
        assert!(line.ends_with(&format!("{id}/sub")), "{cg}");
    }
    kill_pid(pid);
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

// A container with its own user namespace: the exec'd process is in it, with its maps, and
// its user is the mapped host id.
#[test]
fn exec_in_a_user_namespace() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    env.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/sys/fs/cgroup");
    });
    let rootfs = env.rootfs();
    Command::new("chown")
        .args(["-R", "200000:200000"])
        .arg(&rootfs)
        .status()
        .unwrap();
    let id = running(&env, "userns");
    let init = env.state(&id)["pid"].as_i64().unwrap();
    let out = exec(&env, &[&id, "sh", "-c", "cat /proc/self/uid_map; id -u"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["0", "200000", "65536"], "{text}");
    assert_eq!(rows[1], ["0"], "{text}");
    let pidfile = env.dir.join("u.pid");
    let out = exec_detached(
        &env,
        &[
            "-u",
            "1000",
            "--pid-file",
            pidfile.to_str().unwrap(),
            &id,
            "sleep",
            "100",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = read_pid_file(&pidfile);
    assert_eq!(ns_of(pid, "user"), ns_of(init, "user"));
    assert_eq!(
        status_field(pid, "Uid:").split_whitespace().next(),
        Some("201000")
    );
    kill_pid(pid);
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

// Rootless: an unprivileged user execs into its own container (user namespace entered with
// the rest in one setns), foreground and detached.
#[test]
fn exec_rootless() {
    if !common::root_or_skip() {
        return;
    }
    let u = common::user::User::new();
    let b = u.bundle(&["sleep", "1000"]);
    let id = &unique_id("rlexec");
    let r = u.ruse(&["run", "-d", "--bundle", b.to_str().unwrap(), id]);
    assert!(r.status.success(), "run: {}", stderr(&r));
    u.wait_status(id, "running");
    let r = u.ruse(&[
        "exec",
        id,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; hostname",
    ]);
    assert!(r.status.success(), "exec: {}", stderr(&r));
    let text = stdout(&r);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "{text}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", &u.uid.to_string(), "1"], "{text}");
    let r = u.ruse(&["exec", id, "sh", "-c", "exit 7"]);
    assert_eq!(r.status.code(), Some(7), "{}", stderr(&r));
    let r = u.ruse(&["delete", "--force", id]);
    assert!(r.status.success(), "delete: {}", stderr(&r));
    u.assert_clean(id);
}

// Foreground exec forwards signals to the process.
#[test]
fn exec_forwards_signals() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    let id = running(&env, "sig");
    let child = env
        .cmd()
        .args([
            "exec",
            &id,
            "sh",
            "-c",
            "trap 'echo got-term; exit 9' TERM; echo up; while :; do sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 3];
    out.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"up\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got-term\n");
    assert_eq!(child.wait().unwrap().code(), Some(9));
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

// create's --pidfd-socket (runc 1.2): a pidfd of init reaches the socket once create returns;
// a socket that cannot be reached fails create before anything is made.
#[test]
fn create_pidfd_socket_gets_init() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    let id = unique_id("cpidfd");
    let path = env.dir.join("init-pidfd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let bundle = env.bundle();
    let out = env.ruse(&[
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        "--pidfd-socket",
        path.to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (conn, _) = listener.accept().unwrap();
    let (_, pidfd) = recv_fd(&conn);
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).unwrap();
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    assert!(info.contains(&format!("Pid:\t{pid}\n")), "{info}");
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);

    let missing = env.dir.join("nobody-listens.sock");
    let out = env.ruse(&[
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        "--pidfd-socket",
        missing.to_str().unwrap(),
        &id,
    ]);
    common::assert_error(
        "create --pidfd-socket to nothing",
        &out,
        &["--pidfd-socket", "nobody-listens.sock", "No such file"],
    );
    env.assert_clean(&id);
}

// Socket activation as runc does it: LISTEN_FDS fds 3.. reach the container ahead of the
// --preserve-fds range, and the process is told LISTEN_FDS=n, LISTEN_PID=1.
#[test]
fn listen_fds_reach_the_container() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&[
        "sh",
        "-c",
        "echo $LISTEN_FDS $LISTEN_PID; ls /proc/self/fd | tr '\\n' ' '",
    ]);
    let secret = env.dir.join("activated");
    fs::write(&secret, "x").unwrap();
    let id = unique_id("listen");
    let script = format!(
        "exec 3<'{s}' 4<'{s}' 5<'{s}' 6<'{s}'; exec \"$0\" \"$@\"",
        s = secret.display()
    );
    let out = Command::new("sh")
        .args(["-c", &script, RUSE, "--root"])
        .arg(&env.root)
        .args(["run", "--preserve-fds", "1", "--bundle"])
        .arg(env.bundle())
        .arg(&id)
        .env("LISTEN_FDS", "2")
        .env_remove("LISTEN_PID")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("2 1"), "{text}");
    // ls's own directory fd is the one more; fd 6 stays out.
    let fds: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3", "4", "5", "6"], "{text}");
    env.assert_clean(&id);
}

// A process whose pid file or pidfd cannot be handed over is killed, as runc does: the caller
// cannot know of it, so it must not run on in the container.
#[test]
fn exec_kills_the_process_it_cannot_hand_over() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "1000"]);
    let id = running(&env, "handover");
    let rootfs = env.rootfs();
    let before = common::processes_of(&rootfs).len();
    let nowhere = env.dir.join("no-such-dir").join("p.pid");
    let out = exec_detached(
        &env,
        &["--pid-file", nowhere.to_str().unwrap(), &id, "sleep", "333"],
    );
    assert_exec_error("exec --pid-file in a missing dir", &out, &["no-such-dir"]);
    let missing = env.dir.join("nobody.sock");
    let out = exec_detached(
        &env,
        &[
            "--pidfd-socket",
            missing.to_str().unwrap(),
            &id,
            "sleep",
            "333",
        ],
    );
    assert_exec_error("exec --pidfd-socket to nothing", &out, &["nobody.sock"]);
    let end = Instant::now() + Duration::from_secs(5);
    while common::processes_of(&rootfs).len() != before {
        assert!(Instant::now() < end, "an exec'd sleep was left running");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

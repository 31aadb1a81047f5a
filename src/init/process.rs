//! The process attributes of config.md "Process", applied by init after pivot_root in the
//! order the kernel needs: resolve the program, limits and scheduling, then the user switch
//! with capabilities kept across it, then the final capability sets and no_new_privs. The
//! seccomp filter goes where runc puts it: without no_new_privs, installing it needs
//! CAP_SYS_ADMIN, so before the user switch; with it, last, so that as few of the runtime's
//! own syscalls as possible run under the container's filter.

use crate::caps::{self, CapMasks};
use crate::sys::fs::{openat2, RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV};
use crate::sys::mount::FsContext;
use crate::sys::{fs as sfs, process as sp, socket};
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{Process as OciProcess, Spec};
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

pub struct Process<'a> {
    p: &'a OciProcess,
    pub terminal: bool,
    personality: Option<u64>,
    /// setgroups(2) is disabled in our user namespace (/proc/self/setgroups is "deny").
    setgroups_denied: bool,
    /// A process `ruse exec` starts, not the container's init (execCPUAffinity is for those).
    pub for_exec: bool,
}

/// What is left to do at `start`: the execve itself.
pub struct Exec {
    path: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    /// A filter installed last, right before the execve (see `late_seccomp`).
    late_filter: Option<(Vec<seccompiler::sock_filter>, libc::c_ulong)>,
}

/// Whether the filter can go on last, right before the execve: with noNewPrivileges (no
/// privilege is needed then) and no listener to hand to the runtime. Nothing of ruse's own
/// then runs under it (as in runc, which installs it after its start handshake), so a profile
/// that denies what ruse uses (sendmsg, accept4, close_range, …) cannot break the start.
pub fn late_seccomp(spec: &Spec, filter: Option<&crate::seccomp::Compiled>) -> bool {
    let nnp = spec
        .process()
        .as_ref()
        .and_then(|p| p.no_new_privileges())
        .unwrap_or(false);
    nnp && filter.is_some_and(|f| f.flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER == 0)
}

impl<'a> Process<'a> {
    pub fn new(spec: &'a Spec) -> Result<Self> {
        let p = spec.process().as_ref().context("process: missing")?;
        let personality = match spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
            None => None,
            Some(pers) => {
                if pers.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                    return Err(crate::errors::not_supported("linux.personality.flags"));
                }
                match serde_json::to_value(pers.domain())?.as_str() {
                    Some("LINUX") => Some(0),
                    Some("LINUX32") => Some(0x0008),
                    other => bail!("linux.personality.domain {other:?}: unknown"),
                }
            }
        };
        // Read now, while /proc is still the runtime's procfs (the namespaces are joined).
        let setgroups_denied =
            std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
        Ok(Process {
            p,
            terminal: p.terminal().unwrap_or(false),
            personality,
            setgroups_denied,
            for_exec: false,
        })
    }

    /// Everything but the exec. Runs after pivot_root; errors name the config field.
    /// `seccomp` installs the container's filter (if any) and hands its listener on.
    pub fn prepare(
        &self,
        tty: Option<BorrowedFd>,
        seccomp: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Exec> {
        let p = self.p;
        let mut env: Vec<String> = p.env().clone().unwrap_or_default();
        // Init's cwd was made, if missing, while the rootfs was built (rootfs::finish, before
        // a read-only root); exec's must exist.
        let cwd = p.cwd();
        std::env::set_current_dir(cwd).with_context(|| format!("process.cwd {}", cwd.display()))?;
        // A cwd reached through a leaked fd (/proc/self/fd/N) is outside the root: getcwd
        // reports it unreachable (CVE-2024-21626).
        match std::env::current_dir() {
            Ok(d) if d.is_absolute() => {}
            _ => bail!(
                "process.cwd {}: resolves outside the container's root",
                cwd.display()
            ),
        }
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            // runc's rule: HOME from the container's /etc/passwd entry of the uid, else "/".
            env.push(format!("HOME={}", home_of(p.user().uid())));
        }
        let args = p.args().clone().unwrap_or_default();
        let path = find_program(&args[0], &env)?;
        if let Some(tty) = tty {
            sp::setsid().context("setsid")?;
            sp::set_controlling_tty(tty).context("set controlling terminal")?;
            for fd in 0..3 {
                sp::dup2(tty.as_raw_fd(), fd).context("attach stdio to the terminal")?;
            }
        }
        self.limits()?;
        let nnp = p.no_new_privileges().unwrap_or(false);
        if !nnp {
            seccomp()?;
        }
        self.credentials()?;
        if nnp {
            seccomp()?;
        }
        let c = |s: &str| CString::new(s).map_err(|_| anyhow!("NUL byte in {s:?}"));
        Ok(Exec {
            path: CString::new(path.as_os_str().as_bytes())?,
            argv: args.iter().map(|a| c(a)).collect::<Result<_>>()?,
            env: env.iter().map(|e| c(e)).collect::<Result<_>>()?,
            late_filter: None,
        })
    }

    fn limits(&self) -> Result<()> {
        let p = self.p;
        for r in p.rlimits().as_deref().unwrap_or_default() {
            let name = r.typ().to_string();
            let res =
                rlimit_number(&name).ok_or_else(|| anyhow!("process.rlimits {name}: unknown"))?;
            sp::setrlimit(res, r.soft(), r.hard())
                .with_context(|| format!("process.rlimits {name} ({}/{})", r.soft(), r.hard()))?;
        }
        if let Some(adj) = p.oom_score_adj() {
            let proc_ = procfs()?;
            // /proc/self is a symlink, which open_proc refuses to follow: name our pid (the
            // private procfs belongs to our pid namespace, so getpid is its name there).
            let mut f = open_proc(&proc_, &format!("{}/oom_score_adj", sp::getpid()))?;
            f.write_all(adj.to_string().as_bytes())
                .with_context(|| format!("process.oomScoreAdj {adj}"))?;
        }
        if let Some(io) = p.io_priority() {
            let class = match serde_json::to_value(io.class())?.as_str() {
                Some("IOPRIO_CLASS_RT") => 1,
                Some("IOPRIO_CLASS_BE") => 2,
                _ => 3,
            };
            sp::ioprio_set(class, io.priority()).context("process.ioPriority")?;
        }
        if let Some(s) = p.scheduler() {
            let mut attr = scheduler_attr(s)?;
            sp::sched_setattr(&mut attr).context("process.scheduler")?;
        }
        if let Some(domain) = self.personality {
            sp::personality(domain).context("linux.personality")?;
        }
        // config.md: execCPUAffinity is for exec'd processes, not applicable to init.
        if let Some(aff) = p
            .exec_cpu_affinity()
            .as_ref()
            .filter(|_| self.for_exec)
            .and_then(|a| a.cpu_affinity_final().clone())
        {
            let cpus = parse_cpus(&aff)
                .with_context(|| format!("process.execCPUAffinity.final {aff:?}"))?;
            sp::sched_setaffinity(0, &cpus)
                .with_context(|| format!("process.execCPUAffinity.final {aff:?}"))?;
        }
        Ok(())
    }

    /// Bounding set first (needs CAP_SETPCAP), then the uid switch with KEEPCAPS so the
    /// permitted set survives it, then the final sets and no_new_privs.
    fn credentials(&self) -> Result<()> {
        let p = self.p;
        let masks = p.capabilities().as_ref().map(CapMasks::from_spec);
        if let Some(m) = &masks {
            caps::drop_bounding(m)?;
        }
        sp::prctl(libc::PR_SET_KEEPCAPS, 1, 0).context("keep capabilities")?;
        let u = p.user();
        let mut groups: Vec<u32> = u.additional_gids().clone().unwrap_or_default();
        groups.dedup();
        match sp::setgroups(&groups) {
            // A user namespace made by an unprivileged user (setgroups "deny") refuses every
            // setgroups call; with no additional gids asked for there is nothing to set, and
            // no supplementary group of ours is mapped in it anyway (runc does the same).
            Err(e)
                if groups.is_empty()
                    && e.raw_os_error() == Some(libc::EPERM)
                    && self.setgroups_denied => {}
            r => r.with_context(|| format!("process.user.additionalGids {groups:?}"))?,
        }
        sp::setresgid(u.gid()).with_context(|| format!("process.user.gid {}", u.gid()))?;
        sp::setresuid(u.uid()).with_context(|| format!("process.user.uid {}", u.uid()))?;
        sp::prctl(libc::PR_SET_KEEPCAPS, 0, 0).context("reset keep capabilities")?;
        if let Some(m) = &masks {
            caps::apply_sets(m)?;
        }
        if p.no_new_privileges().unwrap_or(false) {
            sp::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).context("process.noNewPrivileges")?;
        }
        if let Some(m) = u.umask() {
            sfs::umask(m);
        } else {
            sfs::umask(0o022);
        }
        Ok(())
    }
}

impl Exec {
    /// Installs `filter` right before the execve instead of now (see `late_seccomp`).
    pub fn filter_last(&mut self, filter: &crate::seccomp::Compiled) {
        self.late_filter = Some((filter.program(), filter.flags));
    }

    /// Closes every fd but stdio and the preserved ones, then execs. Returns only on error.
    /// `announce`: a connection told, just before the execve, that nothing but the execve
    /// itself is left (`start` reads EXEC_MARKER then EOF; EOF alone means init died).
    pub fn exec(&self, preserve_fds: u32, announce: Option<BorrowedFd>) -> anyhow::Error {
        if let Err(e) = sfs::cloexec_from(3 + preserve_fds) {
            return anyhow!("close fds: {e}");
        }
        for fd in 3..3 + preserve_fds {
            let _ = sfs::set_cloexec(fd as i32, false);
        }
        if let Err(e) = sp::reset_signals() {
            return anyhow!("reset signals: {e}");
        }
        if let Some(conn) = announce {
            if let Err(e) = crate::sys::socket::send(conn, crate::channel::EXEC_MARKER, &[]) {
                return anyhow!("tell start that the process is being executed: {e}");
            }
        }
        if let Some((prog, flags)) = &self.late_filter {
            if let Err(e) = crate::sys::seccomp::install(prog, *flags) {
                return anyhow!("linux.seccomp: install the filter: {e}");
            }
        }
        let e = sp::execve(&self.path, &self.argv, &self.env);
        // runc's wording: `exec /x.sh: no such file or directory` (e.g. a bad `#!` line).
        anyhow!(
            "exec {}: {}",
            self.path.to_string_lossy(),
            crate::errors::go_os_text(&e)
        )
    }
}

/// The home directory of `uid` in the container's /etc/passwd (resolved inside the root, no
/// magic links), or "/" as runc defaults.
fn home_of(uid: u32) -> String {
    let read = || -> Option<String> {
        let root = std::fs::File::open("/").ok()?;
        let fd = crate::rootfs::resolve::open_in_root(
            root.as_fd(),
            Path::new("etc/passwd"),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
        .ok()?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text).ok()?;
        passwd_home(&text, uid)
    };
    read().unwrap_or_else(|| "/".into())
}

/// The home field of the first passwd line whose uid is `uid`.
fn passwd_home(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2].parse() == Ok(uid) && !f[5].is_empty()).then(|| f[5].to_string())
    })
}

/// Go's exec.LookPath over the container's PATH, with runc's error wording (engines map
/// "no such file or directory" and "executable file not found" to exit code 127 and
/// "permission denied" to 126).
fn find_program(arg0: &str, env: &[String]) -> Result<PathBuf> {
    // As Go (before 1.20, as runc 1.1): a directory or a file without any x bit is a
    // permission error.
    let check = |p: &Path| -> std::io::Result<()> {
        let m = std::fs::metadata(p)?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&m.permissions());
        if m.is_dir() || mode & 0o111 == 0 {
            return Err(std::io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(())
    };
    let go = crate::errors::go_os_text;
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match check(&p) {
            Ok(()) => Ok(p),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                bail!("exec: {arg0:?}: {}", go(&e))
            }
            Err(e) => bail!("exec: {arg0:?}: stat {arg0}: {}", go(&e)),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        if check(&cand).is_ok() {
            return Ok(cand);
        }
    }
    bail!("exec: {arg0:?}: executable file not found in $PATH")
}

fn rlimit_number(name: &str) -> Option<i32> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    } as i32)
}

fn scheduler_attr(s: &oci_spec::runtime::Scheduler) -> Result<sp::SchedAttr> {
    let policy = match serde_json::to_value(s.policy())?.as_str().unwrap_or("") {
        "SCHED_OTHER" => 0,
        "SCHED_FIFO" => 1,
        "SCHED_RR" => 2,
        "SCHED_BATCH" => 3,
        "SCHED_ISO" => 4,
        "SCHED_IDLE" => 5,
        "SCHED_DEADLINE" => 6,
        other => bail!("process.scheduler.policy {other:?}: unknown"),
    };
    let mut flags = 0u64;
    for f in s.flags().as_deref().unwrap_or_default() {
        flags |= match serde_json::to_value(f)?.as_str().unwrap_or("") {
            "SCHED_FLAG_RESET_ON_FORK" => 0x01,
            "SCHED_FLAG_RECLAIM" => 0x02,
            "SCHED_FLAG_DL_OVERRUN" => 0x04,
            "SCHED_FLAG_KEEP_POLICY" => 0x08,
            "SCHED_FLAG_KEEP_PARAMS" => 0x10,
            "SCHED_FLAG_UTIL_CLAMP_MIN" => 0x20,
            "SCHED_FLAG_UTIL_CLAMP_MAX" => 0x40,
            other => bail!("process.scheduler.flags {other:?}: unknown"),
        };
    }
    Ok(sp::SchedAttr {
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    })
}

/// Parses a cpu list like `0-3,7`.
pub fn parse_cpus(s: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse()?, b.trim().parse()?);
                if a > b || b >= 8192 {
                    bail!("bad range {part:?}");
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse()?),
        }
    }
    if out.is_empty() {
        bail!("empty cpu list");
    }
    Ok(out)
}

/// A private procfs instance, detached from any path: writes through it cannot be redirected
/// by whatever the image or its mounts put at /proc (CVE-2025-52881).
fn procfs() -> Result<OwnedFd> {
    let fd = FsContext::open("proc")
        .and_then(|c| c.mount(0))
        .context("mount a private procfs")?;
    if sfs::fstatfs_type(fd.as_fd())? != PROC_SUPER_MAGIC {
        bail!("private procfs is not procfs");
    }
    Ok(fd)
}

fn open_proc(proc_: &OwnedFd, rel: &str) -> Result<std::fs::File> {
    let fd = openat2(
        proc_.as_fd(),
        Path::new(rel),
        libc::O_WRONLY,
        0,
        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
    )
    .with_context(|| format!("open /proc/{rel}"))?;
    Ok(std::fs::File::from(fd))
}

/// linux.sysctl, written through the private procfs (validation allowed only namespaced keys).
pub fn sysctl(spec: &Spec) -> Result<()> {
    let Some(map) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .filter(|m| !m.is_empty())
    else {
        return Ok(());
    };
    let proc_ = procfs()?;
    for (k, v) in map {
        let rel = format!("sys/{}", k.replace('.', "/"));
        let mut f = open_proc(&proc_, &rel).with_context(|| format!("linux.sysctl {k}"))?;
        f.write_all(v.as_bytes())
            .with_context(|| format!("linux.sysctl {k}={v}"))?;
    }
    Ok(())
}

/// Sends the pty master to the console socket (runc's protocol: one message, the pty's name
/// as payload, the fd as SCM_RIGHTS) after applying process.consoleSize.
pub fn send_console(
    sock: BorrowedFd,
    master: BorrowedFd,
    slave: BorrowedFd,
    spec: &Spec,
) -> Result<()> {
    if let Some(sz) = spec.process().as_ref().and_then(|p| p.console_size()) {
        sp::set_winsize(slave, sz.height() as u16, sz.width() as u16)
            .context("process.consoleSize")?;
    }
    socket::send(sock, b"/dev/ptmx", &[master.as_raw_fd()])
        .context("send pty master to the console socket")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpus("0-3,7").unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse_cpus("5").unwrap(), vec![5]);
        assert!(parse_cpus("3-1").is_err());
        assert!(parse_cpus("x").is_err());
        assert!(parse_cpus("").is_err());
    }

    #[test]
    fn passwd_homes() {
        let p =
            "root:x:0:0:root:/root:/bin/sh\nbad line\nu:x:1000:1000::/home/u:/bin/sh\nv:x:7:7:::\n";
        assert_eq!(passwd_home(p, 0).as_deref(), Some("/root"));
        assert_eq!(passwd_home(p, 1000).as_deref(), Some("/home/u"));
        assert_eq!(passwd_home(p, 7), None);
        assert_eq!(passwd_home(p, 5), None);
    }

    #[test]
    fn rlimit_names() {
        assert_eq!(
            rlimit_number("RLIMIT_NOFILE"),
            Some(libc::RLIMIT_NOFILE as i32)
        );
        assert_eq!(rlimit_number("RLIMIT_BOGUS"), None);
    }

    #[test]
    fn program_lookup() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(find_program("sh", &env).unwrap().ends_with("sh"));
        let e = find_program("no-such-prog-xyz", &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("executable file not found in $PATH"), "{e}");
        let e = find_program("/etc", &env).unwrap_err().to_string();
        assert_eq!(e, "exec: \"/etc\": permission denied");
        let e = find_program("/no/such", &env).unwrap_err().to_string();
        assert_eq!(
            e,
            "exec: \"/no/such\": stat /no/such: no such file or directory"
        );
    }
}

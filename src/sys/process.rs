//! Process-level syscalls: clone, exec, namespaces, credentials, prctl, limits, signals.

use super::{cvt, cvt_retry, owned};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// `clone(2)` without a new stack: like fork, but with namespace flags. Returns 0 in the child.
/// Only call while single-threaded; the child must exec soon and use no locks the parent held.
pub fn clone_fork(flags: u64) -> io::Result<libc::pid_t> {
    let f = flags | libc::SIGCHLD as u64;
    // SAFETY: a null stack makes the child run on a copy-on-write copy of our stack, as fork;
    // ruse is single-threaded here, so no lock can be held by a thread that is not copied.
    let pid = cvt(unsafe { libc::syscall(libc::SYS_clone, f, 0usize, 0usize, 0usize, 0usize) })?;
    Ok(pid as libc::pid_t)
}

/// Executes the file open at `fd` (the sealed memfd) with `argv`, and an empty environment.
pub fn execveat_fd(fd: BorrowedFd, argv: &[CString]) -> io::Error {
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: argv and envp are null-terminated arrays of valid C strings that outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            ptrs.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// `execve(2)`; returns only on failure.
pub fn execve(path: &CString, argv: &[CString], env: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: null-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    io::Error::last_os_error()
}

pub fn setns(fd: BorrowedFd, nstype: i32) -> io::Result<()> {
    // SAFETY: valid fd.
    cvt(unsafe { libc::setns(fd.as_raw_fd(), nstype) }).map(drop)
}

/// The user namespace that owns the namespace open at `fd` (ioctl NS_GET_USERNS).
pub fn ns_owner(fd: BorrowedFd) -> io::Result<OwnedFd> {
    const NS_GET_USERNS: u64 = 0xb701;
    // SAFETY: NS_GET_USERNS takes no argument and returns a new fd.
    let r = cvt(unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_USERNS as _) })?;
    Ok(owned(r as i64))
}

pub fn unshare(flags: i32) -> io::Result<()> {
    // SAFETY: no memory effects.
    cvt(unsafe { libc::unshare(flags) }).map(drop)
}

pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length describe `name`.
    cvt(unsafe { libc::sethostname(name.as_ptr() as *const libc::c_char, name.len()) }).map(drop)
}

pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length describe `name`.
    cvt(unsafe { libc::setdomainname(name.as_ptr() as *const libc::c_char, name.len()) }).map(drop)
}

pub fn prctl(op: i32, a: u64, b: u64) -> io::Result<i32> {
    // SAFETY: the prctl operations used by ruse take integer arguments only.
    cvt(unsafe { libc::prctl(op, a, b, 0u64, 0u64) })
}

pub fn set_pdeathsig(sig: i32) -> io::Result<()> {
    prctl(libc::PR_SET_PDEATHSIG, sig as u64, 0).map(drop)
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// Sets the effective, permitted and inheritable sets (64-bit masks) of this thread.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and a two-element data array, as _LINUX_CAPABILITY_VERSION_3 requires.
    cvt(unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) })
        .map(drop)
}

pub fn setgroups(gids: &[u32]) -> io::Result<()> {
    // SAFETY: pointer and length describe `gids`. Raw syscall: this thread only, as intended
    // (the process is single-threaded at this point).
    cvt(unsafe { libc::syscall(libc::SYS_setgroups, gids.len(), gids.as_ptr()) }).map(drop)
}

pub fn setresgid(gid: u32) -> io::Result<()> {
    // SAFETY: no memory effects.
    cvt(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

pub fn setresuid(uid: u32) -> io::Result<()> {
    // SAFETY: no memory effects.
    cvt(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

pub fn setrlimit(resource: i32, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit; old limit pointer is null.
    cvt(unsafe { libc::prlimit(0, resource as _, &lim, std::ptr::null_mut()) }).map(drop)
}

pub fn ioprio_set(class: i64, prio: i64) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: i64 = 1;
    // SAFETY: integer arguments only.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            (class << 13) | prio,
        )
    })
    .map(drop)
}

#[repr(C)]
#[derive(Default)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

pub fn sched_setattr(attr: &mut SchedAttr) -> io::Result<()> {
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `attr` is a valid sched_attr with its size set.
    cvt(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *mut SchedAttr, 0) }).map(drop)
}

pub fn personality(domain: u64) -> io::Result<()> {
    // SAFETY: integer argument only.
    cvt(unsafe { libc::personality(domain as libc::c_ulong) }).map(drop)
}

/// Pins `pid` (0: the caller) to `cpus`.
pub fn sched_setaffinity(pid: libc::pid_t, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is valid.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        if c >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: `c` is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size we pass.
    cvt(unsafe { libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) })
        .map(drop)
}

pub fn getpid() -> libc::pid_t {
    // SAFETY: cannot fail.
    unsafe { libc::getpid() }
}

pub fn geteuid() -> u32 {
    // SAFETY: cannot fail.
    unsafe { libc::geteuid() }
}

pub fn kill(pid: libc::pid_t, sig: i32) -> io::Result<()> {
    // SAFETY: no memory effects.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments; the result is a new fd we own.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    Ok(owned(fd))
}

pub fn pidfd_send_signal(pidfd: BorrowedFd, sig: i32) -> io::Result<()> {
    // SAFETY: valid fd, null siginfo.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            0usize,
            0,
        )
    })
    .map(drop)
}

/// Waits for `pid` (-1: any child); returns (pid, wait status) or None with WNOHANG and nothing.
pub fn waitpid(pid: libc::pid_t, nohang: bool) -> io::Result<Option<(libc::pid_t, i32)>> {
    let mut status = 0;
    let flags = if nohang { libc::WNOHANG } else { 0 };
    // SAFETY: `status` is a valid out pointer.
    let r = cvt_retry(|| unsafe { libc::waitpid(pid, &mut status, flags) })?;
    Ok(if r == 0 { None } else { Some((r, status)) })
}

/// Shell-style exit code of a wait status: the exit code, or 128 + signal.
pub fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// Blocks `signals` and returns a signalfd that reads them.
pub fn block_signals(signals: &[i32]) -> io::Result<OwnedFd> {
    // SAFETY: an empty sigset is valid; sigaddset with valid signal numbers.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset.
    unsafe { libc::sigemptyset(&mut set) };
    for &s in signals {
        // SAFETY: `set` is a valid sigset.
        unsafe { libc::sigaddset(&mut set, s) };
    }
    // SAFETY: valid set pointer, null old set.
    cvt(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) })?;
    // SAFETY: valid set pointer.
    let fd = cvt(unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) })?;
    Ok(owned(fd as i64))
}

/// Unblocks every signal and resets handlers to default (for the container's process).
pub fn reset_signals() -> io::Result<()> {
    // SAFETY: an empty sigset is valid.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: valid set pointer.
    cvt(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) })?;
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is always a valid disposition; errors for reserved signals are ignored.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    Ok(())
}

/// Reads one signal number from a signalfd.
pub fn read_signal(fd: BorrowedFd) -> io::Result<i32> {
    // SAFETY: an all-zero siginfo is valid to overwrite.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: `info` is a writable buffer of `size` bytes.
    let n = cvt_retry(|| unsafe {
        libc::read(
            fd.as_raw_fd(),
            &mut info as *mut _ as *mut libc::c_void,
            size,
        )
    })?;
    if n as usize != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "short signalfd read",
        ));
    }
    Ok(info.ssi_signo as i32)
}

/// poll(2) on fds for reading; returns which are readable (or hung up).
pub fn poll_read(fds: &[RawFd], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `p` is a valid array of pollfd of the given length.
    cvt_retry(|| unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) })?;
    Ok(p.iter().map(|x| x.revents != 0).collect())
}

/// Brings the loopback interface up: a new network namespace starts with `lo` down.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket creation; the fd is owned below.
    let s =
        owned(
            cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?
                as i64,
        );
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq for SIOCGIFFLAGS.
    cvt(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: reading the flags member the kernel just filled in.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: `req` is a valid ifreq for SIOCSIFFLAGS.
    cvt(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &req) }).map(drop)
}

pub fn setsid() -> io::Result<()> {
    // SAFETY: no memory effects.
    cvt(unsafe { libc::setsid() }).map(drop)
}

pub fn dup2(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: fd numbers only.
    cvt(unsafe { libc::dup2(old, new) }).map(drop)
}

/// Completes a pty pair from an opened `ptmx` master: returns the slave, obtained with
/// TIOCGPTPEER and never by path (CVE-2025-52565).
pub fn pty_peer(master: BorrowedFd) -> io::Result<OwnedFd> {
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int.
    cvt(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) })?;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let slave = cvt(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    Ok(owned(slave as i64))
}

pub fn set_controlling_tty(fd: BorrowedFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) }).map(drop)
}

pub fn set_winsize(fd: BorrowedFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ takes a pointer to a winsize.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(drop)
}

pub fn get_winsize(fd: RawFd) -> io::Result<(u16, u16)> {
    // SAFETY: an all-zero winsize is valid to overwrite.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) })?;
    Ok((ws.ws_row, ws.ws_col))
}

/// Puts the terminal at `fd` in raw mode and returns the previous settings.
pub fn make_raw(fd: RawFd) -> io::Result<libc::termios> {
    // SAFETY: an all-zero termios is valid to overwrite.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    cvt(unsafe { libc::tcgetattr(fd, &mut t) })?;
    let old = t;
    // SAFETY: valid pointer.
    unsafe { libc::cfmakeraw(&mut t) };
    // SAFETY: valid pointer.
    cvt(unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) })?;
    Ok(old)
}

pub fn restore_term(fd: RawFd, t: &libc::termios) {
    // SAFETY: valid pointer; failure leaves the terminal as it is.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) };
}

pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: no memory effects.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn getegid() -> u32 {
    // SAFETY: cannot fail.
    unsafe { libc::getegid() }
}

pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a writable buffer of its length.
    cvt_retry(|| unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) })
        .map(|n| n as usize)
}

pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a readable buffer of its length.
        let n = cvt_retry(|| unsafe {
            libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len())
        })?;
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Sleeps until a signal ends the process (a child that only holds a namespace).
pub fn pause_forever() -> ! {
    loop {
        // SAFETY: pause has no memory effects.
        unsafe { libc::pause() };
    }
}

/// `_exit(2)`: leaves without running atexit handlers or destructors (for a forked child).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Joins a new session keyring named `name`, so the container does not share the caller's.
pub fn join_session_keyring(name: &str) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: i64 = 1;
    let c = super::cstr(name)?;
    // SAFETY: valid C string; keyctl takes it as the keyring name.
    cvt(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c.as_ptr()) })
        .map(drop)
}

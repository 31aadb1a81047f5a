//! seccomp(2): install a compiled filter (in init, just before or after the credential
//! switch, as runc does) and probe which flags and actions the running kernel supports (for
//! `features`).

use super::{cvt, owned};
use std::io;
use std::os::fd::OwnedFd;

/// Installs `prog` on the calling thread. With SECCOMP_FILTER_FLAG_NEW_LISTENER in `flags`
/// the kernel returns the notification fd, which is handed back.
pub fn install(
    prog: &[seccompiler::sock_filter],
    flags: libc::c_ulong,
) -> io::Result<Option<OwnedFd>> {
    let mut insns: Vec<libc::sock_filter> = prog
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let len = u16::try_from(insns.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "filter too long"))?;
    let fprog = libc::sock_fprog {
        len,
        filter: insns.as_mut_ptr(),
    };
    // SAFETY: `fprog` points to `insns`, alive for the call; the kernel copies the program.
    let ret = cvt(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    })?;
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        return Ok(Some(owned(ret)));
    }
    if ret > 0 {
        // TSYNC without TSYNC_ESRCH reports the thread it could not synchronise.
        return Err(io::Error::other(format!(
            "thread {ret} could not be synchronised to the filter"
        )));
    }
    Ok(None)
}

/// True when the kernel knows the filter flag: with a NULL program it then fails with
/// EFAULT instead of EINVAL (libseccomp's probe).
pub fn flag_supported(flag: libc::c_ulong) -> bool {
    // SAFETY: a NULL program is never dereferenced: the kernel checks the flags first and
    // fails copying from NULL otherwise; no filter is installed either way.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flag,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    ret == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// True when the kernel implements the filter return action (SECCOMP_GET_ACTION_AVAIL).
pub fn action_supported(action: u32) -> bool {
    // SAFETY: the kernel reads one u32 from a valid pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    ret == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_probes() {
        assert!(action_supported(libc::SECCOMP_RET_ALLOW));
        assert!(!action_supported(0x1234_0000));
        assert!(flag_supported(libc::SECCOMP_FILTER_FLAG_LOG));
        assert!(!flag_supported(1 << 30));
    }

    #[test]
    fn install_in_a_child_process() {
        // A filter is for life: install it in a forked child only.
        // ERRNO(77) for getppid; everything else allowed.
        let prog = [
            seccompiler::sock_filter {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 0,
            },
            seccompiler::sock_filter {
                code: 0x15,
                jt: 0,
                jf: 1,
                k: libc::SYS_getppid as u32,
            },
            seccompiler::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x0005_0000 | 77,
            },
            seccompiler::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000,
            },
        ];
        // SAFETY: the child only makes raw syscalls and exits with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: plain prctl/syscall/_exit calls in the child.
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let ok = install(&prog, 0).is_ok();
                let r = libc::syscall(libc::SYS_getppid);
                let e = *libc::__errno_location();
                libc::_exit(if ok && r == -1 && e == 77 { 0 } else { 1 });
            }
        }
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        assert!(
            libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
            "status {st:#x}"
        );
    }
}

//! Every `unsafe` block and raw syscall of ruse lives under `sys/` (DESIGN.md habit 2).
//!
//! Wrappers are thin: they convert C return conventions to `io::Result` and own the fds they
//! create (`OwnedFd`). Callers add context. Each `unsafe` block states why it is sound.
#![allow(unsafe_code)]

pub mod bpf;
pub mod fs;
pub mod mount;
pub mod notify;
pub mod process;
pub mod seccomp;
pub mod socket;

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Converts a C-style `-1 + errno` result into `io::Result`.
pub(crate) fn cvt<T: PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like `cvt`, but retries on EINTR.
pub(crate) fn cvt_retry<T: PartialEq + From<i8>>(mut f: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A path as a C string; a NUL byte inside is an error, never a panic (CVE-2021-43784 class).
pub fn cstr(p: impl AsRef<Path>) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_ref().as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Takes ownership of a raw fd returned by a syscall.
pub(crate) fn owned(fd: i64) -> OwnedFd {
    // SAFETY: callers pass only fds a syscall just returned to us, which nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// Takes ownership of an fd number handed down by our parent (argv or the init config),
/// after checking that it is open.
pub fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD has no memory effects; it only tells whether `fd` is open.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    if fd < 3 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the fd is open, and our parent passed it for this process alone to own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

//! Kernel notification fds for `events`: an eventfd for v1 memory OOM notifications
//! (`cgroup.event_control`) and inotify for v2's `memory.events`.

use super::{cstr, cvt, owned};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: integer arguments; the result is a new fd we own.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    Ok(owned(fd as i64))
}

/// Reads and resets an eventfd counter; 0 when nothing was signalled.
pub fn eventfd_take(fd: BorrowedFd) -> io::Result<u64> {
    let mut v = [0u8; 8];
    // SAFETY: `v` is a writable 8-byte buffer, the size an eventfd read needs.
    match cvt(unsafe { libc::read(fd.as_raw_fd(), v.as_mut_ptr().cast(), v.len()) }) {
        Ok(_) => Ok(u64::from_ne_bytes(v)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}

/// An inotify fd watching `path` for modification.
pub fn inotify_modify(path: &Path) -> io::Result<OwnedFd> {
    // SAFETY: flag arguments only; the result is a new fd we own.
    let fd =
        owned(cvt(unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) })? as i64);
    let c = cstr(path)?;
    // SAFETY: valid fd and C string.
    cvt(unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) })?;
    Ok(fd)
}

/// Discards the queued inotify events (the file is re-read instead).
pub fn inotify_drain(fd: BorrowedFd) {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: `buf` is a writable buffer of its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
    }
}

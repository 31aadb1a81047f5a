//! File-descriptor based filesystem syscalls: `openat2` resolution, `*at` creation calls,
//! locks, fd hygiene and the sealed memfd copy of the runtime binary.

use super::{cstr, cvt, cvt_retry, owned};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(2)`: the kernel resolves `path` under `dir` with `resolve` restrictions, so a
/// symlink in a hostile rootfs can never lead outside it, even while it races.
pub fn openat2(
    dir: BorrowedFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    let call = || {
        cvt_retry(|| {
            // SAFETY: `c` is a valid C string and `how` a valid open_how of the size we pass.
            unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    dir.as_raw_fd(),
                    c.as_ptr(),
                    &how as *const OpenHow,
                    std::mem::size_of::<OpenHow>(),
                )
            }
        })
    };
    // With RESOLVE_IN_ROOT/BENEATH the kernel answers EAGAIN when any rename or mount on the
    // system raced with a `..` step, since it then cannot prove the walk stayed inside; the
    // documented answer is to retry. A busy host (other containers mounting) makes it common.
    let mut tries = 0;
    loop {
        match call() {
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < 128 => tries += 1,
            r => return r.map(owned),
        }
    }
}

pub fn mkdirat(dir: BorrowedFd, name: &Path, mode: u32) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid fd and C string.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode) }).map(drop)
}

pub fn mknodat(dir: BorrowedFd, name: &Path, mode: u32, dev: u64) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid fd and C string.
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), mode, dev) }).map(drop)
}

pub fn symlinkat(target: &Path, dir: BorrowedFd, name: &Path) -> io::Result<()> {
    let (t, n) = (cstr(target)?, cstr(name)?);
    // SAFETY: valid fd and C strings.
    cvt(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), n.as_ptr()) }).map(drop)
}

/// The target of the symlink `name` in `dir`; EINVAL when it is not a symlink.
pub fn readlinkat(dir: BorrowedFd, name: &Path) -> io::Result<std::path::PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid fd and C string; `buf` is writable for the length passed.
    let n = cvt(unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
        )
    })?;
    buf.truncate(n as usize);
    Ok(std::ffi::OsString::from_vec(buf).into())
}

/// Creates an empty regular file `name` in `dir` without following a symlink at `name`.
pub fn create_file_at(dir: BorrowedFd, name: &Path, mode: u32) -> io::Result<()> {
    let c = cstr(name)?;
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_WRONLY;
    // SAFETY: valid fd and C string; the returned fd is owned and closed at once.
    let fd = cvt(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags, mode) })?;
    drop(owned(fd as i64));
    Ok(())
}

pub fn unlinkat(dir: BorrowedFd, name: &Path, flags: i32) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid fd and C string.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) }).map(drop)
}

/// `fchownat(fd, "", …, AT_EMPTY_PATH)`: changes the very inode `fd` refers to (O_PATH works).
pub fn fchown_fd(fd: BorrowedFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid fd and a static empty C string.
    cvt(unsafe { libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH) })
        .map(drop)
}

/// `openat(2)` relative to `dir`; callers pass O_NOFOLLOW where a symlink must not be followed.
pub fn openat(dir: BorrowedFd, name: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    let fd = cvt_retry(|| {
        // SAFETY: valid fd and C string; the returned fd is owned by the caller.
        unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC, mode) }
    })?;
    Ok(owned(fd as i64))
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: a symlink is described, not followed.
pub fn lstatat(dir: BorrowedFd, name: &Path) -> io::Result<libc::stat> {
    let c = cstr(name)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: valid fd and C string; `st` is a writable stat buffer.
    cvt(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat succeeded, so the buffer is initialised.
    Ok(unsafe { st.assume_init() })
}

/// The names in the directory `dir` refers to (an O_PATH fd works), without `.` and `..`.
pub fn dir_entries(dir: BorrowedFd) -> io::Result<Vec<std::ffi::OsString>> {
    use std::os::fd::IntoRawFd;
    use std::os::unix::ffi::OsStrExt;
    let fd = openat(dir, Path::new("."), libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` is an open directory fd that we own; fdopendir takes it over.
    let d = unsafe { libc::fdopendir(raw) };
    if d.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `raw` is still ours to close.
        unsafe { libc::close(raw) };
        return Err(e);
    }
    let mut names = Vec::new();
    loop {
        // SAFETY: `d` is a valid DIR stream; errno is cleared to tell the end from an error.
        let ent = unsafe {
            *libc::__errno_location() = 0;
            libc::readdir64(d)
        };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: `d` is valid and closed exactly once (this also closes `raw`).
            unsafe { libc::closedir(d) };
            return match e.raw_os_error() {
                Some(0) | None => Ok(names),
                _ => Err(e),
            };
        }
        // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) };
        if !matches!(name.to_bytes(), b"." | b"..") {
            names.push(std::ffi::OsStr::from_bytes(name.to_bytes()).to_os_string());
        }
    }
}

/// `fchmodat(fd, "", mode, AT_EMPTY_PATH)` would need Linux 6.6; an fd opened for reading or
/// as a directory takes plain `fchmod`.
pub fn fchmod(fd: BorrowedFd, mode: u32) -> io::Result<()> {
    // SAFETY: valid fd.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

/// Changes the owner of `name` in `dir` itself, not of what a symlink there points to.
pub fn lchownat(dir: BorrowedFd, name: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid fd and C string.
    cvt(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            c.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// Sets the access and modification times of what `fd` refers to from `st`.
pub fn set_times(fd: BorrowedFd, st: &libc::stat) -> io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec,
        },
        libc::timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec,
        },
    ];
    // SAFETY: valid fd and a two-element timespec array.
    cvt(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) }).map(drop)
}

/// `renameat2(RENAME_NOREPLACE)`: fails with EEXIST instead of replacing `to`.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: valid C strings; AT_FDCWD as both directory fds.
    cvt(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    })
    .map(drop)
}

pub fn fstat(fd: BorrowedFd) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `st` is a writable stat buffer.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so the buffer is initialised.
    Ok(unsafe { st.assume_init() })
}

pub fn fstatfs_type(fd: BorrowedFd) -> io::Result<i64> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `st` is a writable statfs buffer.
    cvt(unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstatfs succeeded, so the buffer is initialised.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // f_type is not i64 on every target
    Ok(st.f_type as i64)
}

pub fn flock(fd: BorrowedFd, exclusive: bool) -> io::Result<()> {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    // SAFETY: valid fd.
    cvt_retry(|| unsafe { libc::flock(fd.as_raw_fd(), op) }).map(drop)
}

/// A non-blocking exclusive `flock`: false when someone else holds a lock.
pub fn try_lock(fd: BorrowedFd) -> io::Result<bool> {
    // SAFETY: valid fd.
    match cvt_retry(|| unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD on an fd number have no memory effects.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    let new = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, new) }).map(drop)
}

/// Marks every fd from `first` up close-on-exec, so nothing the runtime opened, or inherited
/// by accident, survives into the container (CVE-2024-21626).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: close_range only changes fd flags.
    cvt(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) })
        .map(drop)
}

/// Makes a sealed, anonymous copy of the running binary (CVE-2019-5736): a process in the
/// container that reaches `/proc/<init>/exe` finds a memfd it cannot write to.
pub fn sealed_self_copy() -> io::Result<OwnedFd> {
    let src = File::open("/proc/self/exe")?;
    // SAFETY: static C string name; flags are valid memfd_create flags.
    let fd = cvt(unsafe {
        libc::memfd_create(
            c"ruse".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    })?;
    let memfd = owned(fd as i64);
    let len = src.metadata()?.len() as usize;
    let mut left = len;
    while left > 0 {
        // SAFETY: both fds are valid; null offsets use and advance the file positions.
        let n = cvt(unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                src.as_raw_fd(),
                std::ptr::null_mut(),
                left,
            )
        })?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short copy of /proc/self/exe",
            ));
        }
        left -= n as usize;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on our own memfd.
    cvt(unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) })?;
    Ok(memfd)
}

/// Sets the file mode creation mask; returns the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask) }
}

pub fn chroot(path: &Path) -> io::Result<()> {
    let c = cstr(path)?;
    // SAFETY: valid C string.
    cvt(unsafe { libc::chroot(c.as_ptr()) }).map(drop)
}

pub fn fchdir(fd: BorrowedFd) -> io::Result<()> {
    // SAFETY: valid fd.
    cvt(unsafe { libc::fchdir(fd.as_raw_fd()) }).map(drop)
}

/// AT_FDCWD as a borrowed fd, for `*at` calls relative to the working directory.
pub fn cwd() -> BorrowedFd<'static> {
    // SAFETY: AT_FDCWD (-100) is never a real fd and is accepted by every *at syscall.
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD has no memory effects.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// True when this process may write `path` (faccessat with AT_EACCESS: the effective ids, as
/// the kernel will check them on open).
pub fn can_write(path: &Path) -> bool {
    let Ok(c) = cstr(path) else { return false };
    // SAFETY: valid C string; faccessat has no memory effects.
    unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::W_OK, libc::AT_EACCESS) == 0 }
}

//! The mount API: new-style (`fsopen`/`fsmount`/`open_tree`/`move_mount`/`mount_setattr`),
//! which works on fds and so never resolves a path inside the hostile rootfs, plus the few
//! classic `mount(2)` calls still needed for propagation of whole trees and `MS_MOVE`.

use super::{cstr, cvt, owned};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

pub const OPEN_TREE_CLONE: u32 = 1;
pub const AT_RECURSIVE: u32 = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;
const FSOPEN_CLOEXEC: u32 = 1;
const FSMOUNT_CLOEXEC: u32 = 1;

pub const MOUNT_ATTR_RDONLY: u64 = 0x01;
pub const MOUNT_ATTR_NOSUID: u64 = 0x02;
pub const MOUNT_ATTR_NODEV: u64 = 0x04;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x08;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x00;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

#[repr(C)]
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// `open_tree(OPEN_TREE_CLONE)`: a detached copy of the mount at `fd` (or below `dir`/`path`).
pub fn open_tree(dir: BorrowedFd, path: &Path, flags: u32) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    let mut f = flags | libc::O_CLOEXEC as u32;
    if path.as_os_str().is_empty() {
        f |= libc::AT_EMPTY_PATH as u32;
    }
    // SAFETY: valid fd and C string.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_open_tree, dir.as_raw_fd(), c.as_ptr(), f) })?;
    Ok(owned(fd))
}

/// Attaches the detached mount `from` onto the object `to` refers to.
pub fn move_mount(from: BorrowedFd, to: BorrowedFd) -> io::Result<()> {
    // SAFETY: valid fds and static empty C strings.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}

pub fn mount_setattr(fd: BorrowedFd, recursive: bool, attr: &MountAttr) -> io::Result<()> {
    let flags = libc::AT_EMPTY_PATH as u32 | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: `attr` is a valid mount_attr of the size we pass.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// A filesystem context being configured (`fsopen`), turned into a detached mount by `mount`.
pub struct FsContext(OwnedFd);

impl FsContext {
    pub fn open(fstype: &str) -> io::Result<Self> {
        let c = cstr(fstype)?;
        // SAFETY: valid C string.
        let fd = cvt(unsafe { libc::syscall(libc::SYS_fsopen, c.as_ptr(), FSOPEN_CLOEXEC) })?;
        Ok(FsContext(owned(fd)))
    }

    /// One `key[=value]` data option; a key without value is a flag.
    pub fn set(&self, key: &str, value: Option<&str>) -> io::Result<()> {
        let k = cstr(key)?;
        let v = value.map(cstr).transpose()?;
        let (cmd, vp) = match &v {
            Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
            None => (FSCONFIG_SET_FLAG, std::ptr::null()),
        };
        // SAFETY: valid fd, C strings (or null for flags, as the ABI requires).
        cvt(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.0.as_raw_fd(),
                cmd,
                k.as_ptr(),
                vp,
                0,
            )
        })
        .map(drop)
    }

    /// Creates the superblock and returns a detached mount of it with `attr` flags.
    pub fn mount(self, attr: u64) -> io::Result<OwnedFd> {
        let null: *const libc::c_char = std::ptr::null();
        // SAFETY: valid fd; CMD_CREATE takes no key or value.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.0.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                null,
                null,
                0,
            )
        })?;
        // SAFETY: valid fd and flags.
        let fd = cvt(unsafe {
            libc::syscall(libc::SYS_fsmount, self.0.as_raw_fd(), FSMOUNT_CLOEXEC, attr)
        })?;
        Ok(owned(fd))
    }
}

/// Classic mount(2), used only with paths the runtime controls (`/`, `.`) or fd magic links.
pub fn mount(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: u64,
    data: Option<&str>,
) -> io::Result<()> {
    let s = src.map(cstr).transpose()?;
    let t = cstr(target)?;
    let f = fstype.map(cstr).transpose()?;
    let d = data.map(cstr).transpose()?;
    let p = |c: &Option<std::ffi::CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: all pointers are valid C strings or null, as mount(2) accepts.
    cvt(unsafe {
        libc::mount(
            p(&s),
            t.as_ptr(),
            p(&f),
            flags as libc::c_ulong,
            p(&d) as *const libc::c_void,
        )
    })
    .map(drop)
}

pub fn umount_detach(target: &Path) -> io::Result<()> {
    let t = cstr(target)?;
    // SAFETY: valid C string.
    cvt(unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) }).map(drop)
}

pub fn pivot_root_dot() -> io::Result<()> {
    // SAFETY: static C strings; "." and "." is the documented way to stack old root under new.
    cvt(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) }).map(drop)
}

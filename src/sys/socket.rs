//! Unix sockets: the parent↔init socketpair, SCM_RIGHTS fd passing, and the listening
//! `exec.sock` that `start` connects to.

use super::{cstr, cvt, cvt_retry, owned};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

/// SO_NETNS_COOKIE (asm-generic, which x86 and arm use; Linux 5.14).
const SO_NETNS_COOKIE: i32 = 71;

/// The cookie of the caller's network namespace: unique among the namespaces of this boot
/// (never reused, unlike its nsfs inode number).
pub fn netns_cookie() -> io::Result<u64> {
    // SAFETY: socket(2) with constant arguments; the fd is owned below.
    let fd = cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    let fd = owned(fd as i64);
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `cookie` and `len` are valid for writes of the sizes given.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            &mut cookie as *mut u64 as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(cookie)
}

/// A SOCK_SEQPACKET pair: message boundaries are kept, so each message is one read.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    Ok((owned(fds[0] as i64), owned(fds[1] as i64)))
}

/// Sends one message, with `fds` attached as SCM_RIGHTS when not empty.
pub fn send(sock: BorrowedFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) } as usize;
    let mut cbuf = vec![0u8; if fds.is_empty() { 0 } else { space }];
    // SAFETY: an all-zero msghdr is valid; fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points to a buffer of CMSG_SPACE bytes, so the first header and
        // its data (the fd array) fit.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(cmsg) as *mut RawFd,
                fds.len(),
            );
        }
    }
    // SAFETY: `msg` references live buffers.
    let n = cvt_retry(|| unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })?;
    if n as usize != data.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short send"));
    }
    Ok(())
}

/// Receives one whole message (any size) and the fds attached to it. An empty Vec with no
/// fds means the peer closed its end.
pub fn recv(sock: BorrowedFd) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    // MSG_PEEK|MSG_TRUNC returns the real length of the next datagram without consuming it.
    // SAFETY: a zero-length read into a null buffer is valid with MSG_TRUNC.
    let len = cvt_retry(|| unsafe {
        libc::recv(
            sock.as_raw_fd(),
            std::ptr::null_mut(),
            0,
            libc::MSG_PEEK | libc::MSG_TRUNC,
        )
    })? as usize;
    let mut data = vec![0u8; len.max(1)];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SCM_MAX_FD: as many as one message can carry (the idmapped mount trees of a config).
    const MAX_FDS: usize = 253;
    // SAFETY: pure size computation.
    let space =
        unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: an all-zero msghdr is valid; fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    // SAFETY: `msg` references live, writable buffers.
    let n =
        cvt_retry(|| unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) })?
            as usize;
    data.truncate(n);
    let mut fds = Vec::new();
    // SAFETY: walking the control buffer the kernel filled, with the CMSG_* accessors.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let p = libc::CMSG_DATA(cmsg) as *const RawFd;
                for i in 0..bytes / std::mem::size_of::<RawFd>() {
                    fds.push(owned(std::ptr::read_unaligned(p.add(i)) as i64));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((data, fds))
}

fn sockaddr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    let c = cstr(path)?;
    let bytes = c.as_bytes_with_nul();
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() > addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path longer than 107 bytes",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (i, b) in bytes.iter().enumerate() {
        addr.sun_path[i] = *b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len();
    Ok((addr, len as libc::socklen_t))
}

fn unix_socket(kind: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation.
    Ok(owned(
        cvt(unsafe { libc::socket(libc::AF_UNIX, kind | libc::SOCK_CLOEXEC, 0) })? as i64,
    ))
}

/// A listening SOCK_SEQPACKET socket bound at `path`.
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    let (addr, len) = sockaddr(path)?;
    let s = unix_socket(libc::SOCK_SEQPACKET)?;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
    cvt(unsafe {
        libc::bind(
            s.as_raw_fd(),
            &addr as *const _ as *const libc::sockaddr,
            len,
        )
    })?;
    // SAFETY: valid socket.
    cvt(unsafe { libc::listen(s.as_raw_fd(), 1) })?;
    Ok(s)
}

/// Connects to a unix socket at `path` with the given type (SOCK_STREAM, SOCK_SEQPACKET).
pub fn connect(path: &Path, kind: i32) -> io::Result<OwnedFd> {
    let (addr, len) = sockaddr(path)?;
    let s = unix_socket(kind)?;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
    cvt_retry(|| unsafe {
        libc::connect(
            s.as_raw_fd(),
            &addr as *const _ as *const libc::sockaddr,
            len,
        )
    })?;
    Ok(s)
}

pub fn accept(listener: BorrowedFd) -> io::Result<OwnedFd> {
    // SAFETY: null address pointers are allowed.
    let fd = cvt_retry(|| unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    })?;
    Ok(owned(fd as i64))
}

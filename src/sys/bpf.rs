//! `bpf(2)` for cgroup v2 device programs: load a BPF_PROG_TYPE_CGROUP_DEVICE program, list
//! the ones attached to a cgroup directory, and attach (replacing) or detach them (runtime
//! process, host namespaces).

use super::{cvt, owned};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

const BPF_PROG_LOAD: i64 = 5;
const BPF_PROG_ATTACH: i64 = 8;
const BPF_PROG_DETACH: i64 = 9;
const BPF_PROG_GET_FD_BY_ID: i64 = 13;
const BPF_PROG_QUERY: i64 = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs of the cgroup and of its ancestors all run; any may deny.
const BPF_F_ALLOW_MULTI: u32 = 2;
/// With ALLOW_MULTI: swap `replace_bpf_fd` for the new program in one step (Linux 5.6).
const BPF_F_REPLACE: u32 = 4;

/// The BPF_PROG_LOAD part of `union bpf_attr` (fields up to expected_attach_type).
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The BPF_PROG_ATTACH part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The BPF_PROG_QUERY part of `union bpf_attr`. Kernels 6.17 and later write `revision`
/// whatever size is passed (as runc notes), so the struct reaches it.
#[repr(C)]
#[derive(Default)]
struct ProgQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

/// The BPF_PROG_GET_FD_BY_ID part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: i64, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is a valid, initialised #[repr(C)] prefix of union bpf_attr whose size
    // we pass; the kernel reads (and for some commands writes) only within that size. The
    // buffers its pointer fields name (instructions, license, log, program ids) belong to
    // the caller's frame, outlive this call, and are as large as the lengths beside them.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>(),
        )
    })
}

/// Loads a cgroup device program (raw 8-byte instructions). On a verifier rejection the
/// error carries the verifier's last log line.
pub fn load_device_program(insns: &[u64], name: &str) -> io::Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    for (d, s) in attr.prog_name.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(e)
            if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::EACCES) =>
        {
            // Load again with a log buffer, only to explain the refusal.
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr) {
                return Ok(owned(fd));
            }
            let text = String::from_utf8_lossy(&log);
            let last = text
                .trim_end_matches('\0')
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty());
            Err(io::Error::new(
                e.kind(),
                format!("{e}: verifier: {}", last.unwrap_or("no log")),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Attaches `prog` to the cgroup directory open at `cgroup`; with `replace`, in place of
/// that attached program, atomically.
pub fn attach_device_program(
    cgroup: BorrowedFd,
    prog: BorrowedFd,
    replace: Option<BorrowedFd>,
) -> io::Result<()> {
    let mut attr = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI | replace.map_or(0, |_| BPF_F_REPLACE),
        replace_bpf_fd: replace.map_or(0, |r| r.as_raw_fd() as u32),
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// Detaches the attached device program `prog` from the cgroup directory open at `cgroup`.
pub fn detach_device_program(cgroup: BorrowedFd, prog: BorrowedFd) -> io::Result<()> {
    let mut attr = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// The ids of the device programs attached to the cgroup directory open at `cgroup` itself
/// (not those inherited from its ancestors).
pub fn device_program_ids(cgroup: BorrowedFd) -> io::Result<Vec<u32>> {
    // A cgroup holds at most 64 programs per attach type; ENOSPC says how many there are.
    let mut cap = 64usize;
    for _ in 0..10 {
        let mut ids = vec![0u32; cap];
        let mut attr = ProgQuery {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: cap as u32,
            ..Default::default()
        };
        match bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate((attr.prog_cnt as usize).min(cap));
                return Ok(ids);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => cap = attr.prog_cnt as usize,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "the attached device programs kept changing while being listed",
    ))
}

/// An fd for the program with id `id`.
pub fn device_program_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdById {
        prog_id: id,
        ..Default::default()
    };
    bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).map(owned)
}

//! How many cgroup v2 device programs are attached to a cgroup directory: one BPF_PROG_QUERY,
//! read independently of ruse's own code (no bpftool needed). The only `unsafe` of the tests:
//! there is no file under /sys or /proc that lists a cgroup's BPF programs.

use std::os::fd::AsRawFd;
use std::path::Path;

const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_CGROUP_DEVICE: u32 = 6;

/// `union bpf_attr` for BPF_PROG_QUERY, up to `revision`, which kernels ≥ 6.17 write whatever
/// size is passed.
#[repr(C)]
#[derive(Default)]
struct Query {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

/// The number of BPF_CGROUP_DEVICE programs attached to `dir` itself.
pub fn device_programs(dir: &Path) -> usize {
    let f = std::fs::File::open(dir).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
    let mut q = Query {
        target_fd: f.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: `q` is a live, zero-initialised #[repr(C)] prefix of union bpf_attr whose size
    // is passed; with a null prog_ids the kernel only writes prog_cnt (and the fields after it)
    // inside `q`.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_QUERY,
            &mut q as *mut Query,
            std::mem::size_of::<Query>(),
        )
    };
    assert_eq!(
        r,
        0,
        "BPF_PROG_QUERY {}: {}",
        dir.display(),
        std::io::Error::last_os_error()
    );
    q.prog_cnt as usize
}

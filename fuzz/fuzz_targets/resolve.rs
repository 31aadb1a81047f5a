//! In-root path resolution (`rootfs::resolve`): every open and every mkdir of a mount
//! destination, device or cwd goes through it. A fuzzed path is resolved against a small
//! rootfs full of hostile symlinks (absolute, `..`-heavy, to `/`, to a directory outside,
//! loops, dangling); whatever comes back must be inside the root, nothing may appear outside
//! it, and nothing may panic.
//!
//! Input: the first byte picks the operation (and whether the path is cleaned first as
//! mount destinations are), the rest is the path. Lookups run on one fixture; mkdir_all and
//! ensure create, so they run on a second copy, put back as it was after each input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ruse::rootfs::{plan::clean_dest, resolve};
use std::ffi::OsStr;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

struct Fixture {
    /// The temp dir: `root/`, `scratch/` and `outside/`, nothing else.
    base: PathBuf,
    /// For lookups: never changes.
    root: PathBuf,
    /// For creations: reset after each.
    scratch: PathBuf,
    outside: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // Canonical, so it compares with what /proc/self/fd shows (TMPDIR may be a symlink).
        let tmp = fs::canonicalize(std::env::temp_dir()).unwrap();
        let base = tmp.join(format!("ruse-fuzz-resolve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let outside = base.join("outside");
        fs::create_dir_all(&outside).unwrap();
        let (root, scratch) = (base.join("root"), base.join("scratch"));
        populate(&root, &outside);
        populate(&scratch, &outside);
        Fixture {
            base,
            root,
            scratch,
            outside,
        }
    })
}

const DIRS: &[&str] = &["", "dir", "dir/sub", "etc", "run", "proc"];
const FILES: &[&str] = &["file", "dir/file"];

/// A rootfs whose symlinks all try to lead out of it.
fn populate(root: &Path, outside: &Path) {
    for d in DIRS {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in FILES {
        fs::write(root.join(f), b"x").unwrap();
    }
    for (name, target) in links(outside) {
        symlink(target, root.join(name)).unwrap();
    }
}

fn links(outside: &Path) -> Vec<(&'static str, PathBuf)> {
    let mut links = vec![
        ("abs", outside.to_path_buf()),
        ("absdir", outside.join("sub")),
    ];
    for (name, target) in [
        ("slash", "/"),
        ("etcabs", "/etc"),
        ("up", "../../../../../../../../.."),
        ("upout", "../outside"),
        ("upupout", "../../../../../../../../../outside"),
        ("dir/back", "../.."),
        ("dir/sub/backout", "../../../outside/x"),
        ("dir/sub/rootup", "/../../.."),
        ("loop", "loop"),
        ("loopa", "loopb"),
        ("loopb", "loopa"),
        ("dangling", "/nonexistent/deeper"),
        ("danglingrel", "../../missing/y"),
        ("varrun", "/run"),
        ("self", "/proc/self/root"),
        ("tofile", "/file"),
        ("viafile", "file/x"),
    ] {
        links.push((name, PathBuf::from(target)));
    }
    links
}

/// Removes whatever an input created in `scratch`: every entry that `populate` did not make.
fn reset(scratch: &Path, outside: &Path) {
    let links = links(outside);
    let known = |rel: &Path| {
        DIRS.iter().chain(FILES).any(|k| rel == Path::new(k))
            || links.iter().any(|(l, _)| rel == Path::new(l))
    };
    for d in DIRS {
        for e in fs::read_dir(scratch.join(d)).unwrap() {
            let e = e.unwrap();
            let rel = Path::new(d).join(e.file_name());
            if known(&rel) {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                fs::remove_dir_all(e.path()).unwrap();
            } else {
                fs::remove_file(e.path()).unwrap();
            }
        }
    }
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())).unwrap()
}

fn assert_inside(fd: &OwnedFd, root: &Path, path: &Path) {
    let got = fd_path(fd);
    assert!(
        got.starts_with(root),
        "{path:?} resolved to {} outside {}",
        got.display(),
        root.display()
    );
}

fn assert_nothing_outside(f: &Fixture, path: &Path) {
    assert!(
        fs::read_dir(&f.outside).unwrap().next().is_none(),
        "{path:?}: something appeared in {}",
        f.outside.display()
    );
    for e in fs::read_dir(&f.base).unwrap() {
        let p = e.unwrap().path();
        assert!(
            p == f.root || p == f.outside || p == f.scratch,
            "{path:?}: {} appeared beside the root",
            p.display()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&op, raw)) = data.split_first() else {
        return;
    };
    let raw = Path::new(OsStr::from_bytes(raw));
    let cleaned;
    let path = if op & 0x80 != 0 {
        cleaned = clean_dest(raw);
        assert!(
            cleaned
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_))),
            "{raw:?} cleaned to {cleaned:?}"
        );
        cleaned.as_path()
    } else {
        raw
    };
    let f = fixture();
    let root_dir = fs::File::open(&f.root).unwrap();
    let r = root_dir.as_fd();
    match op & 0x7 {
        0 => check(resolve::open_path(r, path).ok(), &f.root, path),
        1 => check(
            resolve::open_in_root(r, path, libc::O_RDONLY).ok(),
            &f.root,
            path,
        ),
        2 => check(
            resolve::open_in_root(r, path, libc::O_RDONLY | libc::O_DIRECTORY).ok(),
            &f.root,
            path,
        ),
        3 => check(
            resolve::open_nofollow(r, path, libc::O_PATH).ok(),
            &f.root,
            path,
        ),
        n => {
            // mkdir_all, or ensure as a directory or a file: on the scratch copy.
            let s = fs::File::open(&f.scratch).unwrap();
            let got = match n {
                4 | 7 => resolve::mkdir_all(s.as_fd(), path, 0o755),
                5 => resolve::ensure(s.as_fd(), path, false),
                _ => resolve::ensure(s.as_fd(), path, true),
            };
            if let Ok(fd) = &got {
                assert_inside(fd, &f.scratch, path);
            }
            drop(got);
            assert_nothing_outside(f, path);
            reset(&f.scratch, &f.outside);
        }
    }
});

fn check(fd: Option<OwnedFd>, root: &Path, path: &Path) {
    if let Some(fd) = fd {
        assert_inside(&fd, root, path);
    }
}

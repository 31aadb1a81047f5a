//! `config.json` → `bundle::load`, the very path `ruse create` and `ruse run` take before
//! anything on the system is touched: parse (oci-spec, serde), the root checks, every
//! validation, the rootless checks and the seccomp compilation. Then the pure plans create
//! makes from an accepted config (namespaces, mounts), and the rootless checks as an
//! unprivileged caller meets them. Nothing here writes outside its own temp bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One bundle per process, with an empty `rootfs/`; config.json is rewritten for each input.
fn bundle() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ruse-fuzz-config-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs")).expect("make the fuzz bundle");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = bundle();
    std::fs::write(dir.join("config.json"), data).expect("write config.json");
    let loaded = ruse::bundle::load(dir);
    if let Ok(b) = &loaded {
        assert!(
            b.rootfs.is_dir(),
            "accepted rootfs {} is no directory",
            b.rootfs.display()
        );
        let _ = ruse::namespaces::plan(&b.spec);
        for (i, m) in b.spec.mounts().iter().flatten().enumerate() {
            if let Ok(op) = ruse::rootfs::plan::op(i, m, &b.dir) {
                assert!(
                    op.dest.is_relative(),
                    "mounts[{i}] planned at {:?}",
                    op.dest
                );
                assert!(
                    op.dest
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_))),
                    "mounts[{i}] planned at {:?}",
                    op.dest
                );
            }
        }
        // The checks an unprivileged caller meets after the same validation (root's `load`
        // skips most of them).
        let caller = ruse::userns::Caller {
            euid: 1000,
            egid: 1000,
            name: "fuzz".into(),
        };
        let _ = ruse::rootless::check(&b.spec, &caller);
    }
});

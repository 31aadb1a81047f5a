//! config.md "Mounts" and "Linux mount options": order, destinations, bind sources, the
//! option table (flags, atime family, superblock flags, propagation, recursive `r*` options,
//! filesystem data), read back from `/proc/self/mountinfo` inside the container and from
//! `/proc/<pid>/mountinfo` on the host.

use oci_conformance::host::{self, mount_at, parse_mountinfo, MountInfo};
use oci_conformance::{assert_fails, assert_ok, base_config, require, rt, sh_config, Test};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

oci_conformance::init!();

fn add_mount(cfg: &mut Value, m: Value) {
    cfg["mounts"].as_array_mut().unwrap().push(m);
}

fn tmpfs(dst: &str, opts: &[&str]) -> Value {
    json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": opts})
}

fn bind(dst: &str, src: &Path, opts: &[&str]) -> Value {
    json!({"destination": dst, "type": "none", "source": src, "options": opts})
}

/// Runs `script` (which should print /proc/self/mountinfo) with `mounts` added.
fn mountinfo_with(t: &Test, mounts: Vec<Value>, script: &str) -> (Vec<MountInfo>, String) {
    let mut cfg = sh_config(script);
    for m in mounts {
        add_mount(&mut cfg, m);
    }
    let out = t.run(&cfg);
    assert_ok!(out);
    (parse_mountinfo(&out.stdout), out.stdout)
}

fn at<'a>(mi: &'a [MountInfo], p: &str) -> &'a MountInfo {
    mount_at(mi, p).unwrap_or_else(|| panic!("no mount at {p}: {mi:#?}"))
}

/// A host directory `src` with a file `top` and a tmpfs submount `src/sub` holding `inner`,
/// remounted with `flags` (e.g. MS_RDONLY|MS_NOSUID): the tree recursive options act on.
fn host_tree(t: &Test, flags: libc::c_ulong) -> PathBuf {
    let src = t.dir.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("top"), "top").unwrap();
    let sub = src.join("sub");
    t.host_mount("tmpfs", &sub, "tmpfs", 0);
    std::fs::write(sub.join("inner"), "inner").unwrap();
    std::fs::write(sub.join("link-target"), "target").unwrap();
    std::os::unix::fs::symlink("link-target", sub.join("link")).unwrap();
    if flags != 0 {
        oci_conformance::test::mount("", &sub, "", libc::MS_REMOUNT | libc::MS_BIND | flags)
            .unwrap();
    }
    src
}

// config.md "Mounts": "The runtime MUST mount entries in the listed order." A bind on a
// subdirectory of an earlier tmpfs sits on it; two mounts on one destination stack in order.
#[test]
fn mounts_in_listed_order() {
    let Some(t) = Test::new() else { return };
    let dirs: Vec<PathBuf> = ["src", "first", "second"]
        .iter()
        .map(|d| {
            let p = t.dir.join(d);
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join(d), d).unwrap();
            p
        })
        .collect();
    let (mi, text) = mountinfo_with(
        &t,
        vec![
            tmpfs("/m", &[]),
            bind("/m/sub", &dirs[0], &["bind"]),
            bind("/same", &dirs[1], &["bind"]),
            bind("/same", &dirs[2], &["bind"]),
        ],
        "cat /proc/self/mountinfo; echo; ls /m/sub /same",
    );
    let m = at(&mi, "/m");
    let sub = at(&mi, "/m/sub");
    assert_eq!(sub.parent, m.id, "/m/sub is not mounted on /m:\n{text}");
    let same: Vec<&MountInfo> = mi.iter().filter(|x| x.mount_point == "/same").collect();
    assert_eq!(same.len(), 2, "{text}");
    assert_eq!(same[1].parent, same[0].id, "{text}");
    let listing = text.split_once("\n\n").unwrap().1;
    assert!(listing.contains("src"), "{text}");
    assert!(
        listing.contains("second") && !listing.contains("first"),
        "the last /same mount is not on top: {text}"
    );
}

// config.md "Mounts": "destination [...] it MAY be a relative path, in which case it MUST be
// interpreted as relative to "/"." (runtime-spec 1.2.0; before, paths had to be absolute)
#[test]
fn mount_destination_relative_to_root() {
    let Some(t) = Test::new() else { return };
    require!(
        t,
        rt().supports_spec("1.2.0"),
        "relative mount destinations need runtime-spec 1.2.0"
    );
    let mut cfg = sh_config("cat /proc/self/mountinfo");
    cfg["ociVersion"] = json!("1.2.0");
    add_mount(&mut cfg, tmpfs("relative/dest", &[]));
    let out = t.run(&cfg);
    assert_ok!(out);
    let mi = parse_mountinfo(&out.stdout);
    assert_eq!(at(&mi, "/relative/dest").fstype, "tmpfs");
}

// config.md "Mounts": "source [...] Path values for bind mounts are either absolute or relative
// to the bundle." The runtime runs from another directory.
#[test]
fn mount_bind_source_relative_to_bundle() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("cat /data/file");
    add_mount(
        &mut cfg,
        json!({"destination": "/data", "type": "none", "source": "volume", "options": ["rbind"]}),
    );
    let b = t.bundle(&cfg);
    std::fs::create_dir(b.join("volume")).unwrap();
    std::fs::write(b.join("volume/file"), "in-bundle").unwrap();
    let out = t.run_bundle(&b);
    assert_ok!(out);
    assert_eq!(out.stdout, "in-bundle");
}

// config.md "Mounts": "source [...] can also be a file or directory name for bind mounts".
#[test]
fn mount_bind_of_a_file() {
    let Some(t) = Test::new() else { return };
    let f = t.dir.join("host-file");
    std::fs::write(&f, "file-content").unwrap();
    let (mi, text) = mountinfo_with(
        &t,
        vec![bind("/etc/bound-file", &f, &["bind", "ro"])],
        "cat /proc/self/mountinfo; cat /etc/bound-file",
    );
    assert!(at(&mi, "/etc/bound-file").has("ro"), "{text}");
    assert!(text.ends_with("file-content"), "{text}");
}

// config.md "Linux mount options": `bind` (MUST) "Bind mount" — not recursive: a mount below
// the source is not carried along; `rbind` (MUST) "Recursive bind mount" carries it.
#[test]
fn mount_options_bind_and_rbind() {
    let Some(t) = Test::new() else { return };
    let src = host_tree(&t, 0);
    let (mi, text) = mountinfo_with(
        &t,
        vec![bind("/b", &src, &["bind"]), bind("/r", &src, &["rbind"])],
        "cat /proc/self/mountinfo; ls /b/sub; echo ---; ls /r/sub",
    );
    assert!(
        mount_at(&mi, "/b/sub").is_none(),
        "bind carried the submount:\n{text}"
    );
    assert_eq!(at(&mi, "/r/sub").fstype, "tmpfs", "{text}");
    let tail = text.split("---").nth(1).unwrap();
    assert!(tail.contains("inner"), "rbind lost the submount: {text}");
    assert!(
        !text.split("---").next().unwrap().contains("inner\n"),
        "{text}"
    );
}

// config.md "Linux mount options": `ro` (MUST) — and the host's mount of the source stays rw.
#[test]
fn mount_option_ro() {
    let Some(t) = Test::new() else { return };
    let src = t.dir.join("src");
    std::fs::create_dir(&src).unwrap();
    let (mi, text) = mountinfo_with(
        &t,
        vec![tmpfs("/t", &["ro"]), bind("/b", &src, &["bind", "ro"])],
        "cat /proc/self/mountinfo; touch /t/x /b/x 2>/dev/null && echo WROTE; true",
    );
    assert!(at(&mi, "/t").has("ro"), "{text}");
    assert!(at(&mi, "/b").has("ro"), "{text}");
    assert!(!text.contains("WROTE"), "{text}");
    std::fs::write(src.join("host-can-write"), "x").expect("the host's source became read-only");
}

// config.md "Linux mount options": `rw` (MUST).
#[test]
fn mount_option_rw() {
    let Some(t) = Test::new() else { return };
    let (mi, text) = mountinfo_with(
        &t,
        vec![tmpfs("/t", &["rw"])],
        "cat /proc/self/mountinfo; touch /t/x && echo WROTE",
    );
    assert!(at(&mi, "/t").has("rw"), "{text}");
    assert!(text.contains("WROTE"), "{text}");
}

// config.md "Linux mount options": `nosuid`, `nodev`, `noexec` (MUST); noexec refuses execve.
#[test]
fn mount_options_nosuid_nodev_noexec() {
    let Some(t) = Test::new() else { return };
    let (mi, text) = mountinfo_with(
        &t,
        vec![tmpfs("/t", &["nosuid", "nodev", "noexec"])],
        "cat /proc/self/mountinfo; cp /bin/busybox /t/busybox; /t/busybox true 2>/dev/null && echo EXECUTED; true",
    );
    let m = at(&mi, "/t");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(m.has(o), "{o} missing: {text}");
    }
    assert!(!text.contains("EXECUTED"), "{text}");
}

// config.md "Linux mount options": `suid`, `dev`, `exec` (MUST) — they undo the defaults of a
// tmpfs mounted by the runtime; exec lets a copied binary run.
#[test]
fn mount_options_suid_dev_exec() {
    let Some(t) = Test::new() else { return };
    let (mi, text) = mountinfo_with(
        &t,
        vec![tmpfs(
            "/t",
            &["nosuid", "nodev", "noexec", "suid", "dev", "exec"],
        )],
        "cat /proc/self/mountinfo; cp /bin/busybox /t/busybox; /t/busybox true && echo EXECUTED",
    );
    let m = at(&mi, "/t");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(!m.has(o), "{o} still set: {text}");
    }
    assert!(text.contains("EXECUTED"), "{text}");
}

// config.md "Linux mount options": `noatime`, `strictatime`, `relatime`, `nodiratime`,
// `atime`, `norelatime`, `nostrictatime`, `diratime` (MUST), as mount(8) defines them.
#[test]
fn mount_options_atime_family() {
    let Some(t) = Test::new() else { return };
    let (mi, text) = mountinfo_with(
        &t,
        vec![
            tmpfs("/noatime", &["noatime"]),
            tmpfs("/strictatime", &["strictatime"]),
            tmpfs("/relatime", &["relatime"]),
            tmpfs("/nodiratime", &["nodiratime"]),
            tmpfs("/atime", &["noatime", "atime"]),
            tmpfs("/norelatime", &["relatime", "norelatime"]),
            tmpfs("/nostrictatime", &["strictatime", "nostrictatime"]),
            tmpfs("/diratime", &["nodiratime", "diratime"]),
        ],
        "cat /proc/self/mountinfo",
    );
    let m = |p| at(&mi, p);
    assert!(m("/noatime").has("noatime"), "{text}");
    let strict = m("/strictatime");
    assert!(!strict.has("relatime") && !strict.has("noatime"), "{text}");
    assert!(m("/relatime").has("relatime"), "{text}");
    assert!(m("/nodiratime").has("nodiratime"), "{text}");
    assert!(!m("/atime").has("noatime"), "{text}");
    // `norelatime` only drops a relatime request: a new mount then gets the kernel's default
    // (relatime), as with mount(8); nothing observable to assert beyond the mount itself.
    assert!(m("/nostrictatime").has("relatime"), "{text}");
    assert!(!m("/diratime").has("nodiratime"), "{text}");
}

// config.md "Linux mount options": `sync`, `dirsync` (MUST), superblock flags shown in the
// super options of mountinfo; `async` (MUST) undoes `sync`.
#[test]
fn mount_options_sync_dirsync_async() {
    let Some(t) = Test::new() else { return };
    let (mi, text) = mountinfo_with(
        &t,
        vec![
            tmpfs("/sync", &["sync"]),
            tmpfs("/dirsync", &["dirsync"]),
            tmpfs("/async", &["sync", "async"]),
        ],
        "cat /proc/self/mountinfo",
    );
    assert!(at(&mi, "/sync").has_super("sync"), "{text}");
    assert!(at(&mi, "/dirsync").has_super("dirsync"), "{text}");
    assert!(!at(&mi, "/async").has_super("sync"), "{text}");
}

// config.md "Linux mount options": `lazytime`, `nolazytime` (MUST).
#[test]
fn mount_options_lazytime() {
    let Some(t) = Test::new() else { return };
    let (mi, text) = mountinfo_with(
        &t,
        vec![
            tmpfs("/lazy", &["lazytime"]),
            tmpfs("/notlazy", &["lazytime", "nolazytime"]),
        ],
        "cat /proc/self/mountinfo",
    );
    assert!(at(&mi, "/lazy").has_super("lazytime"), "{text}");
    assert!(!at(&mi, "/notlazy").has_super("lazytime"), "{text}");
}

// config.md "Linux mount options": `defaults`, `iversion`, `noiversion`, `silent`, `loud`
// (MUST) are accepted and leave an ordinary read-write mount (`defaults` is rw, suid, dev, exec).
#[test]
fn mount_options_defaults_iversion_silent_loud() {
    let Some(t) = Test::new() else { return };
    let (mi, text) = mountinfo_with(
        &t,
        vec![
            tmpfs("/defaults", &["defaults"]),
            tmpfs("/iversion", &["iversion"]),
            tmpfs("/noiversion", &["noiversion"]),
            tmpfs("/silent", &["silent"]),
            tmpfs("/loud", &["loud"]),
        ],
        "cat /proc/self/mountinfo",
    );
    for p in ["/defaults", "/iversion", "/noiversion", "/silent", "/loud"] {
        let m = at(&mi, p);
        assert!(m.has("rw"), "{p}: {text}");
        assert!(
            !m.has("nosuid") && !m.has("noexec") && !m.has("nodev"),
            "{p}: {text}"
        );
    }
}

// config.md "Linux mount options": "Runtimes SHOULD treat unknown options as filesystem-specific
// ones and pass those as a comma-separated string to the fifth (const void *data) argument of
// mount(2)." (tmpfs size= and mode=)
#[test]
fn mount_filesystem_specific_options_are_data() {
    let Some(t) = Test::new() else { return };
    let (mi, text) = mountinfo_with(
        &t,
        vec![tmpfs("/t", &["size=2m", "mode=0710", "nr_inodes=1000"])],
        "cat /proc/self/mountinfo; stat -c %a /t",
    );
    let m = at(&mi, "/t");
    assert!(m.has_super("size=2048k"), "{text}");
    assert!(m.has_super("nr_inodes=1000"), "{text}");
    assert!(text.trim_end().ends_with("710"), "{text}");
}

// config.md "Linux mount options": `nosymfollow` (SHOULD, kernel 5.10) / `symfollow`.
#[test]
fn mount_option_nosymfollow() {
    let Some(t) = Test::new() else { return };
    require!(
        t,
        rt().has_mount_option("nosymfollow"),
        "mount option nosymfollow not announced"
    );
    let src = t.dir.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("target"), "target").unwrap();
    std::os::unix::fs::symlink("target", src.join("link")).unwrap();
    let (mi, text) = mountinfo_with(
        &t,
        vec![bind("/ns", &src, &["bind", "nosymfollow"])],
        "cat /proc/self/mountinfo; cat /ns/link 2>/dev/null && echo FOLLOWED; true",
    );
    assert!(at(&mi, "/ns").has("nosymfollow"), "{text}");
    assert!(!text.contains("FOLLOWED"), "{text}");
}

/// The propagation tags of /data (a bind of a shared host directory with `opts`) and of its
/// submount /data/sub, seen from inside.
fn propagation(t: &Test, opts: &[&str]) -> (MountInfo, MountInfo, String) {
    let src = t.dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    t.shared_bind(&src);
    std::fs::create_dir_all(src.join("sub")).unwrap();
    t.host_mount("tmpfs", &src.join("sub"), "tmpfs", 0);
    let mut all = vec!["rbind"];
    all.extend_from_slice(opts);
    let (mi, text) = mountinfo_with(
        t,
        vec![bind("/data", &src, &all)],
        "cat /proc/self/mountinfo",
    );
    (at(&mi, "/data").clone(), at(&mi, "/data/sub").clone(), text)
}

// config.md "Linux mount options": `shared` (MUST) "Bind mount propagation".
#[test]
fn mount_option_shared() {
    let Some(t) = Test::new() else { return };
    let (top, _, text) = propagation(&t, &["shared"]);
    // Shared (a slave may be shared too: "shared:N master:M" is a shared mount).
    assert!(top.tag("shared:"), "{text}");
}

// config.md "Linux mount options": `slave` (MUST) "Bind mount propagation".
#[test]
fn mount_option_slave() {
    let Some(t) = Test::new() else { return };
    let (top, _, text) = propagation(&t, &["slave"]);
    assert!(top.tag("master:") && !top.tag("shared:"), "{text}");
}

// config.md "Linux mount options": `private` (MUST) "Bind mount propagation".
#[test]
fn mount_option_private() {
    let Some(t) = Test::new() else { return };
    let (top, _, text) = propagation(&t, &["private"]);
    assert!(top.optional.is_empty(), "{text}");
}

// config.md "Linux mount options": `unbindable` (MUST) "Bind mount propagation".
#[test]
fn mount_option_unbindable() {
    let Some(t) = Test::new() else { return };
    let (top, _, text) = propagation(&t, &["unbindable"]);
    assert!(top.tag("unbindable"), "{text}");
}

// config.md "Linux mount options": `rshared`, `rslave`, `rprivate`, `runbindable` (MUST): the
// propagation of the whole tree, submounts included.
#[test]
fn mount_options_recursive_propagation() {
    let Some(t) = Test::new() else { return };
    type Check = fn(&MountInfo) -> bool;
    let checks: [(&str, Check); 4] = [
        ("rshared", |m| m.tag("shared:")),
        ("rslave", |m| m.tag("master:") && !m.tag("shared:")),
        ("rprivate", |m| m.optional.is_empty()),
        ("runbindable", |m| m.tag("unbindable")),
    ];
    for (opt, ok) in checks {
        let (top, sub, text) = propagation(&t, &[opt]);
        assert!(ok(&top), "{opt}: /data: {text}");
        assert!(ok(&sub), "{opt}: /data/sub: {text}");
        // The next round makes its own source tree.
        for m in [t.dir.join("src/sub"), t.dir.join("src")] {
            let _ = oci_conformance::test::umount_detach(&m);
        }
        let _ = std::fs::remove_dir_all(t.dir.join("src"));
    }
}

// config-linux.md "Rootfs Mount Propagation" / config.md `slave`: "the rootfs mount receives
// propagation events from the host [...] but not the other way around." A mount made on the
// host after start appears in a `slave` bind; a `private` bind stays unchanged.
#[test]
fn mount_slave_receives_host_mounts_private_does_not() {
    let Some(t) = Test::new() else { return };
    let src = t.dir.join("src");
    std::fs::create_dir_all(src.join("late")).unwrap();
    t.shared_bind(&src);
    let mut cfg = base_config(&["/bin/sleep", "1000"]);
    add_mount(&mut cfg, bind("/slave", &src, &["rbind", "rslave"]));
    add_mount(&mut cfg, bind("/private", &src, &["rbind", "rprivate"]));
    let (_id, pid) = t.start_running(&cfg, "sleep");
    t.host_mount("tmpfs", &src.join("late"), "tmpfs", 0);
    let mi = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let m = parse_mountinfo(&mi);
    assert!(
        mount_at(&m, "/slave/late").is_some(),
        "slave missed a host mount:\n{mi}"
    );
    assert!(
        mount_at(&m, "/private/late").is_none(),
        "private received a host mount:\n{mi}"
    );
    // Nothing flows back: the container's mounts are not in the host's table.
    assert!(host::host_mounts_under(&src)
        .iter()
        .all(|p| p == &src || p == &src.join("late")));
}

/// A recursive option check: /data is an rbind of a host tree whose submount carries
/// `host_flags`; `opt` must reach the submount, as `want` says.
fn recursive(opt: &str, host_flags: libc::c_ulong, want: fn(&MountInfo) -> bool) {
    let Some(t) = Test::new() else { return };
    require!(
        t,
        rt().has_mount_option(opt),
        format!("mount option {opt} not announced in features")
    );
    let src = host_tree(&t, host_flags);
    let (mi, text) = mountinfo_with(
        &t,
        vec![bind("/data", &src, &["rbind", opt])],
        "cat /proc/self/mountinfo",
    );
    let top = at(&mi, "/data");
    let sub = at(&mi, "/data/sub");
    assert!(want(top), "{opt} not applied to /data:\n{text}");
    assert!(
        want(sub),
        "{opt} not applied recursively to /data/sub:\n{text}"
    );
}

// config.md "Linux mount options": `rro` (SHOULD) "Recursive ro" (AT_RECURSIVE, kernel 5.12).
#[test]
fn mount_option_rro() {
    recursive("rro", 0, |m| m.has("ro"));
}

// config.md "Linux mount options": `rrw` (SHOULD) "Recursive rw".
#[test]
fn mount_option_rrw() {
    recursive("rrw", libc::MS_RDONLY, |m| m.has("rw"));
}

// config.md "Linux mount options": `rnosuid` (SHOULD) "Recursive nosuid".
#[test]
fn mount_option_rnosuid() {
    recursive("rnosuid", 0, |m| m.has("nosuid"));
}

// config.md "Linux mount options": `rsuid` (SHOULD) "Recursive suid".
#[test]
fn mount_option_rsuid() {
    recursive("rsuid", libc::MS_NOSUID, |m| !m.has("nosuid"));
}

// config.md "Linux mount options": `rnodev` (SHOULD) "Recursive nodev".
#[test]
fn mount_option_rnodev() {
    recursive("rnodev", 0, |m| m.has("nodev"));
}

// config.md "Linux mount options": `rdev` (SHOULD) "Recursive dev".
#[test]
fn mount_option_rdev() {
    recursive("rdev", libc::MS_NODEV, |m| !m.has("nodev"));
}

// config.md "Linux mount options": `rnoexec` (SHOULD) "Recursive noexec".
#[test]
fn mount_option_rnoexec() {
    recursive("rnoexec", 0, |m| m.has("noexec"));
}

// config.md "Linux mount options": `rexec` (SHOULD) "Recursive exec".
#[test]
fn mount_option_rexec() {
    recursive("rexec", libc::MS_NOEXEC, |m| !m.has("noexec"));
}

// config.md "Linux mount options": `rnoatime` (SHOULD) "Recursive noatime".
#[test]
fn mount_option_rnoatime() {
    recursive("rnoatime", 0, |m| m.has("noatime"));
}

// config.md "Linux mount options": `ratime` (SHOULD) "Recursive atime".
#[test]
fn mount_option_ratime() {
    recursive("ratime", libc::MS_NOATIME, |m| !m.has("noatime"));
}

// config.md "Linux mount options": `rstrictatime` (SHOULD) "Recursive strictatime".
#[test]
fn mount_option_rstrictatime() {
    recursive("rstrictatime", libc::MS_NOATIME, |m| {
        !m.has("noatime") && !m.has("relatime")
    });
}

// config.md "Linux mount options": `rrelatime` (SHOULD) "Recursive relatime".
#[test]
fn mount_option_rrelatime() {
    recursive("rrelatime", libc::MS_NOATIME, |m| m.has("relatime"));
}

// config.md "Linux mount options": `rnostrictatime` (SHOULD) "Recursive nostrictatime".
#[test]
fn mount_option_rnostrictatime() {
    recursive("rnostrictatime", libc::MS_STRICTATIME, |m| {
        m.has("relatime")
    });
}

// config.md "Linux mount options": `rnodiratime` (SHOULD) "Recursive nodiratime".
#[test]
fn mount_option_rnodiratime() {
    recursive("rnodiratime", 0, |m| m.has("nodiratime"));
}

// config.md "Linux mount options": `rdiratime` (SHOULD) "Recursive diratime".
#[test]
fn mount_option_rdiratime() {
    recursive("rdiratime", libc::MS_NODIRATIME, |m| !m.has("nodiratime"));
}

// config.md "Linux mount options": `rnosymfollow` (SHOULD) "Recursive nosymfollow".
#[test]
fn mount_option_rnosymfollow() {
    recursive("rnosymfollow", 0, |m| m.has("nosymfollow"));
}

// config.md "Linux mount options": `rsymfollow` (SHOULD) "Recursive symfollow".
#[test]
fn mount_option_rsymfollow() {
    const MS_NOSYMFOLLOW: libc::c_ulong = 256;
    recursive("rsymfollow", MS_NOSYMFOLLOW, |m| !m.has("nosymfollow"));
}

// config.md "POSIX-platform Mounts": uidMappings/gidMappings with `idmap` (SHOULD): "the mount
// MUST have an idmapping applied", converting ids "from the source file system to the
// destination mount point". As runc 1.2 and crun do it (mount_setattr with a user namespace
// whose maps are the mount's): an id of the source filesystem is a containerID and shows as
// its hostID. In a container without a user namespace, a file owned by uid 0 shows as 1000
// through a mapping of container id 0 to host id 1000, and one owned by 1000 is unmapped.
#[test]
fn mount_idmap_applies_the_mapping() {
    let Some(t) = Test::new() else { return };
    require!(
        t,
        rt().has_idmap_mounts() && rt().has_mount_option("idmap"),
        "idmapped mounts not announced"
    );
    let src = t.dir.join("src");
    std::fs::create_dir(&src).unwrap();
    for (name, owner) in [("root", 0), ("other", 1000)] {
        let f = src.join(name);
        std::fs::write(&f, "x").unwrap();
        std::os::unix::fs::chown(&f, Some(owner), Some(owner)).unwrap();
    }
    let mut cfg = sh_config("stat -c '%u:%g' /data/root /data/other");
    cfg["ociVersion"] = json!("1.2.0");
    add_mount(
        &mut cfg,
        json!({
            "destination": "/data", "type": "none", "source": src, "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]
        }),
    );
    let out = t.run(&cfg);
    assert_ok!(out);
    let overflow = |f: &str| {
        let v = std::fs::read_to_string(format!("/proc/sys/kernel/{f}")).unwrap();
        v.trim().to_string()
    };
    let (u, g) = (overflow("overflowuid"), overflow("overflowgid"));
    assert_eq!(out.stdout.trim(), format!("1000:1000\n{u}:{g}"));
}

// config.md "POSIX-platform Mounts": idmap — "If there are no uidMappings and gidMappings
// specified and the container isn't using user namespaces, an error MUST be returned."
#[test]
fn mount_idmap_without_mappings_or_userns_errors() {
    let Some(t) = Test::new() else { return };
    require!(
        t,
        rt().has_idmap_mounts() && rt().has_mount_option("idmap"),
        "idmapped mounts not announced"
    );
    let src = t.dir.join("src");
    std::fs::create_dir(&src).unwrap();
    let mut cfg = sh_config("true");
    cfg["ociVersion"] = json!("1.2.0");
    add_mount(&mut cfg, bind("/data", &src, &["bind", "idmap"]));
    let b = t.bundle(&cfg);
    let id = t.id("idmap");
    assert_fails!(t.create(&id, &b));
}

// config-linux.md "Default Filesystems": "The following filesystems SHOULD be made available in
// each container's filesystem: /proc proc, /sys sysfs, /dev/pts devpts, /dev/shm tmpfs" — as
// the config asks, with the type it names.
#[test]
fn default_filesystems_have_their_types() {
    let Some(t) = Test::new() else { return };
    let (mi, text) = mountinfo_with(&t, vec![], "cat /proc/self/mountinfo");
    for (p, ty) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
    ] {
        assert_eq!(at(&mi, p).fstype, ty, "{p}: {text}");
    }
    assert!(at(&mi, "/sys").has("ro"), "{text}");
}

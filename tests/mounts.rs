//! Mount extensions engines rely on beyond the spec's option list: `tmpcopyup` (runc and
//! crun's; podman sends it for `--read-only` and `--tmpfs`), checked from inside the
//! container and on the host. Needs root.

mod common;

use common::{stderr, stdout, unique_id, Env};
use serde_json::json;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

fn tmpfs(dest: &str, opts: &[&str]) -> serde_json::Value {
    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts})
}

/// The image's files appear on the writable tmpfs with their modes, owners and symlinks;
/// writes land in the tmpfs, never in the image; a symlink to the host is copied as a
/// symlink, not followed.
#[test]
fn tmpcopyup_copies_the_directory_into_the_tmpfs() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&[
        "sh",
        "-c",
        "stat -c '%n %a %u:%g %F' /data/f /data/sub /data/sub/g /data/out /data/fifo; \
        readlink /data/out; cat /data/sub/g; echo new > /data/f && cat /data/f; \
        grep ' /data ' /proc/self/mountinfo",
    ]);
    let data = env.rootfs().join("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::write(data.join("f"), "image\n").unwrap();
    fs::write(data.join("sub/g"), "deep\n").unwrap();
    fs::set_permissions(data.join("f"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(data.join("sub"), fs::Permissions::from_mode(0o711)).unwrap();
    std::os::unix::fs::chown(data.join("sub/g"), Some(1234), Some(5678)).unwrap();
    let marker = env.dir.join("host-marker");
    fs::write(&marker, "host\n").unwrap();
    symlink(&marker, data.join("out")).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(data.join("fifo"))
        .status()
        .unwrap()
        .success());
    env.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(tmpfs("/data", &["nosuid", "tmpcopyup"]))
    });
    let id = unique_id("copyup");
    let out = env.run(&id);
    assert!(out.status.success(), "{}", stderr(&out));
    let o = stdout(&out);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines[0], "/data/f 640 0:0 regular file", "{o}");
    assert_eq!(lines[1], "/data/sub 711 0:0 directory", "{o}");
    assert_eq!(lines[2], "/data/sub/g 644 1234:5678 regular file", "{o}");
    assert_eq!(lines[3], "/data/out 777 0:0 symbolic link", "{o}");
    assert_eq!(lines[4], "/data/fifo 644 0:0 fifo", "{o}");
    assert_eq!(lines[5], marker.to_str().unwrap(), "{o}");
    assert_eq!(lines[6..8], ["deep", "new"], "{o}");
    assert!(lines[8].contains(" - tmpfs "), "{o}");
    // The image and the host are untouched.
    assert_eq!(fs::read_to_string(data.join("f")).unwrap(), "image\n");
    assert_eq!(fs::read_to_string(&marker).unwrap(), "host\n");
    env.assert_clean(&id);
}

/// The tmpfs takes the covered directory's mode unless the mount sets one; a missing
/// destination gives an empty tmpfs; `ro` applies after the copy.
#[test]
fn tmpcopyup_mode_missing_destination_and_ro() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&[
        "sh",
        "-c",
        "stat -c '%a' /a /b /c; ls -A /c | wc -l; cat /b/x; \
        touch /b/y 2>/dev/null && echo writable || echo read-only",
    ]);
    for d in ["a", "b"] {
        let p = env.rootfs().join(d);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o751)).unwrap();
    }
    fs::write(env.rootfs().join("b/x"), "kept\n").unwrap();
    env.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(tmpfs("/a", &["tmpcopyup"]));
        m.push(tmpfs("/b", &["tmpcopyup", "mode=700", "ro"]));
        m.push(tmpfs("/c", &["tmpcopyup"]));
    });
    let id = unique_id("copyup2");
    let out = env.run(&id);
    assert!(out.status.success(), "{}", stderr(&out));
    let o = stdout(&out);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(
        lines,
        ["751", "700", "1777", "0", "kept", "read-only"],
        "{o}"
    );
    env.assert_clean(&id);
}

/// Only a tmpfs can copy up: anything else is refused by name before anything is made.
#[test]
fn tmpcopyup_on_a_bind_mount_is_refused() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    env.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(
            json!({"destination": "/x", "type": "bind", "source": "/tmp",
                      "options": ["rbind", "tmpcopyup"]}),
        );
    });
    let id = unique_id("copyup3");
    let out = env.run(&id);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("options \"tmpcopyup\": only a tmpfs mount can copy up"),
        "{e}"
    );
    env.assert_clean(&id);
}

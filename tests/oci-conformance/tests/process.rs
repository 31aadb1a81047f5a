//! config.md: root, process (args, env, cwd, user, umask, additionalGids, capabilities,
//! rlimits, noNewPrivileges, oomScoreAdj, terminal, consoleSize), hostname, domainname,
//! annotations, extensibility and invalid values — each read back from inside the container
//! (`/proc/self/status`, `/proc/self/limits`, `id`, `umask`) and from the host.

use oci_conformance::bundle::privileged;
use oci_conformance::host::{self, cap_mask, status_field};
use oci_conformance::{assert_fails, assert_ok, base_config, console, rt, sh_config, Test};
use serde_json::json;
use std::time::Duration;

oci_conformance::init!();

fn status_of(out: &str, field: &str) -> String {
    status_field(out, field).unwrap_or_else(|| panic!("no {field} in:\n{out}"))
}

// config.md "Root": "path [...] is either an absolute path or a relative path to the bundle."
// The runtime is started from another directory, so a relative path must not be resolved
// against its cwd.
#[test]
fn root_path_relative_to_bundle() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&sh_config("echo relative-ok"));
    std::fs::write(b.join("rootfs/marker"), "bundle-rootfs").unwrap();
    let mut cfg = sh_config("cat /marker");
    cfg["root"]["path"] = json!("rootfs");
    t.write_config(&b, &cfg);
    let out = t.run_bundle(&b);
    assert_ok!(out);
    assert_eq!(out.stdout, "bundle-rootfs");
}

// config.md "Root": "path [...] is either an absolute path or a relative path to the bundle."
#[test]
fn root_path_absolute() {
    let Some(t) = Test::new() else { return };
    let elsewhere = t.bundle(&sh_config("true"));
    std::fs::write(elsewhere.join("rootfs/marker"), "absolute-rootfs").unwrap();
    let mut cfg = sh_config("cat /marker");
    cfg["root"]["path"] = json!(elsewhere.join("rootfs"));
    let out = t.run(&cfg);
    assert_ok!(out);
    assert_eq!(out.stdout, "absolute-rootfs");
}

// config.md "Root": "A directory MUST exist at the path declared by the field."
#[test]
fn root_path_must_exist() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("true");
    cfg["root"]["path"] = json!("no-such-rootfs");
    let b = t.bundle(&cfg);
    let id = t.id("noroot");
    assert_fails!(t.create(&id, &b));
    assert!(t.state(&id).is_none());
}

// config.md "Root": "readonly (bool, OPTIONAL) If true then the root filesystem MUST be
// read-only inside the container".
#[test]
fn root_readonly() {
    let Some(t) = Test::new() else { return };
    let out = t.sh_with(
        "cat /proc/self/mountinfo; touch /new-file && echo WRITABLE; exit 0",
        |c| c["root"]["readonly"] = json!(true),
    );
    assert_ok!(out);
    let mi = host::parse_mountinfo(&out.stdout);
    let root = host::mount_at(&mi, "/").expect("a mountinfo line for /");
    assert!(root.has("ro"), "/ is not read-only: {}", out.stdout);
    assert!(!out.stdout.contains("WRITABLE"), "{out:?}");
}

// config.md "Root": "readonly [...] defaults to false."
#[test]
fn root_readonly_defaults_to_false() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("touch /new-file && echo writable");
    cfg["root"].as_object_mut().unwrap().remove("readonly");
    let out = t.run(&cfg);
    assert_ok!(out);
    assert_eq!(out.stdout, "writable\n");
}

// config.md "Process": "args [...] at least one entry is REQUIRED (non-Windows), and that entry
// is used with the same semantics as execvp's file" — found through PATH, argv passed as is.
#[test]
fn process_args_use_execvp_semantics() {
    let Some(t) = Test::new() else { return };
    let out = t.run(&base_config(&["echo", "two  spaces", "$HOME", "*"]));
    assert_ok!(out);
    assert_eq!(out.stdout, "two  spaces $HOME *\n");
}

// config.md "Process": "args [...] at least one entry is REQUIRED" — an empty args list is an
// invalid value ("Runtimes MUST generate an error when invalid or unsupported values are
// encountered").
#[test]
fn process_args_empty_errors() {
    let Some(t) = Test::new() else { return };
    let mut cfg = base_config(&[]);
    cfg["process"]["args"] = json!([]);
    let b = t.bundle(&cfg);
    let id = t.id("noargs");
    if t.create(&id, &b).ok() {
        assert_fails!(t.start(&id));
    }
}

// config.md "Process": "env (array of strings, OPTIONAL) with the same semantics as IEEE Std
// 1003.1-2008's environ" — the process gets these variables, and none of the runtime's own.
#[test]
fn process_env_is_the_configs() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("env");
    cfg["process"]["env"] = json!([
        oci_conformance::bundle::PATH_ENV,
        "ONE=1",
        "WITH_SPACE=a b",
        "EMPTY="
    ]);
    let b = t.bundle(&cfg);
    let id = t.id("env");
    let mut c = t.cmd();
    c.env("OCI_CONFORMANCE_LEAK", "leaked")
        .arg("run")
        .arg("--bundle")
        .arg(&b)
        .arg(&id);
    t.track(&id);
    let out = oci_conformance::test::run_cmd(c, &t.dir.join("io/env"), Duration::from_secs(60));
    assert_ok!(out);
    let lines: Vec<&str> = out.stdout.lines().collect();
    for want in ["ONE=1", "WITH_SPACE=a b", "EMPTY="] {
        assert!(lines.contains(&want), "{want} missing: {lines:?}");
    }
    assert!(
        !out.stdout.contains("OCI_CONFORMANCE_LEAK"),
        "the runtime's environment leaked: {lines:?}"
    );
}

// config.md "Process": "cwd (string, REQUIRED) is the working directory that will be set for
// the executable."
#[test]
fn process_cwd_is_set() {
    let Some(t) = Test::new() else { return };
    let out = t.sh_with("pwd", |c| c["process"]["cwd"] = json!("/etc"));
    assert_ok!(out);
    assert_eq!(out.stdout, "/etc\n");
}

// config.md "Process": "cwd [...] This value MUST be an absolute path." A relative cwd is an
// invalid value: "Runtimes MUST generate an error when invalid or unsupported values are
// encountered."
#[test]
fn process_cwd_must_be_absolute() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("pwd");
    cfg["process"]["cwd"] = json!("etc");
    let b = t.bundle(&cfg);
    let id = t.id("relcwd");
    if t.create(&id, &b).ok() {
        let started = t.start(&id);
        assert_fails!(started, "relative cwd accepted by create and start");
    }
}

// config.md "POSIX-platform User": "uid (int, REQUIRED) specifies the user ID in the container
// namespace. gid (int, REQUIRED) specifies the group ID in the container namespace."
#[test]
fn process_user_uid_and_gid() {
    let Some(t) = Test::new() else { return };
    let out = t.sh_with("cat /proc/self/status", |c| {
        c["process"]["user"] = json!({"uid": 1234, "gid": 4321})
    });
    assert_ok!(out);
    assert_eq!(status_of(&out.stdout, "Uid"), "1234\t1234\t1234\t1234");
    assert_eq!(status_of(&out.stdout, "Gid"), "4321\t4321\t4321\t4321");
}

// config.md "POSIX-platform User": "additionalGids (array of ints, OPTIONAL) specifies
// additional group IDs in the container namespace to be added to the process."
#[test]
fn process_user_additional_gids() {
    let Some(t) = Test::new() else { return };
    let out = t.sh_with("cat /proc/self/status", |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 6, 700]})
    });
    assert_ok!(out);
    let mut groups: Vec<u32> = status_of(&out.stdout, "Groups")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort();
    groups.retain(|g| *g != 1000);
    assert_eq!(groups, vec![5, 6, 700]);
}

// config.md "POSIX-platform User": "umask (int, OPTIONAL) specifies the umask of the user."
#[test]
fn process_user_umask() {
    let Some(t) = Test::new() else { return };
    let out = t.sh_with("umask; touch /tmp/f; stat -c %a /tmp/f", |c| {
        c["process"]["user"]["umask"] = json!(0o077)
    });
    assert_ok!(out);
    assert_eq!(out.stdout, "0077\n600\n");
}

// config.md "Linux Process": capabilities "bounding", "inheritable" and "ambient" are "kept
// for the process" and nothing else is. For a non-root user, execve keeps exactly the
// ambient set as permitted and effective (capabilities(7)), so all five sets are known.
#[test]
fn process_capabilities_sets_non_root() {
    let Some(t) = Test::new() else { return };
    let bounding = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
    ];
    let kept = ["CAP_NET_BIND_SERVICE", "CAP_KILL"];
    let out = t.sh_with("cat /proc/self/status", |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = json!({
            "bounding": bounding, "permitted": kept, "effective": kept,
            "inheritable": kept, "ambient": kept
        });
    });
    assert_ok!(out);
    let hex = |f| {
        u64::from_str_radix(&status_of(&out.stdout, f), 16).unwrap_or_else(|e| panic!("{f}: {e}"))
    };
    assert_eq!(hex("CapBnd"), cap_mask(&bounding), "CapBnd");
    assert_eq!(hex("CapInh"), cap_mask(&kept), "CapInh");
    assert_eq!(hex("CapAmb"), cap_mask(&kept), "CapAmb");
    assert_eq!(hex("CapPrm"), cap_mask(&kept), "CapPrm");
    assert_eq!(hex("CapEff"), cap_mask(&kept), "CapEff");
}

// config.md "Linux Process": "bounding [...] the bounding field is an array of bounding
// capabilities that are kept for the process" — for root too; and "effective"/"permitted"
// never exceed it.
#[test]
fn process_capabilities_bounding_root() {
    let Some(t) = Test::new() else { return };
    let caps = ["CAP_CHOWN", "CAP_FOWNER", "CAP_KILL"];
    let out = t.sh_with("cat /proc/self/status", |c| {
        c["process"]["capabilities"] = json!({
            "bounding": caps, "permitted": caps, "effective": caps
        });
    });
    assert_ok!(out);
    let hex = |f| u64::from_str_radix(&status_of(&out.stdout, f), 16).unwrap();
    assert_eq!(hex("CapBnd"), cap_mask(&caps));
    assert_eq!(hex("CapEff"), cap_mask(&caps));
    assert_eq!(hex("CapPrm"), cap_mask(&caps));
    assert_eq!(hex("CapAmb"), 0);
}

// config.md "Linux Process": capabilities not listed are not kept: without CAP_CHOWN, root in
// the container cannot chown; with it, it can.
#[test]
fn process_capabilities_are_enforced() {
    let Some(t) = Test::new() else { return };
    let script = "touch /tmp/f; chown 1:1 /tmp/f && echo chowned || echo denied";
    let without = t.sh(script);
    assert_ok!(without);
    assert_eq!(without.stdout.trim(), "denied");
    let with = t.sh_with(script, |c| {
        let caps = ["CAP_CHOWN"];
        c["process"]["capabilities"] =
            json!({"bounding": caps, "permitted": caps, "effective": caps});
    });
    assert_ok!(with);
    assert_eq!(with.stdout.trim(), "chowned");
}

// config.md "Linux Process": "Any value which cannot be mapped to a relevant kernel interface,
// or cannot be granted otherwise MUST be logged as a warning by the runtime" — a warning, so
// (runtime.md "Warnings") "it MUST continue as if the warning had not been logged".
// (runtime-spec 1.1.0; 1.0 made such values an error)
#[test]
fn process_capabilities_unknown_is_a_warning() {
    let Some(t) = Test::new() else { return };
    oci_conformance::require!(
        t,
        rt().supports_spec("1.1.0"),
        "unknown capabilities are warnings since runtime-spec 1.1.0"
    );
    let out = t.sh_with("grep CapBnd /proc/self/status", |c| {
        let caps = ["CAP_KILL", "CAP_OCI_CONFORMANCE_UNKNOWN"];
        c["process"]["capabilities"] =
            json!({"bounding": caps, "permitted": caps, "effective": caps});
    });
    assert_ok!(out);
    let bnd = u64::from_str_radix(status_of(&out.stdout, "CapBnd").as_str(), 16).unwrap();
    assert_eq!(bnd, cap_mask(&["CAP_KILL"]));
}

// config.md "POSIX process": rlimits — "For each entry in rlimits, a getrlimit(3) on type MUST
// succeed", "rlim.rlim_cur MUST match the configured value", "rlim.rlim_max MUST match the
// configured value".
#[test]
fn process_rlimits_are_set() {
    let Some(t) = Test::new() else { return };
    let out = t.sh_with("cat /proc/self/limits", |c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 1001},
            {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192},
            {"type": "RLIMIT_NPROC", "soft": 700, "hard": 800}
        ]);
    });
    assert_ok!(out);
    let limit = |name: &str| {
        let l = out
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing"));
        let f: Vec<&str> = l[name.len()..].split_whitespace().collect();
        (f[0].to_string(), f[1].to_string())
    };
    assert_eq!(limit("Max open files"), ("1000".into(), "1001".into()));
    assert_eq!(limit("Max core file size"), ("4096".into(), "8192".into()));
    assert_eq!(limit("Max processes"), ("700".into(), "800".into()));
}

// config.md "POSIX process": "The runtime MUST generate an error for any values which cannot
// be mapped to a relevant kernel interface."
#[test]
fn process_rlimits_unknown_type_errors() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("echo ran > /ran");
    cfg["process"]["rlimits"] = json!([{"type": "RLIMIT_OCI_UNKNOWN", "soft": 1, "hard": 1}]);
    let b = t.bundle(&cfg);
    let id = t.id("rlimbad");
    if t.create(&id, &b).ok() {
        assert_fails!(t.start(&id), "unknown rlimit accepted");
    }
    assert!(!b.join("rootfs/ran").exists());
}

// config.md "POSIX process": "If rlimits contains duplicated entries with same type, the
// runtime MUST generate an error."
#[test]
fn process_rlimits_duplicate_type_errors() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("echo ran > /ran");
    cfg["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 1000},
        {"type": "RLIMIT_NOFILE", "soft": 900, "hard": 900}
    ]);
    let b = t.bundle(&cfg);
    let id = t.id("rlimdup");
    if t.create(&id, &b).ok() {
        assert_fails!(t.start(&id), "duplicated rlimit accepted");
    }
    assert!(!b.join("rootfs/ran").exists());
}

// config.md "Linux Process": "noNewPrivileges (bool, OPTIONAL) setting noNewPrivileges to true
// prevents the process from gaining additional privileges" (prctl PR_SET_NO_NEW_PRIVS).
#[test]
fn process_no_new_privileges() {
    let Some(t) = Test::new() else { return };
    let on = t.sh_with("grep NoNewPrivs /proc/self/status", |c| {
        c["process"]["noNewPrivileges"] = json!(true)
    });
    assert_ok!(on);
    assert_eq!(status_of(&on.stdout, "NoNewPrivs"), "1");
    let off = t.sh_with("grep NoNewPrivs /proc/self/status", |c| {
        c["process"]["noNewPrivileges"] = json!(false)
    });
    assert_ok!(off);
    assert_eq!(status_of(&off.stdout, "NoNewPrivs"), "0");
}

// config.md "Linux Process": "If oomScoreAdj is set, the runtime MUST set oom_score_adj to the
// given value."
#[test]
fn process_oom_score_adj_set() {
    let Some(t) = Test::new() else { return };
    let out = t.sh_with("cat /proc/self/oom_score_adj", |c| {
        c["process"]["oomScoreAdj"] = json!(321)
    });
    assert_ok!(out);
    assert_eq!(out.stdout.trim(), "321");
}

// config.md "Linux Process": "If oomScoreAdj is not set, the runtime MUST NOT change the value
// of oom_score_adj." The runtime is started with 123; the container inherits it.
#[test]
fn process_oom_score_adj_unset_is_unchanged() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&sh_config("cat /proc/self/oom_score_adj"));
    let id = t.id("oom");
    t.track(&id);
    let mut c = std::process::Command::new("/bin/sh");
    c.arg("-c")
        .arg("echo 123 > /proc/self/oom_score_adj && exec \"$@\"")
        .arg("sh")
        .arg(&oci_conformance::rt().path)
        .arg("--root")
        .arg(&t.root)
        .arg("run")
        .arg("--bundle")
        .arg(&b)
        .arg(&id);
    let out = oci_conformance::test::run_cmd(c, &t.dir.join("io/oom"), Duration::from_secs(60));
    assert_ok!(out);
    assert_eq!(out.stdout.trim(), "123");
}

// config.md "Hostname": "hostname (string, OPTIONAL) specifies the container's hostname as seen
// by processes running inside the container" — in its own UTS namespace; the host keeps its.
#[test]
fn hostname_is_set() {
    let Some(t) = Test::new() else { return };
    let host_before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = t.sh_with("hostname; cat /proc/sys/kernel/hostname", |c| {
        c["hostname"] = json!("oci-conformance-host")
    });
    assert_ok!(out);
    assert_eq!(out.stdout, "oci-conformance-host\noci-conformance-host\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_before
    );
}

// config.md "Domainname": "domainname (string, OPTIONAL) specifies the container's domainname as
// seen by processes running inside the container." (runtime-spec 1.1.0)
#[test]
fn domainname_is_set() {
    let Some(t) = Test::new() else { return };
    oci_conformance::require!(
        t,
        rt().supports_spec("1.1.0"),
        "domainname needs runtime-spec 1.1.0"
    );
    let host_before = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let out = t.sh_with("cat /proc/sys/kernel/domainname", |c| {
        c["ociVersion"] = json!("1.1.0");
        c["domainname"] = json!("conformance.test")
    });
    assert_ok!(out);
    assert_eq!(out.stdout, "conformance.test\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host_before
    );
}

// config.md "Process": "terminal (bool, OPTIONAL) specifies whether a terminal is attached to
// the process [...] if set to true on Linux a pseudoterminal pair is allocated for the process
// and the pseudoterminal pty is duplicated on the process's standard streams." consoleSize
// "specifies the console size in characters of the terminal".
#[test]
fn process_terminal_allocates_a_pty() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config(
        "for f in 0 1 2; do readlink /proc/self/fd/$f; done; stty size; \
         stat -c '%t:%T' /dev/console; grep ' /dev/console ' /proc/self/mountinfo | wc -l",
    );
    cfg["process"]["terminal"] = json!(true);
    cfg["process"]["consoleSize"] = json!({"height": 25, "width": 91});
    let b = t.bundle(&cfg);
    let id = t.id("tty");
    let sock = t.dir.join("console.sock");
    let listener = console::listen(&sock);
    let created = t.create_with(&id, &b, &["--console-socket", sock.to_str().unwrap()]);
    assert_ok!(created);
    let master = listener.master().expect("the runtime sent a pty master");
    assert_ok!(t.start(&id));
    let text = console::read_all(master, Duration::from_secs(20));
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    assert!(lines.len() >= 6, "{text:?}");
    for l in &lines[..3] {
        assert!(l.starts_with("/dev/pts/"), "stdio is not a pty: {lines:?}");
    }
    assert_eq!(lines[3], "25 91", "consoleSize not applied: {lines:?}");
    // config-linux.md "Default Devices": "/dev/console is set up if terminal is enabled in the
    // config by bind mounting the pseudoterminal pty to /dev/console." (pty major 136 = 0x88)
    assert_eq!(lines[4], "88:0", "/dev/console is not the pty: {lines:?}");
    assert_eq!(lines[5], "1", "/dev/console is not a bind mount: {lines:?}");
}

// config.md "Process": "Runtimes MUST ignore consoleSize if terminal is false or unset."
#[test]
fn process_console_size_ignored_without_terminal() {
    let Some(t) = Test::new() else { return };
    let out = t.sh_with("test -t 1 && echo tty || echo no-tty", |c| {
        c["process"]["consoleSize"] = json!({"height": 10, "width": 10})
    });
    assert_ok!(out);
    assert_eq!(out.stdout, "no-tty\n");
}

// config.md "Annotations": "Runtimes MUST handle unknown annotation keys like any other unknown
// property" and "Extensibility": "Runtimes MAY log unknown properties but MUST otherwise ignore
// them. That includes not generating errors if they encounter an unknown property."
#[test]
fn unknown_properties_and_annotations_are_ignored() {
    let Some(t) = Test::new() else { return };
    let out = t.sh_with("echo ran", |c| {
        c["annotations"] = json!({"org.example.unknown": "x", "com.example.n": "2"});
        c["org.example.unknownTopLevel"] = json!({"nested": [1, 2]});
        c["process"]["org.example.unknownProcess"] = json!(true);
        c["linux"]["org.example.unknownLinux"] = json!("x");
    });
    assert_ok!(out);
    assert_eq!(out.stdout, "ran\n");
}

// config.md "Specification version": "ociVersion (string, REQUIRED) MUST be in SemVer v2.0.0
// format" and "Valid values": "Runtimes MUST generate an error when invalid or unsupported
// values are encountered." A major version the runtime cannot know is unsupported.
#[test]
fn oci_version_unsupported_major_errors() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("echo ran > /ran");
    cfg["ociVersion"] = json!("99.0.0");
    let b = t.bundle(&cfg);
    let id = t.id("v99");
    if t.create(&id, &b).ok() {
        let _ = t.start(&id);
        panic!("ociVersion 99.0.0 accepted");
    }
    assert!(!b.join("rootfs/ran").exists());
}

// config.md "Valid values": "Runtimes MUST generate an error when invalid or unsupported values
// are encountered." Each of these is invalid per config-linux.md's enumerations.
#[test]
fn invalid_enumerated_values_error() {
    let Some(t) = Test::new() else { return };
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "linux.namespaces type",
            Box::new(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "oci-bogus"}))
            }),
        ),
        (
            "linux.rootfsPropagation",
            Box::new(|c| c["linux"]["rootfsPropagation"] = json!("oci-bogus")),
        ),
        (
            "linux.devices type",
            Box::new(|c| {
                c["linux"]["devices"] =
                    json!([{"path": "/dev/bogus", "type": "z", "major": 1, "minor": 3}])
            }),
        ),
    ];
    for (what, edit) in cases {
        let mut cfg = sh_config("echo ran > /ran");
        edit(&mut cfg);
        let b = t.bundle(&cfg);
        let id = t.id("invalid");
        let created = t.create(&id, &b);
        if created.ok() {
            let _ = t.start(&id);
            panic!("invalid {what} accepted: {}", cfg["linux"]);
        }
        assert!(!b.join("rootfs/ran").exists(), "{what}");
    }
}

// config.md "Linux Process": the runtime sets what it is asked even for a privileged process:
// with every capability, root in the container holds them all in its bounding set.
#[test]
fn process_capabilities_privileged() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("grep CapBnd /proc/self/status");
    privileged(&mut cfg);
    let want = oci_conformance::bundle::all_caps();
    let out = t.run(&cfg);
    assert_ok!(out);
    let bnd = u64::from_str_radix(status_of(&out.stdout, "CapBnd").as_str(), 16).unwrap();
    assert_eq!(bnd, cap_mask(&want));
}

// config.md "Linux Process": scheduler — "policy (string, REQUIRED) represents the scheduling
// policy", "nice (int32, OPTIONAL) is the nice value for the process" (runtime-spec 1.1.0).
#[test]
fn process_scheduler_policy_and_nice() {
    let Some(t) = Test::new() else { return };
    oci_conformance::require!(
        t,
        rt().supports_spec("1.1.0"),
        "process.scheduler needs runtime-spec 1.1.0"
    );
    let out = t.sh_with(
        "grep policy /proc/self/sched; cut -d' ' -f19 /proc/self/stat",
        |c| {
            c["ociVersion"] = json!("1.1.0");
            c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
        },
    );
    assert_ok!(out);
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        l[0].split_whitespace().last(),
        Some("3"),
        "not SCHED_BATCH: {out:?}"
    );
    assert_eq!(l[1], "7", "nice: {out:?}");
}

// config.md "Linux Process": ioPriority — "class (string, REQUIRED) specifies the I/O scheduling
// class", "priority (int, REQUIRED) specifies the priority level within the class"
// (runtime-spec 1.1.0).
#[test]
fn process_io_priority() {
    let Some(t) = Test::new() else { return };
    oci_conformance::require!(
        t,
        rt().supports_spec("1.1.0"),
        "process.ioPriority needs runtime-spec 1.1.0"
    );
    let out = t.sh_with("ionice -p $$", |c| {
        c["ociVersion"] = json!("1.1.0");
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    });
    assert_ok!(out);
    assert_eq!(out.stdout.trim(), "best-effort: prio 6");
}

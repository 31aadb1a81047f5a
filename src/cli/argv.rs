//! Go-style argv normalisation: engines send runc's flags the way Go's flag package accepts
//! them (`-bundle x`, `--force=true`); they are rewritten into what clap parses.

use std::path::PathBuf;

/// Long flags that take no value: Go's flag package accepts `--x=true|false` for them.
const BOOL_FLAGS: &[&str] = &[
    "debug",
    "systemd-cgroup",
    "no-pivot",
    "no-new-keyring",
    "force",
    "all",
    "detach",
    "keep",
    "quiet",
    "no-subreaper",
    "version",
    "help",
    "stats",
    "no-new-privs",
    "tty",
    "ignore-paused",
];

/// Every long flag name, so a single-dash spelling (`-bundle`) can be recognised.
const LONG_FLAGS: &[&str] = &[
    "root",
    "log",
    "log-format",
    "debug",
    "systemd-cgroup",
    "rootless",
    "criu",
    "bundle",
    "pid-file",
    "console-socket",
    "pidfd-socket",
    "network",
    "no-pivot",
    "no-new-keyring",
    "preserve-fds",
    "force",
    "all",
    "detach",
    "keep",
    "no-subreaper",
    "format",
    "quiet",
    "version",
    "help",
    "resources",
    "blkio-weight",
    "cpu-period",
    "cpu-quota",
    "cpu-burst",
    "cpu-share",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "cpuset-cpus",
    "cpuset-mems",
    "kernel-memory",
    "kernel-memory-tcp",
    "memory",
    "cpu-idle",
    "memory-reservation",
    "memory-swap",
    "pids-limit",
    "l3-cache-schema",
    "mem-bw-schema",
    "interval",
    "stats",
    "process",
    "cwd",
    "env",
    "user",
    "additional-gids",
    "cap",
    "no-new-privs",
    "apparmor",
    "process-label",
    "tty",
    "cgroup",
    "ignore-paused",
];

/// Short flags of `exec` that take a value (for telling a flag's value from the container id).
const EXEC_SHORT_VALUED: &[&str] = &["-p", "-e", "-u", "-g", "-c"];

/// Rewrites Go-style arguments into the form clap parses. Stops at `--`, and, as Go's flag
/// package does, at the first positional argument of `exec` (the container id): what follows
/// is the command to run, passed on untouched (`exec c1 ls -la`, `exec c1 tool -root x`).
pub fn normalize(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = false;
    let mut verb: Option<String> = None;
    let mut value_next = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || rest || value_next {
            value_next = false;
            out.push(a);
            continue;
        }
        if a == "--" {
            rest = true;
            out.push(a);
            continue;
        }
        let long = if let Some(body) = a.strip_prefix("--") {
            Some(body.to_string())
        } else if a.len() > 2 && a.starts_with('-') {
            let name = a[1..].split('=').next().unwrap_or("");
            LONG_FLAGS.contains(&name).then(|| a[1..].to_string())
        } else {
            None
        };
        match long {
            Some(body) => {
                let (name, value) = match body.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (body, None),
                };
                // `spec --rootless` is a boolean; the global `--rootless` takes a value.
                let boolean = BOOL_FLAGS.contains(&name.as_str())
                    || (verb.as_deref() == Some("spec") && name == "rootless");
                match value {
                    Some(v) if boolean => match v.as_str() {
                        "true" | "1" | "t" | "T" | "TRUE" | "True" => out.push(format!("--{name}")),
                        "false" | "0" | "f" | "F" | "FALSE" | "False" => {}
                        _ => out.push(format!("--{name}={v}")),
                    },
                    Some(v) => out.push(format!("--{name}={v}")),
                    None => {
                        value_next = LONG_FLAGS.contains(&name.as_str()) && !boolean;
                        out.push(format!("--{name}"));
                    }
                }
            }
            None if a.starts_with('-') && a.len() > 1 => {
                value_next =
                    verb.as_deref() == Some("exec") && EXEC_SHORT_VALUED.contains(&a.as_str());
                out.push(a);
            }
            None => {
                if verb.is_none() {
                    verb = Some(a.clone());
                } else if verb.as_deref() == Some("exec") {
                    out.push("--".into());
                    rest = true;
                }
                out.push(a);
            }
        }
    }
    out
}

/// The global `--log` and `--log-format json` of normalised argv, read without clap: when
/// the arguments do not parse, the error still belongs in the log (containerd reports the
/// last error line of it).
pub fn log_target(args: &[String]) -> (Option<PathBuf>, bool) {
    let (mut log, mut json) = (None, false);
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let (name, value) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        match name {
            "--log" => log = value.or_else(|| it.next().cloned()).map(PathBuf::from),
            "--log-format" => {
                json = value.or_else(|| it.next().cloned()).as_deref() == Some("json")
            }
            "--root" | "--rootless" | "--criu" if value.is_none() => {
                it.next();
            }
            n if n.starts_with('-') => {}
            // The verb: what follows are its own flags.
            _ => break,
        }
    }
    (log, json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn n(v: &[&str]) -> Vec<String> {
        normalize(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn log_target_is_read_from_the_globals_only() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (log, json) = log_target(&v(&[
            "ruse",
            "--root",
            "/r",
            "--log",
            "/l.json",
            "--log-format=json",
            "create",
            "--log",
            "x",
        ]));
        assert_eq!(log.as_deref(), Some(std::path::Path::new("/l.json")));
        assert!(json);
        assert_eq!(log_target(&v(&["ruse", "kill", "--log=/x"])), (None, false));
    }

    #[test]
    fn single_dash_long_flags() {
        assert_eq!(
            n(&["ruse", "create", "-bundle", "b", "id"]),
            ["ruse", "create", "--bundle", "b", "id"]
        );
        assert_eq!(
            n(&["ruse", "-root=/x", "state", "c"]),
            ["ruse", "--root=/x", "state", "c"]
        );
        assert_eq!(
            n(&["ruse", "run", "-no-subreaper", "-b", "x"]),
            ["ruse", "run", "--no-subreaper", "-b", "x"]
        );
    }

    #[test]
    fn exec_command_is_left_alone() {
        assert_eq!(
            n(&["ruse", "--root", "/r", "exec", "-t", "-e", "A=-b", "c1", "ls", "-la", "-root"]),
            [
                "ruse", "--root", "/r", "exec", "-t", "-e", "A=-b", "--", "c1", "ls", "-la",
                "-root"
            ]
        );
        assert_eq!(
            n(&["ruse", "exec", "-cwd", "/", "-user=1:2", "c1", "sh"]),
            ["ruse", "exec", "--cwd", "/", "--user=1:2", "--", "c1", "sh"]
        );
        let cli = Cli::try_parse_from(n(&["ruse", "exec", "-d", "--tty=false", "c1", "ls", "-t"]))
            .unwrap();
        match cli.command {
            Some(Command::Exec(e)) => {
                assert!(e.detach && !e.tty);
                assert_eq!(e.args, ["c1", "ls", "-t"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn go_booleans() {
        assert_eq!(
            n(&["ruse", "delete", "--force=true", "c"]),
            ["ruse", "delete", "--force", "c"]
        );
        assert_eq!(
            n(&["ruse", "delete", "--force=false", "c"]),
            ["ruse", "delete", "c"]
        );
        assert_eq!(
            n(&["ruse", "--rootless=true", "list"]),
            ["ruse", "--rootless=true", "list"]
        );
    }

    #[test]
    fn stops_at_double_dash_and_leaves_short_flags() {
        assert_eq!(
            n(&["ruse", "kill", "-a", "c", "--", "-bundle"]),
            ["ruse", "kill", "-a", "c", "--", "-bundle"]
        );
        assert_eq!(n(&["ruse", "list", "-q"]), ["ruse", "list", "-q"]);
    }
}

//! The command line, flag for flag runc's (../shared/COMPAT.md), and the Go-style argv
//! normalisation engines rely on: `-bundle x`, `--flag=true|false`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "ruse",
    disable_version_flag = true,
    about = "A daemonless OCI container runtime"
)]
pub struct Cli {
    /// Root directory for container state (default /run/ruse, or $XDG_RUNTIME_DIR/ruse rootless)
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Append log lines to this file
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[arg(long, global = true)]
    pub debug: bool,
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto (a global flag, before the command, as runc)
    #[arg(long)]
    pub rootless: Option<String>,
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container
    Create(CreateArgs),
    /// Start a created container
    Start { id: String },
    /// Output the state of a container
    State { id: String },
    /// Send a signal to the container's init process
    Kill {
        id: String,
        signal: Option<String>,
        /// Send the signal to every process of the container
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Suspend every process of the container (cgroup freezer)
    Pause { id: String },
    /// Resume the processes of a paused container
    Resume { id: String },
    /// Update container resource constraints
    Update(Box<UpdateArgs>),
    /// Display container events (OOM notifications) and resource usage statistics
    Events {
        id: String,
        /// Stats collection interval, a Go duration (5s, 500ms, 1m30s)
        #[arg(long, default_value = "5s")]
        interval: String,
        /// Display the container's stats once, then exit
        #[arg(long)]
        stats: bool,
    },
    /// List the processes of a container: `ps [-f table|json] <id> [ps options]`
    Ps {
        /// table or json
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: ListFormat,
        /// The container id, then options for ps(1) (default -ef)
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Delete a container
    Delete {
        id: String,
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Create and start a container
    Run(RunArgs),
    /// Execute a new process inside a container: `exec [options] <id> [command args…]`
    Exec(Box<ExecArgs>),
    /// List containers
    List {
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: ListFormat,
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Create a default config.json
    Spec {
        #[arg(short = 'b', long)]
        bundle: Option<PathBuf>,
        #[arg(long = "rootless", id = "spec_rootless")]
        rootless: bool,
        /// Also emit ruse's network annotations for this mode (none or bridge)
        #[arg(long, value_parser = ["none", "bridge"])]
        network: Option<String>,
    },
    /// Show the features this runtime implements
    Features,
    /// Internal: the container's init (run from the sealed copy of this binary)
    #[command(hide = true)]
    Init { fd: i32 },
    #[command(external_subcommand)]
    Other(Vec<String>),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    pub id: String,
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

/// runc's `update` flags; `-r FILE|-` (LinuxResources JSON) overrides them all.
#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    pub id: String,
    /// Path to a JSON file of resources to update, or '-' for standard input
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    /// Per-cgroup block IO weight, 10 to 1000
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<String>,
    /// CPU CFS period (microseconds)
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<String>,
    /// CPU CFS quota (microseconds per period)
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<String>,
    /// CPU CFS burst (microseconds)
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<String>,
    /// CPU realtime period (microseconds)
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<String>,
    /// CPU realtime runtime (microseconds per period)
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<String>,
    /// CPUs to use (0-3,7)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp", hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (bytes, or with a k/m/g suffix)
    #[arg(long)]
    pub memory: Option<String>,
    /// SCHED_IDLE for the cgroup: 0 or 1
    #[arg(long = "cpu-idle")]
    pub cpu_idle: Option<String>,
    /// Memory reservation (soft limit)
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// Maximum number of pids
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<String>,
    /// Intel RDT/CAT L3 cache schema
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT/MBA memory bandwidth schema
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
}

/// runc's `exec` flags. With `-p FILE` the process comes from that file and the flags that
/// describe a process (`--cwd`, `--env`, `--user`, …) are ignored, as in runc.
#[derive(Args, Debug, Default)]
pub struct ExecArgs {
    /// Path to a process.json (an OCI process); the command line then takes no command
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Current working directory in the container
    #[arg(long)]
    pub cwd: Option<String>,
    /// Set an environment variable (KEY=value; repeatable; overrides the config's)
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// UID (format: <uid>[:<gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional gids (repeatable, or comma-separated)
    #[arg(short = 'g', long = "additional-gids", value_delimiter = ',')]
    pub additional_gids: Vec<String>,
    /// Add a capability to the bounding, effective and permitted sets
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// AF_UNIX socket that receives the pty master (with --tty)
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// AF_UNIX socket that receives a pidfd of the new process
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Detach from the process: exit once it runs
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the process's host pid here
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Pass N more fds (3 … 3+N-1) to the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run the process in (existing) sub-cgroups: [<controller>[,<controller>…]:]<path>
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// The container id, then the command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long)]
    pub keep: bool,
    #[arg(long = "no-subreaper", hide = true)]
    pub no_subreaper: bool,
}

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
    fn spec_rootless_is_a_boolean() {
        let cli = Cli::try_parse_from(n(&["ruse", "spec", "--rootless=true"])).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Spec { rootless: true, .. })
        ));
        let cli = Cli::try_parse_from(n(&["ruse", "spec", "--rootless=false"])).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Spec {
                rootless: false,
                ..
            })
        ));
    }

    fn n(v: &[&str]) -> Vec<String> {
        normalize(v.iter().map(|s| s.to_string()))
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

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["ruse", "spec", "--rootless"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Spec { rootless: true, .. })
        ));
    }

    #[test]
    fn parses_runc_style_create() {
        let cli = Cli::try_parse_from(n(&[
            "ruse",
            "--root",
            "/r",
            "--log",
            "/l",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "--preserve-fds",
            "2",
            "c1",
        ]))
        .unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        match cli.command {
            Some(Command::Create(c)) => {
                assert_eq!(c.id, "c1");
                assert_eq!(c.preserve_fds, 2);
            }
            other => panic!("{other:?}"),
        }
    }
}

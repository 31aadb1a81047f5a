//! The command line, flag for flag runc's (../shared/COMPAT.md). The Go-style argv
//! normalisation engines rely on (`-bundle x`, `--flag=true|false`) is in `argv`.

mod argv;

pub use argv::{log_target, normalize};
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

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: &[&str]) -> Vec<String> {
        normalize(v.iter().map(|s| s.to_string()))
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

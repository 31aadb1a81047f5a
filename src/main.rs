//! ruse: a daemonless OCI runtime, runc's CLI flag for flag. This file parses, dispatches,
//! and prints the one error line.
#![deny(unsafe_code)]

use clap::Parser;
use ruse::cli::{self, Cli, Command};
use ruse::commands::{self, Globals};
use ruse::{container, errors, init, log};

fn main() {
    let args = cli::normalize(std::env::args());
    // The container's init: no logging setup, no clap help, straight in.
    if args.get(1).map(String::as_str) == Some("init") {
        let fd = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(-1);
        init::main(fd);
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            if e.use_stderr() {
                let (path, json) = cli::log_target(&args);
                if path.is_some() {
                    // clap's first paragraph, on one line: "… not provided: <ID>".
                    let text = e.to_string();
                    let first: Vec<&str> = text
                        .lines()
                        .take_while(|l| !l.trim().is_empty())
                        .map(str::trim)
                        .collect();
                    let msg = first.join(" ");
                    log::init(path.as_deref(), json, false);
                    log::error_to_log_only(msg.trim_start_matches("error: "));
                }
            }
            std::process::exit(code);
        }
    };
    log::init(
        cli.log.as_deref(),
        cli.log_format == cli::LogFormat::Json,
        cli.debug,
    );
    let (verb, id) = describe(&cli.command);
    match dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let prefix = match id {
                // An over-long (invalid) id is shortened; the error itself says why.
                Some(id) if id.len() > 64 => {
                    format!("{verb} {}…: ", id.chars().take(64).collect::<String>())
                }
                Some(id) => format!("{verb} {id}: "),
                None if !verb.is_empty() => format!("{verb}: "),
                None => String::new(),
            };
            log::error(&format!("{prefix}{e:#}"));
            // runc's exec exits 255 on its own errors, so callers can tell them from the
            // process's exit status.
            std::process::exit(if verb == "exec" { 255 } else { 1 });
        }
    }
}

fn describe(c: &Option<Command>) -> (&'static str, Option<String>) {
    match c {
        Some(Command::Create(a)) => ("create", Some(a.id.clone())),
        Some(Command::Run(a)) => ("run", Some(a.create.id.clone())),
        Some(Command::Exec(a)) => ("exec", a.args.first().cloned()),
        Some(Command::Start { id }) => ("start", Some(id.clone())),
        Some(Command::State { id }) => ("state", Some(id.clone())),
        Some(Command::Kill { id, .. }) => ("kill", Some(id.clone())),
        Some(Command::Delete { id, .. }) => ("delete", Some(id.clone())),
        Some(Command::Pause { id }) => ("pause", Some(id.clone())),
        Some(Command::Resume { id }) => ("resume", Some(id.clone())),
        Some(Command::Update(a)) => ("update", Some(a.id.clone())),
        Some(Command::Events { id, .. }) => ("events", Some(id.clone())),
        Some(Command::Ps { args, .. }) => ("ps", args.first().cloned()),
        Some(Command::List { .. }) => ("list", None),
        Some(Command::Spec { .. }) => ("spec", None),
        _ => ("", None),
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    if cli.version {
        commands::info::version();
        return Ok(0);
    }
    if cli.systemd_cgroup {
        return Err(errors::not_supported(
            "--systemd-cgroup (cgroups are managed through cgroupfs only)",
        ));
    }
    let g = Globals {
        root: cli.root.clone().unwrap_or_else(container::default_root),
        rootless: ruse::rootless::parse_flag(cli.rootless.as_deref())?,
    };
    let Some(cmd) = cli.command else {
        anyhow::bail!("no command given: see ruse --help");
    };
    match cmd {
        Command::Create(a) => commands::create::create_detached(&g, &a).map(|_| 0),
        Command::Start { id } => {
            let (c, f) =
                container::Container::open_existing(&g.root, &id, container::Lock::Exclusive)?;
            commands::start::start(&c, &f).map(|_| 0)
        }
        Command::State { id } => commands::state::state(&g, &id).map(|_| 0),
        Command::Kill { id, signal, all } => {
            commands::kill::kill(&g, &id, signal.as_deref(), all).map(|_| 0)
        }
        Command::Delete { id, force } => commands::delete::delete(&g, &id, force).map(|_| 0),
        Command::Run(a) => commands::run::run(&g, &a),
        Command::Exec(a) => commands::exec::exec(&g, &a),
        Command::Pause { id } => commands::pause::pause(&g, &id).map(|_| 0),
        Command::Resume { id } => commands::pause::resume(&g, &id).map(|_| 0),
        Command::Update(a) => commands::update::update(&g, &a).map(|_| 0),
        Command::Events {
            id,
            interval,
            stats,
        } => commands::events::events(&g, &id, &interval, stats).map(|_| 0),
        Command::Ps { format, args } => commands::ps::ps(&g, format, &args).map(|_| 0),
        Command::List { format, quiet } => commands::info::list(&g, format, quiet).map(|_| 0),
        Command::Spec {
            bundle,
            rootless,
            network,
        } => commands::info::spec(bundle.as_deref(), rootless, network.as_deref()).map(|_| 0),
        Command::Features => commands::info::features().map(|_| 0),
        Command::Init { .. } => anyhow::bail!("init is internal to ruse"),
        Command::Other(v) => Err(errors::not_supported(format!(
            "command {:?}",
            v.first().map(String::as_str).unwrap_or("")
        ))),
    }
}

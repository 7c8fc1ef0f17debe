//! deploy/Dockerfile and deploy/wse.service start `wse serve` with flags
//! and `WSE_*` variables. Every one must be one `wse` accepts (so the files
//! cannot drift from the command line), and the configuration they make
//! must listen where the files say (EXPOSE, HEALTHCHECK) and keep its data
//! where they keep it (VOLUME, StateDirectory).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use clap::{CommandFactory, Parser};

use crate::{Cli, Command};

const DOCKERFILE: &str = include_str!("../../../deploy/Dockerfile");
const UNIT: &str = include_str!("../../../deploy/wse.service");
const WORKSPACE: &str = include_str!("../../../Cargo.toml");

/// Descriptors the server keeps besides connections and segment files
/// (`wse::server::fd_limit::RESERVE`).
const FD_RESERVE: usize = 64;

/// Every `WSE_*` variable `wse serve` reads, with its flag: the settings of
/// `wse serve` and the global ones (`--log-format`).
fn variables() -> BTreeMap<String, String> {
    let cli = Cli::command();
    let serve = cli
        .find_subcommand("serve")
        .expect("wse has a serve command")
        .clone();
    cli.get_arguments()
        .chain(serve.get_arguments())
        .filter_map(|a| {
            let env = a.get_env()?.to_str()?.to_owned();
            Some((env, format!("--{}", a.get_long()?)))
        })
        .collect()
}

/// The file's lines with comments dropped and `\`-continued lines joined.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

/// The arguments of `Dockerfile` instruction `name` (the last one given).
fn instruction(lines: &[String], name: &str) -> Option<String> {
    lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|rest| rest.trim().to_owned())
}

/// A Dockerfile exec-form (JSON) array.
fn json_array(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not a JSON array: {text}: {e}"))
}

/// `wse serve`'s command line as a file gives it: `argv` (the program,
/// `serve` and flags) with the `WSE_*` variables of `env` turned into
/// their flags, each variable checked against those `wse` reads.
fn command_line(argv: &[String], env: &[(String, String)]) -> Vec<String> {
    let program = Path::new(&argv[0]).file_name().and_then(|n| n.to_str());
    assert_eq!(program, Some("wse"), "{argv:?}");
    assert_eq!(argv.get(1).map(String::as_str), Some("serve"), "{argv:?}");
    let known = variables();
    let mut line: Vec<String> = argv.to_vec();
    for (name, value) in env {
        let flag = known
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not a variable of `wse serve`"));
        line.push(flag.clone());
        line.push(value.clone());
    }
    line
}

/// The configuration `wse serve` makes of `line`, as it would start.
fn config(line: &[String]) -> wse::ServerConfig {
    let cli = Cli::try_parse_from(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let Command::Serve(args) = cli.command else {
        panic!("not `wse serve`: {line:?}")
    };
    (*args).config().unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// Every `WSE_*` word in `text`.
fn variables_named(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("WSE_") && w.len() > "WSE_".len())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_dockerfile_runs_a_serve_that_accepts_its_settings() {
    let lines = logical_lines(DOCKERFILE);
    let env: Vec<(String, String)> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("ENV "))
        .flat_map(|l| l.split_whitespace())
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("ENV KEY=value");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let mut argv = json_array(&instruction(&lines, "ENTRYPOINT").expect("an ENTRYPOINT"));
    argv.extend(json_array(&instruction(&lines, "CMD").expect("a CMD")));
    let c = config(&command_line(&argv, &env));
    // Every WSE_* word, in comments too (a documented variable must exist).
    let known = variables();
    for name in variables_named(DOCKERFILE) {
        assert!(known.contains_key(&name), "{name} is not read by `wse`");
    }

    assert_eq!(
        c.host, "0.0.0.0",
        "listens on every interface in the container"
    );
    let http = c.http_listen.expect("the HTTP API is on");
    assert!(http.ip().is_unspecified(), "{http}");
    let exposed: BTreeSet<u16> = instruction(&lines, "EXPOSE")
        .expect("EXPOSE")
        .split_whitespace()
        .map(|p| p.parse().expect("a port"))
        .collect();
    assert_eq!(exposed, BTreeSet::from([c.port, http.port()]));

    let volume = json_array(&instruction(&lines, "VOLUME").expect("a VOLUME"));
    assert_eq!(c.data_dir.as_deref(), Some(Path::new(&volume[0])));
    assert_eq!(volume.len(), 1);

    let health = instruction(&lines, "HEALTHCHECK").expect("a HEALTHCHECK");
    let probe = format!("/dev/tcp/127.0.0.1/{}", http.port());
    assert!(health.contains(&probe), "{health} should reach {http}");
    assert!(health.contains("GET /health "), "{health}");

    let user = instruction(&lines, "USER").expect("a USER");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "{user}"
    );

    let rust = WORKSPACE
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("the workspace's rust-version")
        .trim_matches('"');
    let from = format!("FROM rust:{rust}-");
    assert!(lines.iter().any(|l| l.starts_with(&from)), "{from}");
}

/// The `key=value` lines of a unit file, in order.
fn unit_entries(text: &str) -> Vec<(String, String)> {
    logical_lines(text)
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn the_unit_runs_a_serve_that_accepts_its_settings() {
    let entries = unit_entries(UNIT);
    let get = |key: &str| {
        entries
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let env: Vec<(String, String)> = get("Environment")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .filter_map(|kv| kv.trim_matches('"').split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let argv: Vec<String> = get("ExecStart")[0]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let c = config(&command_line(&argv, &env));
    let known = variables();
    for name in variables_named(UNIT) {
        assert!(known.contains_key(&name), "{name} is not read by `wse`");
    }

    let state = get("StateDirectory");
    assert_eq!(state.len(), 1, "one StateDirectory");
    let data = Path::new("/var/lib").join(state[0]);
    assert_eq!(c.data_dir.as_deref(), Some(data.as_path()));
    assert_eq!(get("WorkingDirectory"), [data.to_str().expect("UTF-8")]);

    let nofile: usize = get("LimitNOFILE")[0].parse().expect("a number");
    let needed = c.max_connections + c.max_pending_handshakes + c.log.max_open_files + FD_RESERVE;
    assert!(nofile >= needed, "LimitNOFILE={nofile} < {needed}");

    let stop: u64 = get("TimeoutStopSec")[0]
        .trim_end_matches('s')
        .parse()
        .expect("seconds");
    // `stop`: up to 3 s for clients, 3 s for a cluster's shards, 1 s for
    // the runtime, then the log's last fsync.
    assert!(stop >= 10, "TimeoutStopSec={stop}");
    assert_eq!(get("KillSignal"), ["SIGTERM"]);
    assert!(get("ExecReload")[0].contains("-HUP $MAINPID"));
    assert_eq!(get("CapabilityBoundingSet"), [""]);
    assert_eq!(get("DynamicUser"), ["yes"]);
    assert_eq!(get("ProtectSystem"), ["strict"]);
    assert!(get("EnvironmentFile")[0].ends_with("wse.env"));
    // The log reads the boot id from /proc/sys to tell an OS crash from a
    // process crash; ProcSubset=pid would hide it.
    assert!(get("ProcSubset").is_empty(), "ProcSubset hides the boot id");
}

#[test]
fn an_unknown_variable_or_flag_is_refused() {
    let argv = ["/usr/local/bin/wse", "serve"].map(String::from);
    let bad = std::panic::catch_unwind(|| {
        command_line(&argv, &[("WSE_DATADIR".into(), "/x".into())]);
    });
    assert!(bad.is_err(), "a misspelt variable must fail the check");
    let line = ["wse", "serve", "--data-directory", "/x"].map(String::from);
    assert!(std::panic::catch_unwind(|| config(&line)).is_err());
}

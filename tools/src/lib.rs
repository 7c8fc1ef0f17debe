//! The `wse` command: a thin command line over the WSE crates.
//!
//! A library so that the same command line runs from the `wse` binary and
//! from the Python package (`python -m wse_server ...`): one parser, one
//! set of defaults, whichever way it is started.
//!
//! Every subcommand parses its arguments and calls a library crate's public
//! API; none of them holds storage or protocol logic of its own.
//!
//! # Layout
//!
//! - `lib.rs`: the command tree, the [`Run`] trait and dispatch ([`run`]);
//!   `main.rs` is the binary's three lines.
//! - `error`: [`error::CliError`], the one error type of every command,
//!   and its exit status.
//! - `output`: buffered stdout that treats a closed pipe as a clean stop,
//!   and timestamp formatting.
//! - `log_cmd`: `wse log topics|inspect|dump|tail|verify|append`, one file
//!   per subcommand, on top of `wse_log::DirReader` (read-only, lock-free)
//!   and `wse_log::Log` (append).
//! - `serve`: `wse serve`, the standalone server (and a cluster node with
//!   `--node-id`, through `wse-replication`).
//! - `cluster_cmd`: `wse cluster status`, asked of a node's peer port.
//! - `replay`: `wse replay`, a range of a topic's history (from a data
//!   directory or a server's HTTP API) published again into a live server
//!   (HTTP batches or WebSocket publishes), stdout or a file: paced,
//!   checkpointed, resumable without duplicates.
//! - `token_cmd`: `wse token`, a JWT the server accepts, signed with the
//!   `wse serve` key (HS256 secret, or the private half of an ES256/RS256
//!   key), through `wse::auth::encode`.
//! - `cert_cmd`: `wse cert ca|issue`, a test CA and P-256 certificates for
//!   TLS and cluster mTLS (rcgen).
//! - `serve_bench_app`: the counting app behind `wse serve --bench-app`
//!   (hidden), which `wse bench inbound` measures.
//! - `bench`: `wse bench ...`, the figures of docs/BENCHMARKS.md:
//!   - `wse bench log`: append and read throughput of the log under each
//!     durability policy, against the disk's own write bandwidth;
//!   - `wse bench fanout`: one publisher to 100 / 1,000 / 10,000
//!     subscribers of a topic on a `wse serve` in another process:
//!     deliveries/s, loss and duplicates (checked by offset), latency
//!     p50/p99/max, server CPU per delivery and memory;
//!   - `wse bench inbound`: N clients sending as fast as they can to an
//!     app draining the event queue (`wse serve --bench-app`): messages/s,
//!     loss (must be 0: back-pressure, not drops), server CPU per message;
//!   - `wse bench idle`: server memory per idle connection, and how much
//!     comes back once they close.
//!
//! Exit status: 0 on success, 1 when a command found a problem in the data
//! (`verify` problems, a corrupt record in `dump`/`tail`), 2 for usage and
//! I/O errors (clap's own usage errors exit 2 as well).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

use clap::{CommandFactory, FromArgMatches};

/// A parsed subcommand that can run itself.
///
/// Implemented by every subcommand's arguments, and by the enums that group
/// subcommands (through [`subcommands!`]), so dispatch is one `run` call at
/// every level of the tree.
trait Run {
    /// Run the command; the exit status on success (0, or 1 when the
    /// command reports problems it found), a [`error::CliError`] otherwise.
    fn run(self) -> Result<u8, error::CliError>;
}

/// Declares a clap subcommand enum whose variants each wrap arguments that
/// implement [`Run`], together with the [`Run`] impl dispatching to them:
/// adding a subcommand is one variant line (plus its doc comment).
macro_rules! subcommands {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($args:ty), )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, clap::Subcommand)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant($args), )*
        }

        impl $crate::Run for $name {
            fn run(self) -> Result<u8, $crate::error::CliError> {
                match self {
                    $( Self::$variant(args) => $crate::Run::run(args), )*
                }
            }
        }
    };
}

mod bench;
mod cert_cmd;
mod cluster_cmd;
mod error;
mod log_cmd;
mod output;
mod replay;
mod serve;
mod serve_bench_app;
mod time_arg;
mod token_cmd;

/// WSE: a log-centric real-time WebSocket server.
#[derive(Debug, clap::Parser)]
#[command(name = "wse", version, propagate_version = true)]
struct Cli {
    /// How log lines on stderr look: `text` for people, `json` (one object
    /// per line) for collectors. `RUST_LOG` picks what is logged.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "WSE_LOG_FORMAT"
    )]
    log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The format of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// `2026-12-07T18:00:00Z  WARN message key=value`.
    Text,
    /// `{"timestamp":...,"level":"WARN","fields":{...},"target":...}`.
    Json,
}

subcommands! {
    /// The top-level commands.
    enum Command {
        /// Run the server (defaults: 127.0.0.1:5007, data in ./wse-data, no
        /// auth). Flags override `WSE_*` variables, which override the
        /// `--config` TOML file.
        Serve(Box<serve::ServeArgs>),
        /// Inspect, verify, dump and follow a data directory's logs (safe
        /// beside a running server), or append to a stopped one.
        #[command(subcommand)]
        Log(log_cmd::LogCommand),
        /// Benchmarks: the log, fan-out, inbound messages, idle connections.
        #[command(subcommand)]
        Bench(bench::BenchCommand),
        /// Look at a running cluster through a node's peer port.
        #[command(subcommand)]
        Cluster(cluster_cmd::ClusterCommand),
        /// Publish a range of a topic's history again: into a live server
        /// (HTTP or WebSocket), stdout or a file; paced, resumable.
        Replay(Box<replay::ReplayArgs>),
        /// Mint a JWT that `wse serve` with the same key accepts (for
        /// tests and the docs' examples); prints the token alone.
        Token(token_cmd::TokenArgs),
        /// Make a test certificate authority and the P-256 certificates it
        /// signs (TLS on the client port, cluster mTLS).
        #[command(subcommand)]
        Cert(cert_cmd::CertCommand),
    }
}

/// How to start this command line again (`wse bench` runs `wse serve` in
/// a child process): the program and the arguments before the subcommand.
/// Set by [`run`]; the running executable when unset.
static SELF_COMMAND: OnceLock<(PathBuf, Vec<OsString>)> = OnceLock::new();

/// The program and leading arguments that start this command line again.
fn self_command() -> Option<&'static (PathBuf, Vec<OsString>)> {
    SELF_COMMAND.get()
}

/// Parse `args` (the first is the program name, as in `std::env::args_os`),
/// run the command and return its exit status: 0 on success, 1 when a
/// command found a problem in the data, 2 for usage and I/O errors.
///
/// `self_command` is how a child process starts this command line again
/// (the `wse` binary: itself; Python: the interpreter with `-m
/// wse_server`). Errors are printed to stderr, as the binary prints them.
pub fn run<I, T>(args: I, self_command: (PathBuf, Vec<OsString>)) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut command = Cli::command().mut_subcommand("serve", serve::with_defaults_in_help);
    let parsed = command
        .try_get_matches_from_mut(args)
        .and_then(|matches| Cli::from_arg_matches(&matches))
        .map_err(|e| e.format(&mut command));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" that print to stdout.
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    let _ = SELF_COMMAND.set(self_command);
    init_tracing(cli.log_format);
    match cli.command.run() {
        Ok(code) => code,
        // The reader went away (`wse log dump ... | head`): a normal stop.
        Err(error::CliError::BrokenPipe) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// What is logged unless `RUST_LOG` says otherwise: our own crates at
/// info (start, stop, listeners, storage recovering, membership), every
/// dependency at warn (their info lines are noise to an operator).
const DEFAULT_LOG_FILTER: &str = "warn,wse=info,wse_log=info,wse_replication=info,wse_tools=info";

/// Log lines go to stderr in `format`; colour codes only when stderr is a
/// terminal (never into a file or a pipe).
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A host process (Python) may have set a subscriber already.
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
}

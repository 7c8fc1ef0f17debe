//! The server under test, in a process of its own: `wse serve` on a free
//! loopback port with a scratch data directory, sampled through /proc and
//! stopped with SIGTERM (its normal shutdown) when the run is over.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use super::proc_stats::{self, ProcSample};
use crate::error::CliError;

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long it may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Tries with a fresh port when another process took the one we picked.
const BIND_TRIES: usize = 3;

/// Where and how the server and the load generator run (flags shared by
/// the connection benchmarks).
#[derive(Clone, Debug, clap::Args)]
pub struct Setup {
    /// The `wse` binary that runs the server [default: this one].
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
    /// Where to create the server's data directory, removed afterwards
    /// [default: the current directory, whose disk a real server would
    /// use; /tmp is often memory].
    #[arg(long, value_name = "D")]
    pub dir: Option<PathBuf>,
    /// Tokio worker threads of the server.
    #[arg(long, value_name = "T", default_value_t = 2)]
    pub server_threads: usize,
    /// Tokio worker threads of the load generator.
    #[arg(long, value_name = "T", default_value_t = 2)]
    pub client_threads: usize,
    /// The server's `--write-coalesce-us`: how long topic messages may
    /// wait to share one write (0: write at once).
    #[arg(long, value_name = "US", default_value_t = 0)]
    pub write_coalesce_us: u64,
}

impl Setup {
    /// Reject thread counts of 0.
    pub fn validate(&self) -> Result<(), CliError> {
        if self.server_threads == 0 || self.client_threads == 0 {
            return Err(CliError::Usage(
                "--server-threads and --client-threads must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The load generator's runtime.
    pub fn client_runtime(&self) -> Result<tokio::runtime::Runtime, CliError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.client_threads)
            .thread_name("wse-bench-client")
            .enable_all()
            .build()
            .map_err(|e| CliError::io("start the load generator's runtime", e))
    }
}

/// How one attempt to start the server went.
enum Attempt {
    /// It accepts connections at this address; its stderr goes to the file.
    Started(Child, SocketAddr, PathBuf),
    /// It exited because another process took its port meanwhile (worth
    /// another try).
    PortTaken(CliError),
}

/// A running `wse serve`.
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    /// Holds the data directory and the server's stderr; removed on drop.
    scratch: Option<tempfile::TempDir>,
    stderr: PathBuf,
}

impl ServerProcess {
    /// Start `wse serve` with the benchmark settings plus `extra` flags,
    /// and wait until it accepts connections.
    ///
    /// The settings lift what would throttle a benchmark (the inbound rate
    /// limit, the connection cap) and let clients publish. `WSE_*`
    /// variables of this process are not passed on, so they cannot change
    /// what is measured.
    pub fn start(setup: &Setup, extra: &[&str]) -> Result<Self, CliError> {
        let base = setup.dir.clone().unwrap_or_else(|| PathBuf::from("."));
        let scratch = tempfile::Builder::new()
            .prefix("wse-bench-server-")
            .tempdir_in(&base)
            .map_err(|e| CliError::io(format!("create a directory in {}", base.display()), e))?;
        let mut last = None;
        for _ in 0..BIND_TRIES {
            match Self::spawn(setup, extra, &scratch)? {
                Attempt::Started(child, addr, stderr) => {
                    return Ok(Self {
                        child,
                        addr,
                        scratch: Some(scratch),
                        stderr,
                    });
                }
                Attempt::PortTaken(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| CliError::Bench("the server did not start".into())))
    }

    /// One attempt on a fresh port.
    fn spawn(
        setup: &Setup,
        extra: &[&str],
        scratch: &tempfile::TempDir,
    ) -> Result<Attempt, CliError> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stderr = scratch.path().join("server.stderr");
        let err_file = File::create(&stderr)
            .map_err(|e| CliError::io(format!("create {}", stderr.display()), e))?;
        let mut cmd = serve_command(setup)?;
        cmd.args(["--port", &port.to_string()])
            .arg("--data-dir")
            .arg(scratch.path().join("data"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file);
        let mut child = cmd.spawn().map_err(|e| CliError::io("run wse serve", e))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| CliError::io("wait for the server", e))?
            {
                let said = tail(&stderr);
                let e = CliError::Bench(format!("the server exited ({status}) at start: {said}"));
                return if said.contains("bind") {
                    Ok(Attempt::PortTaken(e))
                } else {
                    Err(e)
                };
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(Attempt::Started(child, addr, stderr));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CliError::Bench(format!(
                    "the server did not accept connections within {} s: {}",
                    START_TIMEOUT.as_secs(),
                    tail(&stderr)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its CPU time and memory now; an error if it has exited.
    pub fn sample(&mut self) -> Result<ProcSample, CliError> {
        self.check_alive()?;
        proc_stats::sample(Some(self.child.id()))
    }

    fn check_alive(&mut self) -> Result<(), CliError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(CliError::Bench(format!(
                "the server exited during the run ({status}): {}",
                tail(&self.stderr)
            ))),
            Err(e) => Err(CliError::io("check on the server", e)),
        }
    }

    /// SIGTERM, wait for it to exit (kill it after a while), and remove
    /// its data directory. An error if it had already exited.
    pub fn stop(mut self) -> Result<(), CliError> {
        self.check_alive()?;
        let pid = Pid::from_child(&self.child);
        kill_process(pid, Signal::TERM)
            .map_err(|e| CliError::io("send SIGTERM to the server", e.into()))?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    eprintln!(
                        "warning: the server did not stop within {} s of SIGTERM; killed",
                        STOP_TIMEOUT.as_secs()
                    );
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Err(e) => return Err(CliError::io("wait for the server to stop", e)),
            }
        }
        if let Some(scratch) = self.scratch.take() {
            let path = scratch.path().to_owned();
            scratch
                .close()
                .map_err(|e| CliError::io(format!("remove {}", path.display()), e))?;
        }
        Ok(())
    }
}

impl Drop for ServerProcess {
    /// A run that failed half-way leaves no server behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `wse serve` on 127.0.0.1 with the benchmark settings (no port, data
/// directory or standard streams yet): the binary of --server-bin or this
/// one, clients may publish, no inbound rate limit or connection cap, the
/// worker threads and write coalescing of `setup`. `WSE_*` variables of
/// this process are not passed on, so they cannot change what is measured.
pub fn serve_command(setup: &Setup) -> Result<Command, CliError> {
    let (bin, leading) = match (&setup.server_bin, crate::self_command()) {
        (Some(b), _) => (b.clone(), Vec::new()),
        (None, Some((program, leading))) => (program.clone(), leading.clone()),
        (None, None) => (
            std::env::current_exe()
                .map_err(|e| CliError::io("find the wse binary to run the server", e))?,
            Vec::new(),
        ),
    };
    let mut cmd = Command::new(bin);
    cmd.args(leading)
        .arg("serve")
        .args(["--host", "127.0.0.1"])
        .args(["--client-publish", "true"])
        .args(["--http-listen", "off"])
        .args(["--inbound-rate", "1e9", "--inbound-burst", "1e9"])
        .args(["--max-connections", "200000"])
        // The clients all connect from 127.0.0.1, many at once.
        .args(["--max-pending-handshakes-per-ip", "0"])
        .args(["--worker-threads", &setup.server_threads.to_string()])
        .args(["--write-coalesce-us", &setup.write_coalesce_us.to_string()]);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("WSE_") {
            cmd.env_remove(key);
        }
    }
    // The load generator is one client per publisher: no byte budget
    // either. As variables, not flags, so that a `--server-bin` built
    // before these options existed still starts (it ignores them).
    cmd.env("WSE_INBOUND_BYTES_RATE", "1073741824")
        .env("WSE_INBOUND_BYTES_BURST", "1073741824");
    Ok(cmd)
}

/// A loopback port nobody listens on right now (bound and released; the
/// caller retries if another process takes it in between).
pub fn free_port() -> Result<u16, CliError> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| CliError::io("find a free port on 127.0.0.1", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| CliError::io("find a free port on 127.0.0.1", e))
}

/// The last lines the server wrote to stderr.
pub fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    let joined = lines.into_iter().rev().collect::<Vec<_>>().join(" | ");
    if joined.is_empty() {
        "(nothing on stderr)".into()
    } else {
        joined
    }
}

//! `wse bench ...`: throughput figures for docs/BENCHMARKS.md.
//!
//! # Layout
//!
//! - `log`: `wse bench log`, the log's append and read paths.
//! - `disk`: the disk's sequential write bandwidth (what `dd ...
//!   conv=fdatasync` reports), the yardstick for append throughput.
//! - this file: the subcommand list and [`Machine`], printed with every
//!   result.

mod disk;
mod log;

use serde::Serialize;

subcommands! {
    /// The `wse bench` subcommands.
    pub enum BenchCommand {
        /// Append and read throughput of the log under each durability
        /// policy, against the disk's own write bandwidth.
        Log(log::LogBenchArgs),
    }
}

/// The machine a benchmark ran on, printed with its figures.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPUs available to the process.
    pub nproc: usize,
    /// The CPU's model name from /proc/cpuinfo, if readable.
    pub cpu_model: Option<String>,
}

impl Machine {
    /// Describe this machine.
    pub fn detect() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            });
        Self {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} CPUs, {}",
            self.nproc,
            self.cpu_model.as_deref().unwrap_or("unknown model")
        )
    }
}

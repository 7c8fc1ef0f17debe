//! What the kernel says about a process: CPU time and resident memory
//! from /proc, and the open-file limit the connection benchmarks need
//! raised.

use serde::Serialize;

use crate::error::CliError;

/// CPU time and memory of a process at one moment.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ProcSample {
    /// User + system CPU time of all its threads, in seconds (kernel clock
    /// ticks, usually 10 ms each).
    pub cpu_seconds: f64,
    /// Resident memory (VmRSS), bytes.
    pub rss_bytes: u64,
    /// Largest resident memory so far (VmHWM), bytes.
    pub peak_rss_bytes: u64,
}

/// Sample process `pid`, or this process with `None`.
pub fn sample(pid: Option<u32>) -> Result<ProcSample, CliError> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_owned(),
    };
    let read = |file: &str| {
        let path = format!("{dir}/{file}");
        std::fs::read_to_string(&path).map_err(|e| CliError::io(format!("read {path}"), e))
    };
    let stat = read("stat")?;
    let status = read("status")?;
    let ticks = cpu_ticks(&stat)
        .ok_or_else(|| CliError::Bench(format!("cannot parse {dir}/stat: {stat:?}")))?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Ok(ProcSample {
        cpu_seconds: ticks as f64 / hz as f64,
        rss_bytes: status_kib(&status, "VmRSS:").unwrap_or(0) * 1024,
        peak_rss_bytes: status_kib(&status, "VmHWM:").unwrap_or(0) * 1024,
    })
}

/// utime + stime (fields 14 and 15) of a /proc/<pid>/stat line. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted after its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 is index 0
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `Key:   123 kB` line of /proc/<pid>/status.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Raise this process's soft limit of open files to its hard limit (the
/// server started from here inherits it), and check that `needed`
/// descriptors fit. Returns the limit now in force.
pub fn raise_open_file_limit(needed: u64) -> Result<u64, CliError> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    // An unlimited hard limit still stops at the kernel's nr_open.
    let target = limit.maximum.unwrap_or(1 << 20);
    if limit.current.is_some_and(|c| c < target) {
        limit.current = Some(target);
        setrlimit(Resource::Nofile, limit)
            .map_err(|e| CliError::io("raise the open-file limit", e.into()))?;
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    if now < needed {
        return Err(CliError::Usage(format!(
            "{needed} open files are needed but the limit is {now} (hard limit \
             included); raise it (ulimit -Hn, /etc/security/limits.conf) or use fewer \
             connections"
        )));
    }
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_memory() {
        let stat = "42 (a (weird) name) S 1 42 42 0 -1 4194304 100 0 0 0 7 5 0 0 20 0 3 0";
        assert_eq!(cpu_ticks(stat), Some(12));
        assert_eq!(cpu_ticks("garbage"), None);
        let status = "Name:\twse\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(1024));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        let me = sample(None).unwrap();
        assert!(me.rss_bytes > 0 && me.peak_rss_bytes >= me.rss_bytes);
        assert!(raise_open_file_limit(16).unwrap() >= 16);
    }
}

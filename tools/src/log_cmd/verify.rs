//! `wse log verify DIR [--json]`: every segment header, record CRC, offset
//! and epoch, and every index entry; then every damaged range of offsets
//! (topic, segment file, byte position, missing offsets, resume offset).

use serde::Serialize;
use wse_log::VerifyReport;

use super::{DirArg, open_reader};
use crate::Run;
use crate::error::CliError;
use crate::output::Out;

/// Check a data directory; print each bad location and each damaged range
/// on its own line, and a summary. Exit status 0 when clean, 1 when
/// anything is wrong.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    dir: DirArg,
    /// One JSON document: the report with `clean`, every problem and every
    /// damaged range (`damaged`: topic, segment, file_position,
    /// first_missing, resume_at, reason).
    #[arg(long)]
    json: bool,
}

/// The report as `verify --json` prints it.
#[derive(Serialize)]
struct VerifyJson<'a> {
    clean: bool,
    #[serde(flatten)]
    report: &'a VerifyReport,
}

impl Run for VerifyArgs {
    fn run(self) -> Result<u8, CliError> {
        let reader = open_reader(&self.dir.dir)?;
        let report = reader.verify()?;
        let mut out = Out::stdout();
        if self.json {
            out.json_pretty(&VerifyJson {
                clean: report.is_clean(),
                report: &report,
            })?;
        } else {
            for p in &report.problems {
                out.line(format_args!("{p}"))?;
            }
            for d in &report.damaged {
                out.line(format_args!("damaged: {d}"))?;
            }
            let verdict = if report.is_clean() {
                "clean".to_owned()
            } else {
                format!(
                    "{}, {}",
                    count(report.problems.len(), "problem"),
                    count(report.damaged.len(), "damaged range")
                )
            };
            out.line(format_args!(
                "checked {} topics, {} segments, {} records, {} bytes: {verdict}",
                report.topics, report.segments, report.records, report.bytes
            ))?;
        }
        out.flush()?;
        Ok(if report.is_clean() { 0 } else { 1 })
    }
}

/// `1 problem`, `3 problems`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

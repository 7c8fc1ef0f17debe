//! `wse log verify DIR [--json]`: every segment header, record CRC, offset
//! and epoch, and every index entry.

use serde::Serialize;
use wse_log::VerifyReport;

use super::{DirArg, open_reader};
use crate::Run;
use crate::error::CliError;
use crate::output::Out;

/// Check a data directory; print each bad location on its own line and a
/// summary. Exit status 0 when clean, 1 when anything is wrong.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    dir: DirArg,
    /// One JSON document: the report with `clean` and every problem.
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
            let verdict = match report.problems.len() {
                0 => "clean".to_owned(),
                1 => "1 problem".to_owned(),
                n => format!("{n} problems"),
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

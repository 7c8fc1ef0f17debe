//! `wse log dump DIR TOPIC [--from N] [--to N] [--since T] [--until T]
//! [--limit N] [--format json|raw]`.

use super::range::RangeArgs;
use super::records::{self, RecordFormat};
use super::{DirArg, find_topic, open_reader};
use crate::Run;
use crate::error::CliError;
use crate::output::Out;

/// Print a topic's records, oldest first, as they are stored when the
/// command starts. A corrupt record ends the output with an error naming
/// its segment file and byte position (exit status 1).
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The topic name.
    topic: String,
    /// TOPIC names one of WSE's own streams, as `topics --all` shows it
    /// (`presence:lobby`, `node`).
    #[arg(long)]
    internal: bool,
    #[command(flatten)]
    range: RangeArgs,
    /// Print at most N records (default: all).
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: RecordFormat,
}

impl Run for DumpArgs {
    fn run(mut self) -> Result<u8, CliError> {
        self.topic = super::stored_name(&self.topic, self.internal);
        let reader = open_reader(&self.dir.dir)?;
        let topic = find_topic(&reader, &self.dir.dir, &self.topic)?;
        let (mut from, to) = self.range.resolve(&reader, &topic)?;
        let mut out = Out::stdout();
        let result = records::print_range(
            &mut out,
            &reader,
            &topic,
            &mut from,
            to,
            self.limit,
            self.format,
        );
        // What came before an error is printed before the error is.
        out.flush()?;
        result?;
        Ok(0)
    }
}

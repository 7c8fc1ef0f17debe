//! `wse log dump DIR TOPIC [--from N] [--limit N] [--format json|raw]`.

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
    /// First offset to print (default: the oldest stored).
    #[arg(long, value_name = "N")]
    from: Option<u64>,
    /// Print at most N records (default: all).
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: RecordFormat,
}

impl Run for DumpArgs {
    fn run(self) -> Result<u8, CliError> {
        let reader = open_reader(&self.dir.dir)?;
        let topic = find_topic(&reader, &self.dir.dir, &self.topic)?;
        let mut from = self.from.unwrap_or(topic.first_offset);
        if from < topic.first_offset {
            return Err(CliError::Usage(format!(
                "--from {from}: topic {:?} keeps offsets {}..{} (older ones were removed by retention)",
                topic.name, topic.first_offset, topic.next_offset
            )));
        }
        let mut out = Out::stdout();
        let result = records::print_range(
            &mut out,
            &reader,
            &topic,
            &mut from,
            topic.next_offset,
            self.limit,
            self.format,
        );
        // What came before an error is printed before the error is.
        out.flush()?;
        result?;
        Ok(0)
    }
}

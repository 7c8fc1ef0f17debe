//! What a replay tells the person running it, on stderr: a progress bar
//! (records, rate, ETA) when stderr is a terminal, a plain line every few
//! seconds otherwise (a log file, CI), and one summary line at the end in
//! both cases. Standard output stays free for `--to-stdout`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Counts of a replay so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Records acknowledged by the destination.
    pub(crate) published: u64,
    /// Presence and control records, not published.
    pub(crate) not_messages: u64,
    /// Messages a publish cannot carry, not published.
    pub(crate) not_publishable: u64,
}

impl Counts {
    /// Source records dealt with.
    pub(crate) fn done(&self) -> u64 {
        self.published + self.not_messages + self.not_publishable
    }
}

/// The progress display of one replay.
pub(crate) struct Progress {
    /// The bar, on a terminal.
    bar: Option<ProgressBar>,
    /// Source records in the range.
    total: u64,
    /// When the replay started, for the plain lines' rate.
    started: Instant,
    /// When the last plain line was printed.
    last_line: Instant,
}

impl Progress {
    /// A display for `total` records: a bar when stderr is a terminal and
    /// `quiet` is not set.
    pub(crate) fn new(total: u64, quiet: bool) -> Self {
        let now = Instant::now();
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let style = ProgressStyle::with_template(
                "{bar:40} {human_pos}/{human_len} records  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(style)
        });
        Self {
            bar,
            total,
            started: now,
            last_line: now,
        }
    }

    /// Show `counts`; `quiet` turns the plain lines off.
    pub(crate) fn update(&mut self, counts: Counts, quiet: bool) {
        if let Some(bar) = &self.bar {
            bar.set_position(counts.done());
            return;
        }
        let now = Instant::now();
        if quiet || now.duration_since(self.last_line) < LINE_EVERY {
            return;
        }
        self.last_line = now;
        let secs = now.duration_since(self.started).as_secs_f64();
        let rate = counts.done() as f64 / secs.max(1e-9);
        let left = self.total.saturating_sub(counts.done());
        let eta = if rate > 0.0 {
            format!("{:.0} s", left as f64 / rate)
        } else {
            "unknown".into()
        };
        eprintln!(
            "replay: {}/{} records ({:.1} %), {rate:.0} records/s, ETA {eta}",
            counts.done(),
            self.total,
            100.0 * counts.done() as f64 / self.total.max(1) as f64,
        );
    }

    /// Remove the bar before the summary line.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

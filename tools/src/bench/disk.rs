//! The disk's sequential write bandwidth, measured the way
//! `dd if=/dev/zero of=F bs=1M count=512 conv=fdatasync` does: write in
//! 1 MiB chunks, fdatasync once at the end, and count the time of both.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::error::CliError;

/// Bytes per write, like `bs=1M`.
const CHUNK: usize = 1 << 20;

/// What the measurement found.
#[derive(Clone, Debug, Serialize)]
pub struct DiskBandwidth {
    /// Bytes written.
    pub bytes: u64,
    /// Time of the writes and the final fdatasync.
    pub seconds: f64,
    /// Bytes per second / 10^6, as dd reports it.
    pub mb_per_sec: f64,
}

/// Write `mib` MiB of zeros to a new file in `dir`, fdatasync it, and
/// remove it again.
pub fn measure(dir: &Path, mib: usize) -> Result<DiskBandwidth, CliError> {
    let path = dir.join("disk-bandwidth.tmp");
    let chunk = vec![0u8; CHUNK];
    let result = (|| {
        let mut file = File::create(&path)?;
        let start = Instant::now();
        for _ in 0..mib {
            file.write_all(&chunk)?;
        }
        file.sync_data()?;
        Ok(start.elapsed())
    })();
    let removed = std::fs::remove_file(&path);
    let elapsed = result.map_err(|e| CliError::io(format!("write {}", path.display()), e))?;
    removed.map_err(|e| CliError::io(format!("remove {}", path.display()), e))?;
    let bytes = (mib * CHUNK) as u64;
    let seconds = elapsed.as_secs_f64();
    Ok(DiskBandwidth {
        bytes,
        seconds,
        mb_per_sec: bytes as f64 / seconds.max(1e-9) / 1e6,
    })
}

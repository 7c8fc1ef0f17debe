//! The framed tail of a topic: its newest messages as ready-to-send
//! WebSocket frames, in shared runs.
//!
//! Every batch of records the log makes visible becomes one run: the
//! frames of the batch laid out back to back in one buffer. A subscriber
//! holds only a cursor (the next offset it needs); sending what it missed
//! is slicing runs, one `Bytes` per run however many frames it holds, so a
//! single vectored write carries many frames to a connection without any
//! per-connection copy.
//!
//! A run also has a compressed form (per-message deflate, RFC 7692), built
//! the first time a subscriber that negotiated deflate needs the run and
//! then shared the same way: compression costs once per broadcast, not once
//! per delivery.

use std::collections::VecDeque;
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use wse_log::Epoch;

use crate::ws::{deflate, frame};

/// One batch of consecutive frames.
struct Run {
    /// Offset of the first frame.
    first: u64,
    /// The frames, back to back.
    data: Bytes,
    /// End position of each frame in `data`.
    ends: Vec<u32>,
    /// Bytes pushed into the ring before this run (for lag in bytes).
    base_total: u64,
    /// The same frames for deflate subscribers, built on first use;
    /// `None` inside when no frame of the run was compressed.
    deflated: OnceLock<Option<Frames>>,
}

/// Frames back to back, and where each ends.
struct Frames {
    data: Bytes,
    ends: Vec<u32>,
}

impl Frames {
    /// Start position of the `i`th frame (or `data.len()` past the last).
    fn pos(&self, i: usize) -> usize {
        match i {
            0 => 0,
            n => self.ends[n - 1] as usize,
        }
    }
}

impl Run {
    fn end(&self) -> u64 {
        self.first + self.ends.len() as u64
    }

    /// Start position of the frame of `offset` (or `data.len()` at the end).
    fn pos(&self, offset: u64) -> usize {
        match offset - self.first {
            0 => 0,
            n => self.ends[n as usize - 1] as usize,
        }
    }

    /// The bytes of frames `from..to`, compressed for a deflate subscriber
    /// when `compress_from` says so (frames of at least that many payload
    /// bytes that shrink).
    fn slice(&self, from: u64, to: u64, compress_from: Option<usize>) -> Bytes {
        if let Some(min) = compress_from
            && let Some(packed) = self.deflated.get_or_init(|| self.deflate(min))
        {
            let (a, b) = ((from - self.first) as usize, (to - self.first) as usize);
            return packed.data.slice(packed.pos(a)..packed.pos(b));
        }
        self.data.slice(self.pos(from)..self.pos(to))
    }

    /// The run's frames with every text payload of at least `min` bytes
    /// compressed (RSV1 set); `None` when none was.
    fn deflate(&self, min: usize) -> Option<Frames> {
        let mut data = BytesMut::new();
        let mut ends = Vec::with_capacity(self.ends.len());
        let mut any = false;
        let mut start = 0usize;
        for &end in &self.ends {
            let plain = self.data.slice(start..end as usize);
            start = end as usize;
            let payload = frame::payload_of(&plain);
            match (payload.len() >= min)
                .then(|| deflate::compress(&payload))
                .flatten()
            {
                Some(packed) => {
                    any = true;
                    frame::put_compressed_header(&mut data, frame::TEXT, packed.len());
                    data.extend_from_slice(&packed);
                }
                None => data.extend_from_slice(&plain),
            }
            ends.push(data.len() as u32);
        }
        any.then(|| Frames {
            data: data.freeze(),
            ends,
        })
    }
}

/// A subscriber's cursor is older than anything the ring holds: the
/// frames must come from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behind;

/// The framed tail of one topic.
pub struct FrameRing {
    runs: VecDeque<Run>,
    first: u64,
    head: u64,
    frames: usize,
    capacity: usize,
    total: u64,
    /// The history (the topic's epoch) the frames belong to; `None` until
    /// the first record of one arrives. Offsets mean nothing across
    /// histories: a deleted topic starts again at offset 0.
    epoch: Option<Epoch>,
    /// Bumped by every [`FrameRing::restart`]. A cursor counts offsets of
    /// the generation it was placed in; one of an older generation starts
    /// the current history from its beginning (see `Sub::follow`).
    generation: u64,
}

impl FrameRing {
    /// An empty ring whose next frame will have offset `head`, keeping at
    /// least `capacity` frames.
    pub fn new(head: u64, capacity: usize) -> Self {
        Self {
            runs: VecDeque::new(),
            first: head,
            head,
            frames: 0,
            capacity: capacity.max(1),
            total: 0,
            epoch: None,
            generation: 0,
        }
    }

    /// An empty ring for history `epoch` (`None`: not known yet).
    pub fn for_history(epoch: Option<Epoch>, head: u64, capacity: usize) -> Self {
        Self {
            epoch,
            ..Self::new(head, capacity)
        }
    }

    /// The history the frames belong to, when known.
    #[cfg(test)]
    pub fn epoch(&self) -> Option<Epoch> {
        self.epoch
    }

    /// How many times the ring restarted for a new history.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Forget every frame: the topic's history was deleted, and the next
    /// one starts at offset 0 with an epoch not known yet. Cursors placed
    /// before this belong to the old generation (see [`Self::generation`]).
    pub fn restart(&mut self) {
        self.runs.clear();
        self.frames = 0;
        self.first = 0;
        self.head = 0;
        self.epoch = None;
        self.generation += 1;
    }

    /// May records of history `epoch` be framed? A ring that knew no
    /// history adopts it; one that framed another history restarts first
    /// (a history replaced without a deletion being announced, which the
    /// log does not do today: a safety net, so frames of two histories
    /// never mix).
    pub fn admit(&mut self, epoch: Epoch) {
        match self.epoch {
            Some(e) if e == epoch => {}
            Some(_) => {
                self.restart();
                self.epoch = Some(epoch);
            }
            None => self.epoch = Some(epoch),
        }
    }

    /// Offset of the next frame to arrive.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Oldest offset held.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// Frame `payloads` (offsets `first..`) as text frames into one run.
    /// Records older than the head are skipped (already framed); a gap
    /// (records never seen) restarts the ring at `first`.
    pub fn push_text<'a>(&mut self, first: u64, payloads: impl Iterator<Item = &'a [u8]>) {
        let mut skip = 0usize;
        if first < self.head {
            skip = (self.head - first) as usize;
        } else if first > self.head {
            self.runs.clear();
            self.frames = 0;
            self.first = first;
            self.head = first;
        }
        let fresh: Vec<&[u8]> = payloads.skip(skip).collect();
        if fresh.is_empty() {
            return;
        }
        let size: usize = fresh
            .iter()
            .map(|p| frame::header_len(p.len()) + p.len())
            .sum();
        let mut data = BytesMut::with_capacity(size);
        let mut ends = Vec::with_capacity(fresh.len());
        for p in fresh {
            frame::put_header(&mut data, frame::TEXT, p.len());
            data.extend_from_slice(p);
            ends.push(data.len() as u32);
        }
        let n = ends.len();
        let run = Run {
            first: self.head,
            data: data.freeze(),
            ends,
            base_total: self.total,
            deflated: OnceLock::new(),
        };
        self.total += run.data.len() as u64;
        self.head += n as u64;
        self.frames += n;
        self.runs.push_back(run);
        while let Some(old) = self.runs.front() {
            if self.frames - old.ends.len() < self.capacity {
                break;
            }
            self.frames -= old.ends.len();
            self.runs.pop_front();
            self.first = self.runs.front().map_or(self.head, |r| r.first);
        }
    }

    /// Append slices covering frames `from..to` to `out`, stopping after
    /// about `max_bytes`; returns the offset reached. `compress_from`: a
    /// deflate subscriber's threshold (see `Conn::compress_from`), whose
    /// slices come from the runs' compressed form.
    pub fn collect(
        &self,
        from: u64,
        to: u64,
        max_bytes: usize,
        compress_from: Option<usize>,
        out: &mut Vec<Bytes>,
    ) -> Result<u64, Behind> {
        if from < self.first {
            return Err(Behind);
        }
        let to = to.min(self.head);
        let mut i = self.runs.partition_point(|r| r.end() <= from);
        let mut at = from;
        let mut bytes = 0usize;
        while at < to && i < self.runs.len() && bytes < max_bytes {
            let run = &self.runs[i];
            let end = run.end().min(to);
            let slice = run.slice(at, end, compress_from);
            bytes += slice.len();
            out.push(slice);
            at = end;
            i += 1;
        }
        Ok(at)
    }

    /// The frames `from..to` one by one (for connections that transform
    /// each message, e.g. encrypt it); `Behind` as in `collect`.
    pub fn frames(&self, from: u64, to: u64, max_bytes: usize) -> Result<Vec<Bytes>, Behind> {
        if from < self.first {
            return Err(Behind);
        }
        let to = to.min(self.head);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut i = self.runs.partition_point(|r| r.end() <= from);
        let mut at = from;
        while at < to && i < self.runs.len() && bytes < max_bytes {
            let run = &self.runs[i];
            let end = run.end().min(to);
            while at < end && bytes < max_bytes {
                let (a, b) = (run.pos(at), run.pos(at + 1));
                out.push(run.data.slice(a..b));
                bytes += b - a;
                at += 1;
            }
            i += 1;
        }
        Ok(out)
    }

    /// Bytes of frames from `from` to the head (estimated from the average
    /// frame size when `from` is older than the ring).
    pub fn lag_bytes(&self, from: u64) -> u64 {
        if from >= self.head {
            return 0;
        }
        let held = self.total - self.runs.front().map_or(self.total, |r| r.base_total);
        if from < self.first {
            let avg = if self.frames == 0 {
                0
            } else {
                held / self.frames as u64
            };
            return held + (self.first - from) * avg;
        }
        let i = self.runs.partition_point(|r| r.end() <= from);
        let run = &self.runs[i];
        self.total - (run.base_total + run.pos(from) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(r: &mut FrameRing, first: u64, msgs: &[&str]) {
        r.push_text(first, msgs.iter().map(|m| m.as_bytes()));
    }

    fn joined(parts: &[Bytes]) -> Vec<u8> {
        parts.iter().flat_map(|b| b.iter().copied()).collect()
    }

    #[test]
    fn collects_frames_across_runs_as_few_slices() {
        let mut r = FrameRing::new(10, 100);
        push(&mut r, 10, &["a", "bb"]);
        push(&mut r, 12, &["ccc"]);
        let mut out = Vec::new();
        assert_eq!(r.collect(10, 13, usize::MAX, None, &mut out), Ok(13));
        assert_eq!(out.len(), 2, "one slice per run");
        assert_eq!(joined(&out), b"\x81\x01a\x81\x02bb\x81\x03ccc");
        out.clear();
        assert_eq!(r.collect(11, 13, usize::MAX, None, &mut out), Ok(13));
        assert_eq!(joined(&out), b"\x81\x02bb\x81\x03ccc");
        out.clear();
        assert_eq!(r.collect(11, 12, usize::MAX, None, &mut out), Ok(12));
        assert_eq!(joined(&out), b"\x81\x02bb");
        assert_eq!(r.collect(13, 99, usize::MAX, None, &mut out), Ok(13));
        assert_eq!(r.collect(9, 13, usize::MAX, None, &mut out), Err(Behind));
        assert_eq!(r.lag_bytes(11), 9);
        assert_eq!(r.lag_bytes(13), 0);
        let frames = r.frames(10, 13, usize::MAX).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(&frames[2][..], b"\x81\x03ccc");
    }

    #[test]
    fn skips_known_records_restarts_after_a_gap_and_trims_old_runs() {
        let mut r = FrameRing::new(0, 3);
        push(&mut r, 0, &["a", "b"]);
        push(&mut r, 1, &["b", "c"]); // offset 1 already framed
        assert_eq!(r.head(), 3);
        let mut out = Vec::new();
        r.collect(0, 3, usize::MAX, None, &mut out).unwrap();
        assert_eq!(joined(&out), b"\x81\x01a\x81\x01b\x81\x01c");
        push(&mut r, 3, &["d", "e"]);
        assert_eq!(
            r.first(),
            2,
            "the oldest run went once 3 frames remain without it"
        );
        push(&mut r, 10, &["z"]);
        assert_eq!((r.first(), r.head()), (10, 11));
        assert!(r.lag_bytes(0) > 0);
    }

    #[test]
    fn a_restart_forgets_every_frame_and_a_new_history_restarts_it_too() {
        let mut r = FrameRing::for_history(Some(Epoch(1)), 0, 8);
        r.admit(Epoch(1));
        push(&mut r, 0, &["a", "b", "c"]);
        assert_eq!((r.generation(), r.head()), (0, 3));
        r.restart();
        assert_eq!(
            (r.generation(), r.first(), r.head(), r.epoch()),
            (1, 0, 0, None)
        );
        let mut out = Vec::new();
        assert_eq!(r.collect(0, 3, usize::MAX, None, &mut out), Ok(0));
        assert!(out.is_empty(), "nothing of the deleted history");
        r.admit(Epoch(2));
        push(&mut r, 0, &["x"]);
        r.collect(0, 1, usize::MAX, None, &mut out).unwrap();
        assert_eq!(joined(&out), b"\x81\x01x");
        assert_eq!(r.generation(), 1, "adopting a first history is no restart");
        r.admit(Epoch(3));
        assert_eq!(
            (r.generation(), r.head(), r.epoch()),
            (2, 0, Some(Epoch(3)))
        );
    }
}

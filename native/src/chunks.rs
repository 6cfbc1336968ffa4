//! The batch rows of a call split by rows: one share per part, each share cut into chunks that
//! the part's own thread takes first and the other parts' threads take once their own are done.
//!
//! Why: the machine is shared, so one of two cores is often slower than the other for a while;
//! with fixed halves, the call waited for the slower half (doc-sized `LSTM` forwards: the two
//! halves of 9 ms ended a median 0.18 ms apart, 1.4 ms at the 90th percentile). A chunk that
//! runs all the call's steps on 64 rows also keeps its rows, next rows and cells (~100 KiB) in L2
//! beside the weights, where a 512-row half did not fit (single thread, 0.813 against 0.828 ms
//! per 512 rows and step). Medians of the doc forward: 0.93–0.96 against 0.96–1.03 ms a step.
//!
//! Every row gets the same bits whichever thread runs it in whichever chunk: rows never meet,
//! and chunks are whole tiles of four rows but the last.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Rows a chunk aims at: small enough that a late core's last chunk is short, large enough that
/// its tiles still reuse each weight panel from L1 (16 tiles of four rows).
const CHUNK_ROWS: usize = 64;

/// Rows of the AVX-512 tile: chunk edges fall on its multiples.
const TILE_ROWS: usize = 4;

/// The chunks of a row-split call and which of them are taken.
pub struct RowChunks {
    /// Each part's chunks, `[start, end)` rows, in order.
    chunks: Vec<Vec<(usize, usize)>>,
    /// Each part's next chunk not yet taken.
    next: Vec<AtomicUsize>,
}

/// `[start, end)` row ranges of `parts` nearly equal shares of `batch` rows (at most one a row).
pub fn shares(batch: usize, parts: usize) -> Vec<(usize, usize)> {
    let parts = parts.clamp(1, batch.max(1));
    (0..parts)
        .map(|p| (p * batch / parts, (p + 1) * batch / parts))
        .collect()
}

impl RowChunks {
    /// `batch` rows in `parts` [`shares`], each cut into chunks.
    pub fn new(batch: usize, parts: usize) -> RowChunks {
        let chunks: Vec<_> = shares(batch, parts)
            .into_iter()
            .map(|(start, end)| chunks_of(start, end))
            .collect();
        let next = chunks.iter().map(|_| AtomicUsize::new(0)).collect();
        RowChunks { chunks, next }
    }

    /// The number of parts (threads) of the call.
    pub fn parts(&self) -> usize {
        self.chunks.len()
    }

    /// Runs `work` on every chunk that part `index`'s thread takes: its own share's first, then
    /// those left of the other shares. Each chunk is taken once over all threads.
    pub fn take(&self, index: usize, mut work: impl FnMut((usize, usize))) {
        let parts = self.parts();
        for share in (0..parts).map(|offset| (index + offset) % parts) {
            loop {
                let chunk = self.next[share].fetch_add(1, Ordering::Relaxed);
                match self.chunks[share].get(chunk) {
                    Some(&rows) => work(rows),
                    None => break,
                }
            }
        }
    }
}

/// Rows `[start, end)` in chunks of about [`CHUNK_ROWS`], each edge but the last a multiple of
/// [`TILE_ROWS`] from `start`; one chunk for a share too small to cut.
fn chunks_of(start: usize, end: usize) -> Vec<(usize, usize)> {
    let rows = end - start;
    let count = (rows / CHUNK_ROWS).max(1);
    let tiles = rows / TILE_ROWS;
    let edge = |c: usize| match c {
        0 => start,
        c if c == count => end,
        c => start + TILE_ROWS * (c * tiles / count),
    };
    (0..count).map(|c| (edge(c), edge(c + 1))).collect()
}

#[cfg(test)]
mod tests {
    use super::{RowChunks, CHUNK_ROWS, TILE_ROWS};
    use std::sync::Mutex;

    #[test]
    fn every_row_is_in_one_chunk_of_its_share() {
        for batch in [1, 3, 4, 7, 63, 64, 65, 128, 130, 512, 1000, 1024] {
            for parts in 1..=4 {
                let chunks = RowChunks::new(batch, parts);
                let mut covered = vec![0; batch];
                for (p, share) in chunks.chunks.iter().enumerate() {
                    let (first, last) = (share[0].0, share[share.len() - 1].1);
                    assert_eq!(
                        first,
                        p * batch / chunks.parts(),
                        "batch {batch}, {parts} parts"
                    );
                    assert_eq!(last, (p + 1) * batch / chunks.parts());
                    for (i, &(start, end)) in share.iter().enumerate() {
                        assert!(start < end || batch == 0);
                        if i + 1 < share.len() {
                            assert_eq!((end - first) % TILE_ROWS, 0, "chunk edge {end}");
                            assert!(end - start >= CHUNK_ROWS - TILE_ROWS);
                        }
                        for row in start..end {
                            covered[row] += 1;
                        }
                    }
                }
                assert!(
                    covered.iter().all(|&c| c == 1),
                    "batch {batch}, {parts} parts"
                );
            }
        }
    }

    #[test]
    fn a_thread_takes_its_own_share_first_then_what_is_left_of_the_others() {
        let chunks = RowChunks::new(1024, 2);
        let taken = Mutex::new(Vec::new());
        // Part 1's thread takes two of its own chunks, then part 0's thread runs to the end.
        let mut own = 0;
        chunks.take(1, |rows| {
            taken.lock().unwrap().push((1, rows));
            own += 1;
            if own == 2 {
                chunks.take(0, |rows| taken.lock().unwrap().push((0, rows)));
            }
        });
        let taken = taken.into_inner().unwrap();
        let rows: usize = taken.iter().map(|(_, (a, b))| b - a).sum();
        assert_eq!(rows, 1024);
        assert_eq!(taken[0], (1, (512, 576)));
        assert_eq!(taken[1], (1, (576, 640)));
        // Part 0's thread: all of its share, then the rest of part 1's.
        assert!(taken[2..10]
            .iter()
            .all(|&(thread, (a, _))| thread == 0 && a < 512));
        assert!(taken[10..]
            .iter()
            .all(|&(thread, (a, _))| thread == 0 && a >= 640));
    }
}

//! Threads that share the hidden units of one forward call: a batch too small to split by rows
//! (batch 1, the latency case) is split by blocks of hidden units instead, as the wasm backend
//! does over Workers (`src/backends/wasm/shared_units.ts`). Every thread runs every step on its own
//! blocks with its own kernel object (`sequence::step`), so it streams only its share of the
//! weight panels per step; after each step the threads publish their units of `h_t` in a shared
//! buffer, meet at a [`SpinBarrier`] and copy the others' units into their next input rows.
//! Once done, each part writes its units of the results into the caller's arrays.
//!
//! Results are bit-identical to one thread's: every block is computed as `forward` computes it
//! (block ranges start on even blocks, so a batch of one pairs the same blocks as it does).

use super::{Results, Sizes};
use crate::cell::{with_variant, Variant};
use crate::sequence::{begin, finish, step, Extras};
use crate::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Hidden units per block of the kernels (`UNITS` of `wasm/src/pack.rs`).
const UNITS: usize = crate::pack::UNITS;

/// Loads of the barrier's generation (`pause` each, ~40 ns) before a waiting thread yields its core
/// between loads: a step takes ~5–20 µs and the parts arrive within a few µs of each other on idle
/// cores, which a futex wake would cost again; on a busy machine a partner that was preempted
/// needs the core more than the spin does (measured: 4096 spins made a batch-1 `LSTM` five times
/// slower under a load of 6 on 2 cores, 128 as fast as 0).
const SPINS: usize = 128;

/// Blocks `[first, end)` of part `part` of `parts` out of `blocks`: as even as possible, in
/// pairs (the batch-1 kernel takes blocks two at a time; `blocksOf` of `shared_units.ts`).
pub fn blocks_of(blocks: usize, part: usize, parts: usize) -> (usize, usize) {
    let pairs = blocks / 2;
    let at = |p: usize| {
        if p == parts {
            blocks
        } else {
            2 * (pairs * p / parts)
        }
    };
    (at(part), at(part + 1))
}

/// Hidden units `[start, end)` of part `part` of `parts` for `hidden` units.
fn units_of(hidden: usize, part: usize, parts: usize) -> (usize, usize) {
    let (first, end) = blocks_of((hidden + UNITS - 1) / UNITS, part, parts);
    (hidden.min(first * UNITS), hidden.min(end * UNITS))
}

/// A barrier for a fixed number of threads that spins (then yields) instead of sleeping, and that
/// a panicking thread breaks so that the others stop instead of waiting forever.
struct SpinBarrier {
    parties: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    broken: AtomicBool,
}

impl SpinBarrier {
    fn new(parties: usize) -> Self {
        SpinBarrier {
            parties,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            broken: AtomicBool::new(false),
        }
    }

    /// Waits for every party; what each wrote before is visible to all after. False if a party
    /// panicked (the caller stops).
    fn wait(&self) -> bool {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.parties {
            // Nobody arrives at the next round before the generation moves on.
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return !self.broken.load(Ordering::Acquire);
        }
        let mut spins = 0;
        while self.generation.load(Ordering::Acquire) == generation {
            if self.broken.load(Ordering::Acquire) {
                return false;
            }
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        !self.broken.load(Ordering::Acquire)
    }
}

/// Breaks the barrier when its thread unwinds from a panic.
struct BreakOnPanic<'a>(&'a SpinBarrier);

impl Drop for BreakOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.broken.store(true, Ordering::Release);
        }
    }
}

/// Two `(B, H)` slots of `h_t` the parts share (steps alternate, so a part can write step
/// `t + 1`'s units while a slower one still reads step `t`'s; the barrier between keeps the
/// writer one step ahead at most). Each part writes only its own units.
struct Slots {
    values: *mut f32,
    len: usize,
}

// SAFETY: the parts write disjoint units of a slot, and read the others' only after the barrier
// that follows those writes.
unsafe impl Sync for Slots {}

/// The inputs and result arrays of one call, shared by its parts.
struct Call<'a> {
    sizes: Sizes,
    batch: usize,
    seq_len: usize,
    x: &'a [f32],
    hidden: &'a [f32],
    state: &'a [f32],
    extras: Extras,
    results: &'a Results,
}

/// Runs `seq_len` steps of `batch` sequences with the hidden units split over `parts` (all of
/// them run: the caller picks how many), each part writing its units of the results into
/// `results` (`extras` says which of the opt-in ones it asked for).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    parts: &mut [Cell],
    results: &Results,
    s: Sizes,
    batch: usize,
    seq_len: usize,
    x: &[f32],
    hidden: &[f32],
    state: &[f32],
    extras: Extras,
) {
    let count = parts.len();
    let barrier = SpinBarrier::new(count);
    let mut shared = vec![0.0f32; 2 * batch * s.hidden];
    let slots = Slots {
        values: shared.as_mut_ptr(),
        len: shared.len(),
    };
    let call = Call {
        sizes: s,
        batch,
        seq_len,
        x,
        hidden,
        state,
        extras,
        results,
    };
    let work = |index: usize, part: &mut Cell| {
        let _guard = BreakOnPanic(&barrier);
        let Cell {
            kind,
            weights,
            workspace,
            ..
        } = part;
        with_variant!(
            *kind,
            run(weights, workspace, &call, &barrier, &slots, index, count)
        );
    };
    // Every part on a thread of its own: they meet at the barrier after each step.
    super::workers::in_parallel(parts, count, super::workers::Parts::Together, work);
}

/// Part `part` of `parts`: the whole call on its blocks, trading `h_t` after every step, then
/// its units of the results into the caller's arrays.
fn run<V: Variant>(
    weights: &crate::sequence::Weights,
    ws: &mut crate::sequence::Workspace,
    call: &Call,
    barrier: &SpinBarrier,
    slots: &Slots,
    part: usize,
    parts: usize,
) {
    let l = weights.layout;
    let (batch, h) = (call.batch, l.hidden);
    ws.extras = call.extras;
    begin::<V>(
        weights,
        ws,
        batch,
        call.seq_len,
        call.x,
        call.hidden,
        call.state,
    );
    let (first, end) = blocks_of(l.blocks, part, parts);
    let (start, stop) = units_of(h, part, parts);
    for t in 0..call.seq_len {
        step::<V>(weights, ws, call.x, t, first, end);
        let rows = ws.hidden_rows();
        let slot = (t % 2) * batch * h;
        debug_assert!(slot + batch * h <= slots.len);
        // SAFETY: this part alone writes units `start..stop` of the slot, which nobody reads
        // until the barrier below; the slot holds `batch · h` floats.
        unsafe {
            for b in 0..batch {
                let from = &rows[b * l.depth + l.input_pad + start..][..stop - start];
                let to = slots.values.add(slot + b * h + start);
                std::ptr::copy_nonoverlapping(from.as_ptr(), to, stop - start);
            }
        }
        if !barrier.wait() {
            return;
        }
        for other in (0..parts).filter(|&other| other != part) {
            let (from, to) = units_of(h, other, parts);
            for b in 0..batch {
                // SAFETY: part `other` wrote these units before the barrier and writes this
                // slot again only after the next one, which this part reaches after reading.
                let values = unsafe {
                    std::slice::from_raw_parts(slots.values.add(slot + b * h + from), to - from)
                };
                rows[b * l.depth + l.input_pad + from..][..to - from].copy_from_slice(values);
            }
        }
    }
    finish(weights, ws);
    // SAFETY: this part alone writes units `start..stop`, and the first part the rest.
    unsafe { write_units(ws, call, (start, stop), part == 0) };
}

/// Writes a part's units `[start, stop)` of the output, the cell states and the chosen lanes into
/// the caller's arrays; with `first`, also the final hidden state and the attention weights
/// (every part computes all of them).
///
/// # Safety
/// No other thread writes these units (with `first`: these arrays) during the call.
unsafe fn write_units(
    ws: &crate::sequence::Workspace,
    call: &Call,
    (start, stop): (usize, usize),
    first: bool,
) {
    let (out, h) = (call.results, call.sizes.hidden);
    let lanes = call.extras.lanes && !ws.lanes_out.is_empty();
    for row in 0..call.batch * call.seq_len {
        let units = row * h + start..row * h + stop;
        out.output.write(units.start, &ws.output[units.clone()]);
        if lanes {
            out.lanes.write(units.start, &ws.lanes_out[units]);
        }
    }
    for row in 0..call.sizes.lanes * call.batch {
        let units = row * h + start..row * h + stop;
        out.state.write(units.start, &ws.state[units]);
    }
    if first {
        out.hidden.write(0, &ws.hidden[..call.batch * h]);
        if call.extras.attention && !ws.attention_out.is_empty() {
            out.attention
                .write(0, &ws.attention_out[..out.attention.len]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_go_in_pairs_and_cover_every_block() {
        assert_eq!(blocks_of(64, 0, 2), (0, 32));
        assert_eq!(blocks_of(64, 1, 2), (32, 64));
        assert_eq!(blocks_of(5, 0, 2), (0, 2));
        assert_eq!(blocks_of(5, 1, 2), (2, 5));
        for blocks in 1..20 {
            for parts in 1..5 {
                let ranges: Vec<_> = (0..parts).map(|p| blocks_of(blocks, p, parts)).collect();
                assert_eq!(ranges[0].0, 0);
                assert_eq!(ranges[parts - 1].1, blocks);
                for pair in ranges.windows(2) {
                    assert_eq!(pair[0].1, pair[1].0);
                }
                assert!(ranges.iter().all(|&(first, _)| first % 2 == 0));
            }
        }
    }
}

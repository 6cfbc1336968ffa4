//! The C ABI of the native build: the crate's `Cell`, `TorchCell` and `Trainer` behind opaque
//! handles, for `Deno.dlopen` (`src/backends/native/symbols.ts` lists every symbol with its
//! types; keep the two in step and bump [`alstm_abi_version`] when a signature changes).
//!
//! Threads: a handle holds one kernel object per thread it may use, each with its own copy of the
//! weights, and a forward splits its batch rows over `parts` of them (run on kept workers,
//! `workers.rs`), each part's share in chunks that a thread done with its own share takes from
//! another's (`chunks.rs`), as the wasm backend splits them over Workers; every row gets
//! bit-identical results however the batch is split. A trainer splits its rows evenly, each part
//! keeping what its rows' backward needs. An LSTM-family forward may split its hidden units
//! instead (`units.rs`), for a batch too small to split by rows. A cell's forward writes its
//! results into arrays the caller passes ([`Results`]): each thread writes its own rows (or units)
//! there, in parallel, so no thread assembles them and the caller copies nothing out; so does a
//! trainer's recording forward.
//! A trainer's split gradients are assembled here into whole-batch buffers.
//!
//! Errors: a panic (a failed size check) is caught at the boundary, its message kept for
//! [`alstm_last_error`], and reported as a non-zero status or a null handle, never unwinding into
//! the caller.

use crate::torch_cell::TorchCell;
use crate::train::Trainer;
use crate::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, Once};

#[path = "chunks.rs"]
mod chunks;
#[path = "units.rs"]
mod units;
#[path = "workers.rs"]
mod workers;

use chunks::{shares, RowChunks};
use workers::{in_parallel, Parts};

/// The ABI revision; `symbols.ts` refuses a library with another.
const ABI_VERSION: u32 = 4;

static LAST_ERROR: Mutex<String> = Mutex::new(String::new());
static QUIET_PANICS: Once = Once::new();

/// Runs `body`, turning a panic into `failed` with its message kept for [`alstm_last_error`].
fn guarded<R>(failed: R, body: impl FnOnce() -> R) -> R {
    QUIET_PANICS.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = match info.payload().downcast_ref::<&str>() {
                Some(text) => (*text).to_string(),
                None => info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "a panic without a message".to_string()),
            };
            *LAST_ERROR.lock().unwrap_or_else(|e| e.into_inner()) = message;
        }));
    });
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(failed)
}

/// `len` floats at `ptr`; an empty slice for a null pointer (Deno passes empty arrays as null).
///
/// # Safety
/// A non-null `ptr` must point to `len` readable floats that outlive the call.
unsafe fn floats<'a>(ptr: *const f32, len: usize) -> &'a [f32] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, len)
    }
}

/// One of the caller's arrays a forward writes into (empty: not asked for). Threads write
/// disjoint ranges of it at once, so it is shared as a pointer, not as a `&mut` slice.
struct Out<T> {
    values: *mut T,
    len: usize,
}

// SAFETY: the threads of a call write disjoint ranges ([`Out::write`]) and read none.
unsafe impl<T: Send> Sync for Out<T> {}
unsafe impl<T: Send> Send for Out<T> {}

impl<T: Copy> Out<T> {
    /// The `len` values at `values`; empty for a null pointer (Deno passes empty arrays as null).
    fn new(values: *mut T, len: usize) -> Self {
        let len = if values.is_null() { 0 } else { len };
        Out { values, len }
    }

    /// No array: a result the caller does not take.
    fn none() -> Self {
        Out::new(std::ptr::null_mut(), 0)
    }

    /// Whether the caller asked for this array.
    fn wanted(&self) -> bool {
        self.len != 0
    }

    /// The `len` values from `at`, for a part that writes them itself.
    ///
    /// # Safety
    /// No other thread writes `at .. at + len` during the call.
    unsafe fn range(&self, at: usize, len: usize) -> *mut T {
        assert!(
            at + len <= self.len,
            "a result does not fit the array it goes to"
        );
        self.values.add(at)
    }

    /// Copies `values` to `at ..`.
    ///
    /// # Safety
    /// No other thread writes `at .. + values.len()` during the call.
    unsafe fn write(&self, at: usize, values: &[T]) {
        assert!(
            at + values.len() <= self.len,
            "a result does not fit the array it goes to"
        );
        std::ptr::copy_nonoverlapping(values.as_ptr(), self.values.add(at), values.len());
    }
}

/// The caller's arrays of a forward's results: `output (B, T, H)`, `hidden (B, H)`,
/// `state (k, B, H)` (none for GRU and RNN), and the LSTM family's opt-in `attention
/// (B, T, H, k)` and `lanes (B, T, H)`, each of the two asked for by passing it (empty: not asked
/// for).
struct Results {
    output: Out<f32>,
    hidden: Out<f32>,
    state: Out<f32>,
    attention: Out<f32>,
    lanes: Out<i32>,
}

impl Results {
    /// Checks every array's length against the sizes of a forward of `batch` sequences of
    /// `seq_len` steps (panics on a wrong one).
    fn new(
        s: Sizes,
        batch: usize,
        seq_len: usize,
        [output, hidden, state, attention]: [Out<f32>; 4],
        lanes: Out<i32>,
    ) -> Self {
        let h = s.hidden;
        let outputs = batch * seq_len * h;
        let check = |what: &str, len: usize, expected: usize, optional: bool| {
            assert!(
                len == expected || (optional && len == 0),
                "the {what} array holds {len} values, the forward writes {expected}"
            );
        };
        check("output", output.len, outputs, false);
        check("hidden", hidden.len, batch * h, false);
        check("state", state.len, s.lanes * batch * h, false);
        check("attention", attention.len, outputs * s.k, true);
        check("lanes", lanes.len, outputs, true);
        Results {
            output,
            hidden,
            state,
            attention,
            lanes,
        }
    }

    /// [`Results::new`] of a forward without the opt-in arrays: `output`, `hidden` and `state`
    /// (null for GRU and RNN), each address with its length.
    fn without_extras(
        s: Sizes,
        batch: usize,
        seq_len: usize,
        arrays: [(*mut f32, u32); 3],
    ) -> Self {
        let [output, hidden, state] = arrays.map(|(values, len)| Out::new(values, len as usize));
        Results::new(s, batch, seq_len, [output, hidden, state, Out::none()], Out::none())
    }

    /// The output of rows `[start, end)`, `(end − start, T, H)`, as address and length, for the
    /// part that computes those rows to write in place.
    ///
    /// # Safety
    /// No other thread writes these rows during the call.
    unsafe fn output_rows(
        &self,
        seq_len: usize,
        (start, end): (usize, usize),
        s: Sizes,
    ) -> (*mut f32, usize) {
        let steps = seq_len * s.hidden;
        let len = (end - start) * steps;
        (self.output.range(start * steps, len), len)
    }

    /// Writes a part's `output` (unless empty: written in place), `hidden` and `state` of rows
    /// `[start, end)` of `batch` into those rows.
    ///
    /// # Safety
    /// No other thread writes these rows during the call.
    #[allow(clippy::too_many_arguments)]
    unsafe fn write_rows(
        &self,
        s: Sizes,
        batch: usize,
        seq_len: usize,
        (start, end): (usize, usize),
        output: &[f32],
        hidden: &[f32],
        state: &[f32],
    ) {
        let (h, rows) = (s.hidden, end - start);
        let steps = seq_len * h;
        if !output.is_empty() {
            self.output.write(start * steps, &output[..rows * steps]);
        }
        self.hidden.write(start * h, &hidden[..rows * h]);
        for lane in 0..s.lanes {
            let n = rows * h;
            self.state
                .write((lane * batch + start) * h, &state[lane * n..][..n]);
        }
    }

    /// [`Results::write_rows`] of an LSTM-family part's results but the output, which the part
    /// wrote in place ([`Results::output_rows`]), the opt-in ones included.
    ///
    /// # Safety
    /// As [`Results::write_rows`].
    unsafe fn write_cell_rows(
        &self,
        ws: &crate::sequence::Workspace,
        s: Sizes,
        batch: usize,
        seq_len: usize,
        rows: (usize, usize),
    ) {
        self.write_rows(s, batch, seq_len, rows, &[], &ws.hidden, &ws.state);
        let (start, count) = (rows.0, rows.1 - rows.0);
        let steps = seq_len * s.hidden;
        if self.attention.wanted() && !ws.attention_out.is_empty() {
            let width = steps * s.k;
            self.attention
                .write(start * width, &ws.attention_out[..count * width]);
        }
        if self.lanes.wanted() && !ws.lanes_out.is_empty() {
            self.lanes
                .write(start * steps, &ws.lanes_out[..count * steps]);
        }
    }
}

/// Rows `[start, end)` of a `(lanes, batch, width)` array (`width` floats a row), lane by lane.
fn gather(
    values: &[f32],
    lanes: usize,
    batch: usize,
    width: usize,
    rows: (usize, usize),
) -> Vec<f32> {
    if values.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(lanes * (rows.1 - rows.0) * width);
    for lane in 0..lanes {
        out.extend_from_slice(
            &values[(lane * batch + rows.0) * width..(lane * batch + rows.1) * width],
        );
    }
    out
}

/// Writes a part's `(lanes, rows, width)` array into rows `[start, end)` of a whole-batch one.
fn scatter<T: Copy>(
    whole: &mut [T],
    part: &[T],
    lanes: usize,
    batch: usize,
    width: usize,
    rows: (usize, usize),
) {
    let n = (rows.1 - rows.0) * width;
    for lane in 0..lanes {
        whole[(lane * batch + rows.0) * width..][..n].copy_from_slice(&part[lane * n..][..n]);
    }
}

/// [`scatter`] of a part's result at byte address `address` (a kernel object's result).
///
/// # Safety
/// `address` must hold the part's `lanes * (rows.1 - rows.0) * width` initialised values of `T`.
unsafe fn place<T: Copy>(
    whole: &mut [T],
    address: usize,
    lanes: usize,
    batch: usize,
    width: usize,
    rows: (usize, usize),
) {
    let part = at(address, lanes * (rows.1 - rows.0) * width);
    scatter(whole, part, lanes, batch, width, rows);
}

/// Reads `len` values at byte address `address` (a kernel object's result).
///
/// # Safety
/// `address .. + len` must hold initialised values of `T`.
unsafe fn at<'a, T>(address: usize, len: usize) -> &'a [T] {
    if len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(address as *const T, len)
    }
}

/// The sizes of a cell, for slicing rows.
#[derive(Clone, Copy)]
struct Sizes {
    input: usize,
    hidden: usize,
    /// Rows of `state` per batch row: `k` for the LSTM family, 0 for GRU and RNN.
    lanes: usize,
    k: usize,
}

/// Frees a handle made by `Box::into_raw` (null: nothing).
///
/// # Safety
/// `handle` is null or came from `Box::into_raw` and is not used afterwards.
unsafe fn free<T>(handle: *mut T) {
    if !handle.is_null() {
        drop(Box::from_raw(handle));
    }
}

/// A batch of inputs, as every forward takes it.
struct Batch<'a> {
    batch: usize,
    seq_len: usize,
    x: &'a [f32],
    hidden: &'a [f32],
    state: &'a [f32],
}

impl Batch<'_> {
    /// The arrays of a forward of `batch` sequences of `seq_len` steps: `x (B, T, I)`,
    /// `hidden (B, H)`, `state (lanes, B, H)` (none without lanes).
    ///
    /// # Safety
    /// As [`floats`] for each.
    unsafe fn new(
        s: Sizes,
        batch: usize,
        seq_len: usize,
        x: *const f32,
        hidden: *const f32,
        state: *const f32,
    ) -> Self {
        Batch {
            batch,
            seq_len,
            x: floats(x, batch * seq_len * s.input),
            hidden: floats(hidden, batch * s.hidden),
            state: floats(state, s.lanes * batch * s.hidden),
        }
    }

    /// Rows `[start, end)`, copied where a lane-major array needs gathering.
    fn rows(&self, s: Sizes, rows: (usize, usize)) -> (usize, &[f32], &[f32], Vec<f32>) {
        let (a, b) = rows;
        let x = &self.x[a * self.seq_len * s.input..b * self.seq_len * s.input];
        let hidden = &self.hidden[a * s.hidden..b * s.hidden];
        (
            b - a,
            x,
            hidden,
            gather(self.state, s.lanes, self.batch, s.hidden, rows),
        )
    }
}

/// One LSTM-family cell for up to `parts.len()` threads.
pub struct NativeCell {
    sizes: Sizes,
    parts: Vec<Cell>,
}

/// An `extern "C"` constructor of a handle over the LSTM family's `$new` (`Cell::new` or
/// `Trainer::new`) for up to `threads` threads: `$new`'s arguments after the thread count, each of
/// the six arrays as pointer and length; `$build` makes the handle from the cell's `Sizes` and the
/// parts. Null on an invalid argument (see [`alstm_last_error`]).
macro_rules! lstm_constructor {
    ($(#[$attr:meta])* $name:ident -> $handle:ty = $new:path, |$sizes:ident, $parts:ident| $build:expr) => {
        $(#[$attr])*
        ///
        /// # Safety
        /// Every pointer must point to as many floats as its length says.
        #[no_mangle]
        #[allow(clippy::too_many_arguments)]
        pub unsafe extern "C" fn $name(
            threads: u32,
            kind: u32,
            k: u32,
            max_pooling: u8,
            gate_slope: f32,
            input_size: u32,
            hidden_size: u32,
            p0: *const f32,
            n0: u32,
            p1: *const f32,
            n1: u32,
            p2: *const f32,
            n2: u32,
            p3: *const f32,
            n3: u32,
            p4: *const f32,
            n4: u32,
            p5: *const f32,
            n5: u32,
        ) -> *mut $handle {
            let (k, input, hidden) = (k as usize, input_size as usize, hidden_size as usize);
            guarded(std::ptr::null_mut(), || {
                let p = [
                    floats(p0, n0 as usize),
                    floats(p1, n1 as usize),
                    floats(p2, n2 as usize),
                    floats(p3, n3 as usize),
                    floats(p4, n4 as usize),
                    floats(p5, n5 as usize),
                ];
                let pooling = max_pooling != 0;
                let $parts: Vec<_> = (0..(threads as usize).max(1))
                    .map(|_| {
                        $new(
                            kind, k, pooling, gate_slope, input, hidden, p[0], p[1], p[2], p[3],
                            p[4], p[5],
                        )
                    })
                    .collect();
                let $sizes = Sizes {
                    input,
                    hidden,
                    lanes: k,
                    k,
                };
                Box::into_raw(Box::new($build))
            })
        }
    };
}

lstm_constructor! {
    /// Packs a cell for up to `threads` threads.
    alstm_cell_new -> NativeCell = Cell::new, |sizes, parts| NativeCell { sizes, parts }
}

/// Runs `seq_len` steps of `batch` sequences over `parts` threads, each taking some of the batch
/// rows, or (`by_units` non-zero) some of the hidden units of every row, and writes the results
/// into the arrays after the inputs ([`Results`]: `output`, `hidden`, `state`, and the opt-in
/// `attention` and `lanes`, null or empty when not asked for), each with its length; 0 on
/// success, non-zero for a length that does not match.
///
/// # Safety
/// `cell` comes from [`alstm_cell_new`]; the inputs hold `(B, T, I)`, `(B, H)`, `(k, B, H)`
/// floats; every result array holds as many values as its length says and stays unread by
/// anyone else until the call returns.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn alstm_cell_forward(
    cell: *mut NativeCell,
    parts: u32,
    by_units: u8,
    batch: u32,
    seq_len: u32,
    x: *const f32,
    hidden: *const f32,
    state: *const f32,
    output_out: *mut f32,
    output_len: u32,
    hidden_out: *mut f32,
    hidden_len: u32,
    state_out: *mut f32,
    state_len: u32,
    attention_out: *mut f32,
    attention_len: u32,
    lanes_out: *mut i32,
    lanes_len: u32,
) -> i32 {
    let (parts, batch, seq_len) = (parts as usize, batch as usize, seq_len as usize);
    guarded(1, || {
        let cell = &mut *cell;
        let s = cell.sizes;
        let input = Batch::new(s, batch, seq_len, x, hidden, state);
        let results = Results::new(
            s,
            batch,
            seq_len,
            [
                Out::new(output_out, output_len as usize),
                Out::new(hidden_out, hidden_len as usize),
                Out::new(state_out, state_len as usize),
                Out::new(attention_out, attention_len as usize),
            ],
            Out::new(lanes_out, lanes_len as usize),
        );
        let extras = crate::sequence::Extras {
            attention: results.attention.wanted(),
            lanes: results.lanes.wanted(),
        };
        let sharing = parts.min(cell.parts.len());
        if by_units != 0 && sharing > 1 {
            units::forward(
                &mut cell.parts[..sharing],
                &results,
                s,
                batch,
                seq_len,
                input.x,
                input.hidden,
                input.state,
                extras,
            );
            return 0;
        }
        let chunks = RowChunks::new(batch, sharing);
        in_parallel(&mut cell.parts, chunks.parts(), Parts::Kept, |index, part| {
            part.set_outputs(extras.attention, extras.lanes);
            chunks.take(index, |range| {
                let (rows, x, hidden, state) = input.rows(s, range);
                // SAFETY: the thread that took this chunk alone has these rows.
                let (target, len) = results.output_rows(seq_len, range, s);
                part.workspace.write_output_to(target, len);
                part.forward(rows, seq_len, x, hidden, &state);
                results.write_cell_rows(&part.workspace, s, batch, seq_len, range);
            });
        });
        0
    })
}

/// Frees a cell.
///
/// # Safety
/// `cell` comes from [`alstm_cell_new`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn alstm_cell_free(cell: *mut NativeCell) {
    free(cell);
}

/// One GRU or RNN cell for up to `parts.len()` threads.
pub struct NativeTorchCell {
    sizes: Sizes,
    parts: Vec<TorchCell>,
}

/// Takes a GRU or RNN cell's torch parameters (as `TorchCell::new`, each array as pointer and
/// length) for up to `threads` threads. Null on an invalid argument.
///
/// # Safety
/// Every pointer must point to as many floats as its length says.
#[no_mangle]
pub unsafe extern "C" fn alstm_torch_cell_new(
    threads: u32,
    kind: u32,
    input_size: u32,
    hidden_size: u32,
    p0: *const f32,
    n0: u32,
    p1: *const f32,
    n1: u32,
    p2: *const f32,
    n2: u32,
    p3: *const f32,
    n3: u32,
) -> *mut NativeTorchCell {
    let (threads, input_size, hidden_size, n0, n1, n2, n3) = (
        threads as usize,
        input_size as usize,
        hidden_size as usize,
        n0 as usize,
        n1 as usize,
        n2 as usize,
        n3 as usize,
    );
    guarded(std::ptr::null_mut(), || {
        let p = [
            floats(p0, n0),
            floats(p1, n1),
            floats(p2, n2),
            floats(p3, n3),
        ];
        let parts = (0..threads.max(1))
            .map(|_| TorchCell::new(kind, input_size, hidden_size, p[0], p[1], p[2], p[3]))
            .collect();
        Box::into_raw(Box::new(NativeTorchCell {
            sizes: Sizes {
                input: input_size,
                hidden: hidden_size,
                lanes: 0,
                k: 0,
            },
            parts,
        }))
    })
}

/// Runs `seq_len` steps of `batch` sequences over `parts` threads and writes the results into
/// `output` and `hidden_out`, each with its length; 0 on success, non-zero for a length that does
/// not match.
///
/// # Safety
/// `cell` comes from [`alstm_torch_cell_new`]; the inputs hold `(B, T, I)` and `(B, H)` floats;
/// the result arrays hold as many as their lengths say and stay unread by anyone else until the
/// call returns.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn alstm_torch_cell_forward(
    cell: *mut NativeTorchCell,
    parts: u32,
    batch: u32,
    seq_len: u32,
    x: *const f32,
    hidden: *const f32,
    output: *mut f32,
    output_len: u32,
    hidden_out: *mut f32,
    hidden_len: u32,
) -> i32 {
    let (parts, batch, seq_len) = (parts as usize, batch as usize, seq_len as usize);
    guarded(1, || {
        let cell = &mut *cell;
        let s = cell.sizes;
        let input = Batch::new(s, batch, seq_len, x, hidden, std::ptr::null());
        let results = Results::without_extras(
            s,
            batch,
            seq_len,
            [
                (output, output_len),
                (hidden_out, hidden_len),
                (std::ptr::null_mut(), 0),
            ],
        );
        let chunks = RowChunks::new(batch, parts.min(cell.parts.len()));
        in_parallel(&mut cell.parts, chunks.parts(), Parts::Kept, |index, part| {
            chunks.take(index, |range| {
                let (rows, x, hidden, _) = input.rows(s, range);
                part.forward(rows, seq_len, x, hidden);
                let h = s.hidden;
                // SAFETY: the part holds the chunk's results; the thread that took the chunk
                // alone has these rows.
                let output = at(part.output_ptr(), rows * seq_len * h);
                let hidden = at(part.hidden_ptr(), rows * h);
                results.write_rows(s, batch, seq_len, range, output, hidden, &[]);
            });
        });
        0
    })
}

/// Frees a GRU or RNN cell.
///
/// # Safety
/// `cell` comes from [`alstm_torch_cell_new`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn alstm_torch_cell_free(cell: *mut NativeTorchCell) {
    free(cell);
}

/// One LSTM-family cell being trained, for up to `parts.len()` threads. The first part holds the
/// parameters and the optimizer state; the others get the parameters after each change.
pub struct NativeTrainer {
    sizes: Sizes,
    parts: Vec<Trainer>,
    /// The row ranges of the last forward.
    ranges: Vec<(usize, usize)>,
    seq_len: usize,
    batch: usize,
    /// The parameter gradients of the last backward, summed over the parts.
    grads: Vec<f32>,
    grad_x: Vec<f32>,
    grad_hidden: Vec<f32>,
    grad_state: Vec<f32>,
    relevance_x: Vec<f32>,
    relevance_rest: Vec<f32>,
}

impl NativeTrainer {
    fn len(&self) -> usize {
        self.parts[0].parameters_len()
    }

    /// Copies the first part's parameters to the others, then repacks every part, the parts in
    /// parallel.
    fn repack_all(&mut self) {
        let n = self.len();
        let (first, rest) = self.parts.split_first_mut().expect("one part");
        // SAFETY: both point to `n` parameters.
        let source = unsafe { at::<f32>(first.parameters_ptr(), n) };
        for part in rest {
            unsafe { std::slice::from_raw_parts_mut(part.parameters_ptr() as *mut f32, n) }
                .copy_from_slice(source);
        }
        let count = self.parts.len();
        in_parallel(&mut self.parts, count, Parts::Kept, |_, part| part.repack());
    }
}

lstm_constructor! {
    /// Makes a trainer (arguments as [`alstm_cell_new`]).
    alstm_trainer_new -> NativeTrainer = Trainer::new, |sizes, parts| {
        let len = parts[0].parameters_len();
        NativeTrainer {
            sizes,
            parts,
            ranges: vec![(0, 0)],
            seq_len: 0,
            batch: 0,
            grads: vec![0.0; len],
            grad_x: Vec::new(),
            grad_hidden: Vec::new(),
            grad_state: Vec::new(),
            relevance_x: Vec::new(),
            relevance_rest: Vec::new(),
        }
    }
}

/// Frees a trainer.
///
/// # Safety
/// `trainer` comes from [`alstm_trainer_new`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn alstm_trainer_free(trainer: *mut NativeTrainer) {
    free(trainer);
}

/// Floats in the flat parameters (and the gradients, and each optimizer state vector).
///
/// # Safety
/// `trainer` comes from [`alstm_trainer_new`].
#[no_mangle]
pub unsafe extern "C" fn alstm_trainer_parameters_len(trainer: *const NativeTrainer) -> usize {
    (&*trainer).len()
}

/// Address of a flat vector: 0 the parameters, 1 the summed gradients, 2–4 optimizer state slot
/// 0–2.
///
/// # Safety
/// `trainer` comes from [`alstm_trainer_new`].
#[no_mangle]
pub unsafe extern "C" fn alstm_trainer_vector(trainer: *mut NativeTrainer, which: u32) -> usize {
    let trainer = &mut *trainer;
    match which {
        0 => trainer.parts[0].parameters_ptr(),
        1 => trainer.grads.as_mut_ptr() as usize,
        slot => trainer.parts[0].optimizer_state_ptr(slot - 2),
    }
}

/// Repacks every part from the parameters (after the caller wrote them).
///
/// # Safety
/// `trainer` comes from [`alstm_trainer_new`].
#[no_mangle]
pub unsafe extern "C" fn alstm_trainer_repack(trainer: *mut NativeTrainer) -> i32 {
    guarded(1, || {
        let trainer = &mut *trainer;
        trainer.repack_all();
        0
    })
}

/// The recording forward over `parts` threads (`candidates`: keep what the relevance pass needs),
/// its results written into the arrays after the inputs (`output`, `hidden`, `state`, each with
/// its length, as [`alstm_cell_forward`]'s); 0 on success, non-zero for a length that does not
/// match.
///
/// # Safety
/// As [`alstm_cell_forward`].
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn alstm_trainer_forward(
    trainer: *mut NativeTrainer,
    parts: u32,
    batch: u32,
    seq_len: u32,
    x: *const f32,
    hidden: *const f32,
    state: *const f32,
    output_out: *mut f32,
    output_len: u32,
    hidden_out: *mut f32,
    hidden_len: u32,
    state_out: *mut f32,
    state_len: u32,
    candidates: u8,
) -> i32 {
    let (parts, batch, seq_len) = (parts as usize, batch as usize, seq_len as usize);
    guarded(1, || {
        let trainer = &mut *trainer;
        let s = trainer.sizes;
        let input = Batch::new(s, batch, seq_len, x, hidden, state);
        let results = Results::without_extras(
            s,
            batch,
            seq_len,
            [
                (output_out, output_len),
                (hidden_out, hidden_len),
                (state_out, state_len),
            ],
        );
        let ranges = shares(batch, parts.min(trainer.parts.len()));
        in_parallel(&mut trainer.parts, ranges.len(), Parts::Kept, |index, part| {
            let (rows, x, hidden, state) = input.rows(s, ranges[index]);
            part.keep_candidates(candidates != 0);
            part.forward(rows, seq_len, x, hidden, &state);
            let h = rows * s.hidden;
            // SAFETY: the part's buffers hold the results of its rows; it alone has these rows.
            results.write_rows(
                s,
                batch,
                seq_len,
                ranges[index],
                at(part.output_ptr(), seq_len * h),
                at(part.hidden_ptr(), h),
                at(part.state_ptr(), s.lanes * h),
            );
        });
        trainer.ranges = ranges;
        trainer.batch = batch;
        trainer.seq_len = seq_len;
        0
    })
}

/// The backward of the last forward, on the rows and threads it ran on: the parameter gradients
/// of this call summed into vector 1 (not added to earlier ones), the input gradients through
/// [`alstm_trainer_result`] 3–5. Empty `d_hidden`/`d_state` (length 0) count as zero.
///
/// # Safety
/// `trainer` comes from [`alstm_trainer_new`]; `d_output` holds `(B, T, H)` floats, `d_hidden`
/// `(B, H)` or none, `d_state` `(k, B, H)` or none.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn alstm_trainer_backward(
    trainer: *mut NativeTrainer,
    d_output: *const f32,
    d_hidden: *const f32,
    d_hidden_len: u32,
    d_state: *const f32,
    d_state_len: u32,
    want_x: u8,
    want_hidden: u8,
) -> i32 {
    let (d_hidden_len, d_state_len) = (d_hidden_len as usize, d_state_len as usize);
    guarded(1, || {
        let trainer = &mut *trainer;
        let s = trainer.sizes;
        let (batch, seq_len) = (trainer.batch, trainer.seq_len);
        let h = s.hidden;
        let d = Batch {
            batch,
            seq_len,
            x: floats(d_output, batch * seq_len * h),
            hidden: floats(d_hidden, d_hidden_len),
            state: floats(d_state, d_state_len),
        };
        let ranges = trainer.ranges.clone();
        in_parallel(&mut trainer.parts, ranges.len(), Parts::Kept, |index, part| {
            let rows = ranges[index];
            let (a, b) = rows;
            let output = &d.x[a * seq_len * h..b * seq_len * h];
            let hidden = if d.hidden.is_empty() {
                &[][..]
            } else {
                &d.hidden[a * h..b * h]
            };
            let state = gather(d.state, s.lanes, batch, h, rows);
            part.zero_grad();
            part.backward(output, hidden, &state, want_x != 0, want_hidden != 0);
        });
        let len = trainer.len();
        trainer.grads.clear();
        trainer.grads.resize(len, 0.0);
        for part in &trainer.parts[..ranges.len()] {
            for (sum, g) in trainer
                .grads
                .iter_mut()
                .zip(at::<f32>(part.gradients_ptr(), len))
            {
                *sum += g;
            }
        }
        if ranges.len() > 1 {
            let i = s.input;
            trainer
                .grad_x
                .resize(if want_x != 0 { batch * seq_len * i } else { 0 }, 0.0);
            trainer
                .grad_hidden
                .resize(if want_hidden != 0 { batch * h } else { 0 }, 0.0);
            trainer.grad_state.resize(s.lanes * batch * h, 0.0);
            for (part, &rows) in trainer.parts.iter().zip(&ranges) {
                if want_x != 0 {
                    place(
                        &mut trainer.grad_x,
                        part.grad_x_ptr(),
                        1,
                        batch,
                        seq_len * i,
                        rows,
                    );
                }
                if want_hidden != 0 {
                    place(
                        &mut trainer.grad_hidden,
                        part.grad_hidden_ptr(),
                        1,
                        batch,
                        h,
                        rows,
                    );
                }
                place(
                    &mut trainer.grad_state,
                    part.grad_state_ptr(),
                    s.lanes,
                    batch,
                    h,
                    rows,
                );
            }
        }
        0
    })
}

/// LRP-ε through the last forward (which kept its candidates), on its rows and threads; results
/// through [`alstm_trainer_result`] 6 (input relevance) and 7 (rest).
///
/// # Safety
/// `trainer` comes from [`alstm_trainer_new`]; `relevance` holds `(B, T, H)` floats.
#[no_mangle]
pub unsafe extern "C" fn alstm_trainer_relevance(
    trainer: *mut NativeTrainer,
    relevance: *const f32,
    eps: f32,
    bias_factor: f32,
) -> i32 {
    guarded(1, || {
        let trainer = &mut *trainer;
        let s = trainer.sizes;
        let (batch, seq_len, h, i) = (trainer.batch, trainer.seq_len, s.hidden, s.input);
        let given = floats(relevance, batch * seq_len * h);
        let ranges = trainer.ranges.clone();
        in_parallel(&mut trainer.parts, ranges.len(), Parts::Kept, |index, part| {
            let (a, b) = ranges[index];
            part.relevance(&given[a * seq_len * h..b * seq_len * h], eps, bias_factor);
        });
        if ranges.len() > 1 {
            trainer.relevance_x.resize(batch * seq_len * i, 0.0);
            trainer.relevance_rest.resize(batch, 0.0);
            for (part, &rows) in trainer.parts.iter().zip(&ranges) {
                place(
                    &mut trainer.relevance_x,
                    part.relevance_x_ptr(),
                    1,
                    batch,
                    seq_len * i,
                    rows,
                );
                place(
                    &mut trainer.relevance_rest,
                    part.relevance_rest_ptr(),
                    1,
                    batch,
                    1,
                    rows,
                );
            }
        }
        0
    })
}

/// Address of a result: 3 dLoss/d`x`, 4 d`hidden`, 5 d`state` (last backward); 6 input
/// relevance, 7 rest (last relevance pass); 0 for any other number (0–2 were the forward's
/// results, which it now writes into the caller's arrays).
///
/// # Safety
/// `trainer` comes from [`alstm_trainer_new`].
#[no_mangle]
pub unsafe extern "C" fn alstm_trainer_result(trainer: *const NativeTrainer, which: u32) -> usize {
    let trainer = &*trainer;
    if trainer.ranges.len() == 1 {
        let part = &trainer.parts[0];
        return match which {
            3 => part.grad_x_ptr(),
            4 => part.grad_hidden_ptr(),
            5 => part.grad_state_ptr(),
            6 => part.relevance_x_ptr(),
            7 => part.relevance_rest_ptr(),
            _ => 0,
        };
    }
    let address = |values: &Vec<f32>| values.as_ptr() as usize;
    match which {
        3 => address(&trainer.grad_x),
        4 => address(&trainer.grad_hidden),
        5 => address(&trainer.grad_state),
        6 => address(&trainer.relevance_x),
        7 => address(&trainer.relevance_rest),
        _ => 0,
    }
}

/// Puts the summed gradients (vector 1, which the caller may have written) into the first part.
unsafe fn gradients_to_first(trainer: &mut NativeTrainer) {
    let first = &mut trainer.parts[0];
    std::slice::from_raw_parts_mut(first.gradients_ptr() as *mut f32, trainer.grads.len())
        .copy_from_slice(&trainer.grads);
}

/// One `torch.optim.SGD` step from gradient vector 1, then every part repacked (in parallel); 0
/// on success.
///
/// # Safety
/// `trainer` comes from [`alstm_trainer_new`].
#[no_mangle]
pub unsafe extern "C" fn alstm_trainer_sgd_step(
    trainer: *mut NativeTrainer,
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: u8,
    weight_decay: f64,
) -> i32 {
    guarded(1, || {
        let trainer = &mut *trainer;
        gradients_to_first(trainer);
        trainer.parts[0].sgd_update(lr, momentum, dampening, nesterov != 0, weight_decay);
        trainer.repack_all();
        0
    })
}

/// One `torch.optim.Adam` (`decoupled`: `AdamW`) step from gradient vector 1, then every part
/// repacked; 0 on success.
///
/// # Safety
/// `trainer` comes from [`alstm_trainer_new`].
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn alstm_trainer_adam_step(
    trainer: *mut NativeTrainer,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: u8,
    decoupled: u8,
) -> i32 {
    guarded(1, || {
        let trainer = &mut *trainer;
        gradients_to_first(trainer);
        trainer.parts[0].adam_update(
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad != 0,
            decoupled != 0,
        );
        trainer.repack_all();
        0
    })
}

/// Optimizer steps taken.
///
/// # Safety
/// `trainer` comes from [`alstm_trainer_new`].
#[no_mangle]
pub unsafe extern "C" fn alstm_trainer_optimizer_steps(trainer: *const NativeTrainer) -> u32 {
    (&*trainer).parts[0].optimizer_steps()
}

/// Sets the optimizer step count (resuming).
///
/// # Safety
/// `trainer` comes from [`alstm_trainer_new`].
#[no_mangle]
pub unsafe extern "C" fn alstm_trainer_set_optimizer_steps(
    trainer: *mut NativeTrainer,
    steps: u32,
) {
    (&mut *trainer).parts[0].set_optimizer_steps(steps);
}

/// The best instruction set this CPU runs, as [`alstm_isa`] numbers them: which of the x86-64
/// libraries to load (`x86-64-v3` needs 2, `x86-64-v4` 3).
#[no_mangle]
pub extern "C" fn alstm_cpu_level() -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let v3 = has!("avx")
            && has!("avx2")
            && has!("bmi1")
            && has!("bmi2")
            && has!("f16c")
            && has!("fma")
            && has!("lzcnt")
            && has!("movbe");
        let v4 = v3
            && has!("avx512f")
            && has!("avx512bw")
            && has!("avx512cd")
            && has!("avx512dq")
            && has!("avx512vl");
        if v4 {
            3
        } else if v3 {
            2
        } else {
            1
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        crate::simd::ISA
    }
}

/// The ABI revision of this library.
#[no_mangle]
pub extern "C" fn alstm_abi_version() -> u32 {
    ABI_VERSION
}

/// The SIMD instruction set the kernels were built for: 0 portable, 1 SSE2, 2 AVX2+FMA,
/// 3 AVX-512, 4 NEON.
#[no_mangle]
pub extern "C" fn alstm_isa() -> u32 {
    crate::simd::ISA
}

/// Copies the message of the last failed call (at most `capacity` bytes) to `out`; returns its
/// full length in bytes.
///
/// # Safety
/// `out` points to `capacity` writable bytes (or is null with `capacity` 0).
#[no_mangle]
pub unsafe extern "C" fn alstm_last_error(out: *mut u8, capacity: u32) -> usize {
    let (capacity,) = (capacity as usize,);
    let message = LAST_ERROR.lock().unwrap_or_else(|e| e.into_inner());
    let n = message.len().min(capacity);
    if n > 0 {
        std::ptr::copy_nonoverlapping(message.as_ptr(), out, n);
    }
    message.len()
}

/// Runs the bare GEMM micro-kernel `repeats` times (see `calibrate::gemm`): time it for this
/// machine's GEMM rate.
#[no_mangle]
pub extern "C" fn alstm_calibrate_gemm(rows: u32, depth: u32, blocks: u32, repeats: u32) -> f32 {
    let (rows, depth, blocks, repeats) = (
        rows as usize,
        depth as usize,
        blocks as usize,
        repeats as usize,
    );
    crate::calibrate::gemm(rows, depth, blocks, repeats)
}

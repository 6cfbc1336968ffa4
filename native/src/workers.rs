//! Threads kept between calls, which run the parts of a split call.
//!
//! Spawning a thread per call cost 0.1–0.2 ms before it started, and a thread spawned from a
//! thread of Deno's pool (while Deno's main thread still ran) was often queued on the caller's
//! core: in about half the doc-sized `LSTM` forwards it started 1–3 ms late and the call ran
//! mostly on one core. Kept workers wake where they ran last (one per core) and, for the moments
//! between back-to-back calls, wait spinning rather than asleep.
//!
//! Parts of a batch split by rows ([`Parts::Kept`]) run each on its own worker, part `i` on worker
//! `i` in every call, while the caller only waits. A part then keeps its thread, and the core that
//! thread ran on, from call to call, where the caller is whichever thread of Deno's pool took the
//! call (a different one from call to call): when the caller or whichever worker was free first
//! took a part, one of the two parts of a doc-sized call often ran 15–20% slower than the other
//! (34 against 40–42 ms of the docs network's recording forward), and the doc `LSTM` forward took
//! 1.04 ms a step instead of 0.99, the docs network's training step 11.4 instead of 11.0.
//! Parts that meet at a barrier every step (the hidden-unit split, [`Parts::Together`]) each
//! run on a thread of their own, part 0 on the caller: a caller that only waited took a core its
//! two workers needed, and batch-1 `ArrayLSTM` took 0.063 ms a step instead of 0.035.
//!
//! A call that finds the workers busy with another call spawns its threads for itself.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long a worker waits for the next call spinning before it sleeps, when calls come that close
/// to each other: long enough to span the caller's work between the calls of a loop, short enough
/// to leave the core free. After a row-split call, a worker spins only if the call came within
/// this time of the one before: when calls are further apart (a doc-sized forward spends ~0.4 ms
/// in Deno before its call, mostly V8 zero-filling the 5 MB output array), the spin never catches
/// the next call and only takes the cores the caller's thread needs meanwhile.
const SPIN: Duration = Duration::from_micros(200);

/// Which threads may run which parts of a call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Parts {
    /// Part `i` on worker `i`, the caller waiting (parts that never wait for each other).
    Kept,
    /// Every part at once on a thread of its own, part 0 on the caller (parts that meet at a
    /// barrier: one thread must never run two).
    Together,
}

/// Runs `work(index, &mut items[index])` once for every `index < count`, on kept workers and the
/// calling thread as `parts` says (or, when another call has the workers, index 0 on the calling
/// thread and the others on threads spawned for the call); a single part runs on the calling
/// thread. Returns when all are done; a panic in any part is resumed here after that.
pub fn in_parallel<T: Send>(
    items: &mut [T],
    count: usize,
    parts: Parts,
    work: impl Fn(usize, &mut T) + Sync,
) {
    assert!(
        (1..=items.len()).contains(&count),
        "{count} parts of {} items",
        items.len()
    );
    if count == 1 {
        work(0, &mut items[0]);
        return;
    }
    let items = Items(items.as_mut_ptr());
    // SAFETY: each index below `count` is run exactly once, so each item is borrowed once.
    let task = |index: usize| work(index, unsafe { &mut *items.at(index) });
    match Pool::get().claim() {
        Some(claim) => claim.run(&task, count, parts),
        None => spawned(&task, count),
    }
}

/// The items of a call, handed to its threads one index each.
struct Items<T>(*mut T);

impl<T> Items<T> {
    fn at(&self, index: usize) -> *mut T {
        // SAFETY (of the caller's use): `index` is below the slice's length.
        unsafe { self.0.add(index) }
    }
}

// SAFETY: every thread gets a different item, and `T: Send`.
unsafe impl<T: Send> Sync for Items<T> {}

/// A call's parts on threads spawned for it (the workers were busy).
fn spawned(task: &(dyn Fn(usize) + Sync), count: usize) {
    std::thread::scope(|scope| {
        for index in 1..count {
            scope.spawn(move || task(index));
        }
        task(0);
    });
}

/// The call the workers run now: its parts' function with its lifetime erased (the caller waits
/// for every part before that borrow ends), how many parts it has and who runs them.
#[derive(Clone, Copy)]
struct Job {
    task: *const (dyn Fn(usize) + Sync + 'static),
    count: usize,
    parts: Parts,
    /// The call's number (read with the job, so a worker late to one call never runs the next
    /// one twice).
    generation: usize,
}

// SAFETY: the function is `Sync` and outlives the job (see `Claim::run`).
unsafe impl Send for Job {}

/// The kept workers and the call they serve.
struct Pool {
    /// Set while a call uses the workers.
    busy: AtomicBool,
    /// Bumped for every call; each worker looks at a call once it sees the number change.
    generation: AtomicUsize,
    job: Mutex<Option<Job>>,
    /// Parts of the current call not yet done.
    pending: AtomicUsize,
    /// The thread that waits for the current call's parts.
    caller: Mutex<Option<Thread>>,
    /// The first panic of the current call's parts.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    workers: Mutex<Vec<Thread>>,
    /// Microseconds the workers spin after the current call ([`SPIN`] or none).
    spin_micros: AtomicU64,
    /// When the last call returned.
    last_return: Mutex<Option<Instant>>,
}

static POOL: OnceLock<Pool> = OnceLock::new();

impl Pool {
    fn get() -> &'static Pool {
        POOL.get_or_init(|| Pool {
            busy: AtomicBool::new(false),
            generation: AtomicUsize::new(0),
            job: Mutex::new(None),
            pending: AtomicUsize::new(0),
            caller: Mutex::new(None),
            panic: Mutex::new(None),
            workers: Mutex::new(Vec::new()),
            spin_micros: AtomicU64::new(0),
            last_return: Mutex::new(None),
        })
    }

    /// The workers for one call, or `None` while another call has them.
    fn claim(&'static self) -> Option<Claim> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Claim { pool: self })
    }

    /// Worker `index`'s loop: wait for a call after call `seen`, then run its part: part
    /// `index + 1` of a [`Parts::Together`] call, part `index` of a [`Parts::Kept`] one. A call
    /// returns only once every one of its parts is done, so no worker can run a part of a call
    /// that has returned, however late it looks.
    fn serve(&'static self, index: usize, mut seen: usize) {
        loop {
            let spin = Duration::from_micros(self.spin_micros.load(Ordering::Relaxed));
            wait_until(spin, || {
                (self.generation.load(Ordering::Acquire) != seen).then_some(())
            });
            let job = lock(&self.job).expect("a call was posted before the generation moved");
            seen = job.generation;
            // SAFETY: the caller keeps the function alive until `pending` reaches zero, which
            // needs this worker's parts done.
            let task = unsafe { &*job.task };
            let part = match job.parts {
                Parts::Together => index + 1,
                Parts::Kept => index,
            };
            if part < job.count {
                #[cfg(test)]
                tests::pause_worker_if_asked();
                self.run_part(task, part);
            }
        }
    }

    /// Part `part`, its panic kept; the thread that finishes the last part wakes the caller.
    fn run_part(&self, task: &(dyn Fn(usize) + Sync), part: usize) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| task(part))) {
            lock(&self.panic).get_or_insert(panic);
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(caller) = lock(&self.caller).as_ref() {
                caller.unpark();
            }
        }
    }
}

/// The workers, held for one call.
struct Claim {
    pool: &'static Pool,
}

impl Claim {
    /// Runs the `count` parts of `task` as `parts` says; returns once all are done.
    fn run(&self, task: &(dyn Fn(usize) + Sync), count: usize, parts: Parts) {
        let pool = self.pool;
        let needed = match parts {
            Parts::Kept => count,
            Parts::Together => count - 1,
        };
        // Workers never take this lock, and no other call runs while the claim is held.
        let mut workers = lock(&pool.workers);
        // No call can be posted before this one, so a new worker waits for the call after the
        // last one, which is this one.
        let seen = pool.generation.load(Ordering::Acquire);
        while workers.len() < needed {
            let index = workers.len();
            let spawned = std::thread::Builder::new()
                .name(format!("arraylstm-{index}"))
                .spawn(move || pool.serve(index, seen));
            match spawned {
                Ok(handle) => workers.push(handle.thread().clone()),
                Err(_) => break,
            }
        }
        if workers.len() < needed {
            drop(workers);
            spawned(task, count);
            return;
        }
        // SAFETY: only the lifetime is erased; the wait below outlives every use of the pointer.
        let task_static: *const (dyn Fn(usize) + Sync + 'static) =
            unsafe { std::mem::transmute(task as *const (dyn Fn(usize) + Sync)) };
        *lock(&pool.caller) = Some(std::thread::current());
        // Parts that meet every step (a batch-1 call, the latency case) always keep the spin.
        let close = lock(&pool.last_return).is_some_and(|at| at.elapsed() < SPIN);
        let spin = if close || parts == Parts::Together {
            SPIN
        } else {
            Duration::ZERO
        };
        pool.spin_micros
            .store(spin.as_micros() as u64, Ordering::Relaxed);
        pool.pending.store(count, Ordering::Release);
        let generation = pool.generation.load(Ordering::Relaxed) + 1;
        {
            let mut job = lock(&pool.job);
            *job = Some(Job {
                task: task_static,
                count,
                parts,
                generation,
            });
            pool.generation.store(generation, Ordering::Release);
        }
        for worker in &workers[..needed] {
            worker.unpark();
        }
        drop(workers);
        if parts == Parts::Together {
            pool.run_part(task, 0);
        }
        // Asleep at once: a spinning caller would take a core from a worker still running.
        wait_until(Duration::ZERO, || {
            (pool.pending.load(Ordering::Acquire) == 0).then_some(())
        });
        *lock(&pool.last_return) = Some(Instant::now());
        if let Some(panic) = lock(&pool.panic).take() {
            resume_unwind(panic);
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.pool.busy.store(false, Ordering::Release);
    }
}

/// Polls `ready` until it gives a value: spinning for `spin`, then asleep between polls (the
/// thread that makes it ready unparks this one after; an unpark that comes first makes the next
/// `park` return at once, so none is lost).
fn wait_until<R>(spin: Duration, mut ready: impl FnMut() -> Option<R>) -> R {
    let start = Instant::now();
    let mut polls = 0u32;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        polls = polls.wrapping_add(1);
        if !polls.is_multiple_of(64) || start.elapsed() < spin {
            std::hint::spin_loop();
        } else {
            std::thread::park();
        }
    }
}

/// A lock that outlives a panic of its holder (parts' panics are caught and resumed).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::{in_parallel, Parts};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Barrier;
    use std::time::Duration;

    #[test]
    fn every_part_runs_once_on_a_thread_of_its_own() {
        for count in 1..=4 {
            let mut items = vec![0usize; 4];
            let barrier = Barrier::new(count);
            in_parallel(&mut items, count, Parts::Together, |index, item| {
                // Every part must be running at once to pass the barrier.
                barrier.wait();
                *item += index + 1;
            });
            let expected: Vec<usize> = (0..4).map(|i| if i < count { i + 1 } else { 0 }).collect();
            assert_eq!(items, expected);
        }
    }

    #[test]
    fn every_part_of_a_kept_call_runs_once_on_its_own_worker() {
        let caller = std::thread::current().id();
        for count in 1..=4 {
            for _ in 0..100 {
                let mut items = vec![(0usize, None); 4];
                in_parallel(&mut items, count, Parts::Kept, |index, item| {
                    let thread = std::thread::current();
                    item.0 += index + 1;
                    item.1 = Some((thread.id(), thread.name().map(String::from)));
                });
                for (index, (value, thread)) in items.iter().enumerate() {
                    assert_eq!(*value, if index < count { index + 1 } else { 0 });
                    let Some((id, name)) = thread else { continue };
                    // On its worker; or, a single part, or when another call had the workers,
                    // part 0 on the caller and the others on threads spawned for the call.
                    let worker = name.as_deref() == Some(&format!("arraylstm-{index}"));
                    let spawned = name.is_none() && *id != caller;
                    assert!(worker || spawned || (index == 0 && *id == caller));
                }
            }
        }
    }

    /// Set by [`a_call_waits_for_a_late_worker_and_no_part_outlives_it`]: a worker that has read
    /// a call waits before it runs its part, as a preempted one does.
    static PAUSE_WORKERS: AtomicBool = AtomicBool::new(false);
    /// How many times a worker has waited so.
    static PAUSES: AtomicUsize = AtomicUsize::new(0);

    pub(super) fn pause_worker_if_asked() {
        let worker = std::thread::current()
            .name()
            .is_some_and(|name| name.starts_with("arraylstm-"));
        if worker && PAUSE_WORKERS.load(Ordering::Acquire) {
            PAUSES.fetch_add(1, Ordering::AcqRel);
            std::thread::sleep(Duration::from_millis(3));
        }
    }

    #[test]
    fn a_call_waits_for_a_late_worker_and_no_part_outlives_it() {
        PAUSE_WORKERS.store(true, Ordering::Release);
        // Each call's workers start late; the caller posts the next call from a deeper stack
        // frame every other time, where a part of the earlier call run after it returned would
        // run a closure that is gone (its memory now filled with other bytes). (When the caller
        // or the first free worker took the parts, a worker late to one call once ran a part of
        // the next with the earlier call's closure.) Other tests' calls may hold the workers
        // (this call then spawns threads of its own): go on until the workers waited in 20.
        let mut round = 0;
        while PAUSES.load(Ordering::Acquire) < 20 {
            assert!(round < 2_000, "the workers never took part in a call");
            let call = || {
                let mut items = vec![0usize; 2];
                in_parallel(&mut items, 2, Parts::Kept, |index, item| {
                    std::thread::sleep(Duration::from_millis(1));
                    *item += round + index;
                });
                assert_eq!(items, [round, round + 1], "round {round}");
            };
            if round % 2 == 0 {
                call();
            } else {
                deeper(&call);
            }
            round += 1;
        }
        PAUSE_WORKERS.store(false, Ordering::Release);
    }

    /// `f` called below a frame of 4 KiB of other bytes.
    #[inline(never)]
    fn deeper(f: &dyn Fn()) {
        let filler = std::hint::black_box([0x55u8; 4096]);
        f();
        std::hint::black_box(&filler);
    }

    #[test]
    fn a_panic_in_a_part_reaches_the_caller_after_every_part_is_done() {
        let mut items = vec![0usize; 2];
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            in_parallel(&mut items, 2, Parts::Together, |index, item| {
                if index == 1 {
                    panic!("part 1 failed");
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                *item = 7;
            })
        }));
        assert!(result.is_err());
        assert_eq!(items[0], 7);
        // The workers serve the next call.
        in_parallel(&mut items, 2, Parts::Kept, |index, item| *item = index);
        assert_eq!(items, [0, 1]);
    }

    #[test]
    fn calls_at_once_from_several_threads_all_complete() {
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for round in 0..50 {
                        let mut items = vec![0usize; 3];
                        let parts = [Parts::Kept, Parts::Together][round % 2];
                        in_parallel(&mut items, 3, parts, |index, item| *item = index * 10);
                        assert_eq!(items, [0, 10, 20]);
                    }
                });
            }
        });
    }
}

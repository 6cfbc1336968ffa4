//! Threads kept between calls, which run the parts of a split call.
//!
//! Spawning a thread per call cost 0.1–0.2 ms before it started, and a thread spawned from a
//! thread of Deno's pool (while Deno's main thread still ran) was often queued on the caller's
//! core: in about half the doc-sized `LSTM` forwards it started 1–3 ms late and the call ran
//! mostly on one core. Kept workers wake where they ran last (one per core) and, for the moments
//! between back-to-back calls, wait spinning rather than asleep.
//!
//! Parts of a batch split by rows ([`Parts::Any`]) go to whichever thread is free first: the
//! workers, and the caller for parts no worker has taken. A caller Deno has just woken on the
//! core its main thread is leaving then does not hold up the call: with the caller always running
//! part 0 the doc `LSTM` forward took 1.18–1.27 ms a step, with the workers first 1.13–1.18.
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

/// How long a worker waits for the next call spinning before it sleeps: long enough to span the
/// caller's work between the calls of a loop, short enough to leave the core free.
const SPIN: Duration = Duration::from_micros(200);

/// Which threads may run which parts of a call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Parts {
    /// Any thread any part, each part once (parts that never wait for each other).
    Any,
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
    /// The current call's number (high 32 bits) beside its next part nobody has taken (low 32
    /// bits), as one word: a worker still holding an earlier call (it took that call's last part
    /// and was preempted before it looked for another) can then never take a part of this one.
    claims: AtomicU64,
    /// Parts of the current call not yet done.
    pending: AtomicUsize,
    /// The thread that waits for the current call's parts.
    caller: Mutex<Option<Thread>>,
    /// The first panic of the current call's parts.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    workers: Mutex<Vec<Thread>>,
}

static POOL: OnceLock<Pool> = OnceLock::new();

impl Pool {
    fn get() -> &'static Pool {
        POOL.get_or_init(|| Pool {
            busy: AtomicBool::new(false),
            generation: AtomicUsize::new(0),
            job: Mutex::new(None),
            claims: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            caller: Mutex::new(None),
            panic: Mutex::new(None),
            workers: Mutex::new(Vec::new()),
        })
    }

    /// The workers for one call, or `None` while another call has them.
    fn claim(&'static self) -> Option<Claim> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Claim { pool: self })
    }

    /// Worker `index`'s loop: wait for a call after call `seen`, then run its parts: part
    /// `index + 1` of a [`Parts::Together`] call, any parts left of a [`Parts::Any`] one.
    fn serve(&'static self, index: usize, mut seen: usize) {
        loop {
            wait_until(SPIN, || {
                (self.generation.load(Ordering::Acquire) != seen).then_some(())
            });
            let job = lock(&self.job).expect("a call was posted before the generation moved");
            seen = job.generation;
            // SAFETY: the caller keeps the function alive until `pending` reaches zero, which
            // needs this worker's parts done.
            let task = unsafe { &*job.task };
            match job.parts {
                Parts::Together if index + 1 < job.count => self.run_part(task, index + 1),
                Parts::Together => {}
                Parts::Any => self.run_left(task, job.count, job.generation),
            }
        }
    }

    /// Parts of [`Parts::Any`] call `generation` that nobody has taken yet, one after the other;
    /// none once a later call is posted.
    fn run_left(&self, task: &(dyn Fn(usize) + Sync), count: usize, generation: usize) {
        #[cfg(test)]
        tests::pause_worker_if_asked();
        loop {
            let claims = self.claims.load(Ordering::Acquire);
            let part = (claims & u64::from(u32::MAX)) as usize;
            if claims >> 32 != call_number(generation) || part >= count {
                return;
            }
            if self
                .claims
                .compare_exchange_weak(claims, claims + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
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
            Parts::Any => count,
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
        pool.pending.store(count, Ordering::Release);
        let generation = pool.generation.load(Ordering::Relaxed) + 1;
        pool.claims
            .store(call_number(generation) << 32, Ordering::Release);
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
        match parts {
            Parts::Any => pool.run_left(task, count, generation),
            Parts::Together => pool.run_part(task, 0),
        }
        // Asleep at once: a spinning caller would take a core from a worker still running.
        wait_until(Duration::ZERO, || {
            (pool.pending.load(Ordering::Acquire) == 0).then_some(())
        });
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

/// The low 32 bits of a call's number, as [`Pool::claims`] holds it (two calls 2^32 apart are
/// never both in flight).
fn call_number(generation: usize) -> u64 {
    generation as u64 & u64::from(u32::MAX)
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
    fn every_part_of_a_call_of_any_threads_runs_once() {
        for count in 1..=4 {
            for _ in 0..100 {
                let mut items = vec![0usize; 4];
                in_parallel(&mut items, count, Parts::Any, |index, item| {
                    *item += index + 1
                });
                let expected: Vec<usize> =
                    (0..4).map(|i| if i < count { i + 1 } else { 0 }).collect();
                assert_eq!(items, expected);
            }
        }
    }

    /// Set by [`a_worker_late_to_a_call_never_takes_a_part_of_the_next`]: a worker that has read
    /// a call waits before it looks for a part, as a preempted one does.
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
    fn a_worker_late_to_a_call_never_takes_a_part_of_the_next() {
        PAUSE_WORKERS.store(true, Ordering::Release);
        // The caller does every part of each call while the workers wait, then posts the next
        // call from a deeper stack frame every other time, where a part of the earlier call
        // would run a closure that is gone (its memory now filled with other bytes).
        // Other tests' calls may hold the workers (this call then spawns threads of its own):
        // go on until the workers have waited in 20 calls.
        let mut round = 0;
        while PAUSES.load(Ordering::Acquire) < 20 {
            assert!(round < 2_000, "the workers never took part in a call");
            let call = || {
                let mut items = vec![0usize; 2];
                in_parallel(&mut items, 2, Parts::Any, |index, item| {
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
        in_parallel(&mut items, 2, Parts::Any, |index, item| *item = index);
        assert_eq!(items, [0, 1]);
    }

    #[test]
    fn calls_at_once_from_several_threads_all_complete() {
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for round in 0..50 {
                        let mut items = vec![0usize; 3];
                        let parts = [Parts::Any, Parts::Together][round % 2];
                        in_parallel(&mut items, 3, parts, |index, item| *item = index * 10);
                        assert_eq!(items, [0, 10, 20]);
                    }
                });
            }
        });
    }
}

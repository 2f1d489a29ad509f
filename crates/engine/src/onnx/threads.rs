//! Threads for ONNX runs. tract runs a plan on the calling thread, and its
//! matrix products can split over a pool of threads. A run that has the
//! process to itself (no other ONNX run under way) may split them over
//! every core; runs that overlap use one thread each, since the cores are
//! busy anyway and splitting would only add contention.
//!
//! Splitting pays for large products and costs a small model its
//! dispatch (silero-vad: 0.64 ms on one thread, 0.97 ms split), so each
//! model keeps how long its runs alone took each way ([`Pace`]) and takes
//! the faster, trying the other one run in 32 to follow a change of load.
//!
//! Splitting a product changes which thread computes each tile of its
//! output, never the order of any sum, so outputs and traces are the same
//! bit for bit with any thread count (tested).

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use tract_linalg::multithread::{Executor, multithread_tract_scope};

/// ONNX runs under way in this process.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// The threads a run alone may use; 0: one per core.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// The pools built so far, by size.
static POOLS: Mutex<Vec<(usize, Executor)>> = Mutex::new(Vec::new());

thread_local! {
    /// The thread count [`with_threads`] imposes on this thread's runs.
    static FORCED: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Sets how many threads an ONNX run that has the process to itself may
/// split its matrix products over: 0 for one per core (the default), 1 to
/// never split.
pub fn set_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

/// How many threads a run alone splits over.
pub fn threads() -> usize {
    // Asking the system reads cgroup files: once per process.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    match THREADS.load(Ordering::Relaxed) {
        0 => *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from)),
        n => n,
    }
}

fn pool(n: usize) -> Executor {
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, executor)) = pools.iter().find(|(size, _)| *size == n) {
        return executor.clone();
    }
    let executor = Executor::multithread_with_name(n, "vouch-onnx");
    pools.push((n, executor.clone()));
    executor
}

/// Counts a run under way for as long as it lives.
struct Running;

impl Running {
    /// Enters a run; whether it is the only one.
    fn enter() -> (Running, bool) {
        (Running, RUNNING.fetch_add(1, Ordering::SeqCst) == 0)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long one model's runs alone took on one thread and split (moving
/// averages, in nanoseconds; 0: not yet), and how many it made.
#[derive(Debug, Default)]
pub(super) struct Pace {
    single: AtomicU64,
    split: AtomicU64,
    runs: AtomicU64,
}

impl Pace {
    /// Whether the next run alone splits: each way once first, then the
    /// faster, and the slower one run in 32.
    fn split(&self) -> bool {
        let k = self.runs.fetch_add(1, Ordering::Relaxed);
        let (single, split) = (
            self.single.load(Ordering::Relaxed),
            self.split.load(Ordering::Relaxed),
        );
        if single == 0 || split == 0 {
            return single != 0;
        }
        (split < single) != (k % 32 == 31)
    }

    fn record(&self, split: bool, started: Instant) {
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let slot = if split { &self.split } else { &self.single };
        let old = slot.load(Ordering::Relaxed);
        let new = if old == 0 {
            took
        } else {
            old / 4 * 3 + took / 4
        };
        slot.store(new.max(1), Ordering::Relaxed);
    }
}

/// Runs `f` (one plan run of a model with `pace`, which must not unwind:
/// tract's panics are caught inside it), split over every thread when no
/// other run is under way and splitting is the faster for this model.
pub(super) fn run<R>(pace: &Pace, f: impl FnOnce() -> R) -> R {
    let (_running, alone) = Running::enter();
    let n = match FORCED.get() {
        Some(n) => n,
        None if alone && threads() > 1 => {
            let split = pace.split();
            let started = Instant::now();
            let out = if split {
                multithread_tract_scope(pool(threads()), f)
            } else {
                f()
            };
            pace.record(split, started);
            return out;
        }
        None => 1,
    };
    if n > 1 {
        multithread_tract_scope(pool(n), f)
    } else {
        f()
    }
}

/// Runs `f` with the matrix products of the ONNX runs it makes on this
/// thread split over `n` threads (1: none), whatever else runs: for tests
/// and benchmarks that compare thread counts.
pub fn with_threads<R>(n: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.set(self.0);
        }
    }
    let _restore = Restore(FORCED.replace(Some(n.max(1))));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_takes_the_faster_way_and_now_and_then_the_other() {
        let pace = Pace::default();
        let started = Instant::now();
        // One run each way first.
        assert!(!pace.split());
        pace.record(false, started);
        assert!(pace.split());
        // Splitting measured slower (a small model): mostly not.
        pace.split
            .store(pace.single.load(Ordering::Relaxed) * 2, Ordering::Relaxed);
        let splits = (0..64).filter(|_| pace.split()).count();
        assert_eq!(splits, 2, "the slower way once in 32");
        // Faster: mostly split.
        pace.split.store(1, Ordering::Relaxed);
        let splits = (0..64).filter(|_| pace.split()).count();
        assert_eq!(splits, 62);
    }
}

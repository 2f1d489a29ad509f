//! Threads for ONNX runs. tract runs a plan on the calling thread, and its
//! matrix products can split over a pool of threads. A run that has the
//! process to itself (no other ONNX run under way) splits them over every
//! core; runs that overlap use one thread each, since the cores are busy
//! anyway and splitting would only add contention.
//!
//! Splitting a product changes which thread computes each tile of its
//! output, never the order of any sum, so outputs and traces are the same
//! bit for bit with any thread count (tested on every sample model).

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

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
    match THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
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

/// Runs `f` (one plan run, which must not unwind: tract's panics are
/// caught inside it) over every thread when no other run is under way.
pub(super) fn run<R>(f: impl FnOnce() -> R) -> R {
    let (_running, alone) = Running::enter();
    let n = FORCED.get().unwrap_or(if alone { threads() } else { 1 });
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

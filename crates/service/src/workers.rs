//! The node's compute threads. CPU-bound work (model runs and loads,
//! proofs, LLM scoring) runs on a fixed set of threads, one per worker
//! permit, and each job goes to the idle thread that finished last.
//!
//! tokio's blocking pool would run the same work, but it wakes whichever
//! of its idle threads has waited longest, so a stream of requests to one
//! model moves from thread to thread, and each run meets caches, allocator
//! heaps and tract's thread-local scratch buffers that went cold on the
//! thread that took it. Here back-to-back jobs land on one thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::NodeError;

type Job = Box<dyn FnOnce() + Send>;

/// One compute thread, by the channel that feeds it.
struct Worker(mpsc::Sender<Job>);

/// A fixed set of compute threads, handed out most recently idle first.
pub(crate) struct Workers {
    permits: Arc<Semaphore>,
    /// Idle threads; the last is the one that finished last.
    idle: Arc<Mutex<Vec<Worker>>>,
}

impl Workers {
    /// `n` threads (at least one), named `vouch-compute-{i}`. They end
    /// when this and every job handed to them are gone.
    pub(crate) fn new(n: usize) -> Workers {
        let n = n.max(1);
        let idle = (0..n)
            .map(|i| {
                let (jobs, queue) = mpsc::channel::<Job>();
                std::thread::Builder::new()
                    .name(format!("vouch-compute-{i}"))
                    .spawn(move || {
                        while let Ok(job) = queue.recv() {
                            job();
                        }
                    })
                    .expect("spawning a compute thread");
                Worker(jobs)
            })
            .collect();
        Workers {
            permits: Arc::new(Semaphore::new(n)),
            idle: Arc::new(Mutex::new(idle)),
        }
    }

    /// Waits for a permit: at most one job or in-place run per thread at
    /// once. While the permit lives, an idle thread is there for it.
    pub(crate) async fn permit(&self) -> Result<OwnedSemaphorePermit, NodeError> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| NodeError::Internal("worker pool closed".into()))
    }

    /// Runs `f` on the idle thread that finished last, under `permit`. The
    /// permit goes with the job and is let go when the job ends (not when
    /// the caller stops waiting), so a permit always finds a thread. A
    /// panic in `f` is an error here, as a failed task would be.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        permit: OwnedSemaphorePermit,
        f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        let worker = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .expect("a permit is held only while a compute thread is idle for it");
        let (answer, answered) = oneshot::channel();
        let (idle, jobs) = (self.idle.clone(), worker.0.clone());
        // Work that reaches for the runtime (a handle, a spawned task)
        // finds it, as on tokio's blocking pool.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let job: Job = Box::new(move || {
            let out = {
                let _entered = runtime.as_ref().map(|r| r.enter());
                catch_unwind(AssertUnwindSafe(f))
            };
            // Idle again before the permit goes, so that the next permit
            // finds this thread, and on top of the stack.
            idle.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Worker(jobs));
            drop(permit);
            let _ = answer.send(out);
        });
        worker
            .0
            .send(job)
            .map_err(|_| NodeError::Internal("a compute thread is gone".into()))?;
        match answered.await {
            Ok(Ok(out)) => out,
            Ok(Err(panic)) => Err(NodeError::Internal(format!(
                "a worker task failed: {}",
                panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "it panicked".into())
            ))),
            Err(_) => Err(NodeError::Internal("a compute thread is gone".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_name() -> String {
        std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn back_to_back_jobs_run_on_the_thread_that_finished_last() {
        let workers = Workers::new(3);
        let mut names = Vec::new();
        for _ in 0..20 {
            let permit = workers.permit().await.unwrap();
            names.push(workers.run(permit, || Ok(thread_name())).await.unwrap());
        }
        assert!(names[0].starts_with("vouch-compute-"), "{names:?}");
        assert!(names.iter().all(|n| *n == names[0]), "{names:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_at_once_use_every_thread_and_no_more() {
        let workers = Arc::new(Workers::new(3));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let (workers, running, most) = (workers.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let permit = workers.permit().await.unwrap();
                workers
                    .run(permit, move || {
                        use std::sync::atomic::Ordering::SeqCst;
                        let now = running.fetch_add(1, SeqCst) + 1;
                        most.fetch_max(now, SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(30));
                        running.fetch_sub(1, SeqCst);
                        Ok(thread_name())
                    })
                    .await
                    .unwrap()
            }));
        }
        let mut names = std::collections::BTreeSet::new();
        for t in tasks {
            names.insert(t.await.unwrap());
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_is_an_error_and_a_caller_that_stops_waiting_frees_nothing_early() {
        let workers = Workers::new(1);
        let permit = workers.permit().await.unwrap();
        let err = workers
            .run::<()>(permit, || panic!("a broken model"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("a broken model"), "{err}");
        // A caller that gives up: the job keeps its permit until it ends,
        // so the next job waits for the one thread instead of finding none.
        let (started, wait) = oneshot::channel();
        let permit = workers.permit().await.unwrap();
        let slow = workers.run(permit, move || {
            let _ = started.send(());
            std::thread::sleep(std::time::Duration::from_millis(100));
            Ok(())
        });
        let abandoned = tokio::time::timeout(std::time::Duration::from_millis(10), slow);
        assert!(abandoned.await.is_err());
        wait.await.unwrap();
        let permit = workers.permit().await.unwrap();
        let after = workers.run(permit, || Ok(thread_name())).await.unwrap();
        assert_eq!(after, "vouch-compute-0");
        // The runtime is at hand inside a job.
        let permit = workers.permit().await.unwrap();
        workers
            .run(permit, || {
                Ok(tokio::runtime::Handle::current().metrics().num_workers())
            })
            .await
            .unwrap();
    }
}

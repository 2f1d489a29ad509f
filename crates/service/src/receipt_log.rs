//! The receipt log: receipts and their trace leaves, written behind the
//! answer by one writer thread that lets them gather for a few
//! milliseconds and commits them in one transaction.
//!
//! Those commits are not synced; the writer makes them durable with a
//! [`Store::flush`] at least every second, and only then lets go of the
//! receipts in memory. A receipt is readable (through [`ReceiptLog::receipt`]
//! and [`ReceiptLog::leaves`]) from the moment it is appended, whether or not
//! it has reached the database.
//!
//! If writing or flushing fails (a full disk), the writer keeps the batch
//! and retries every second, and [`ReceiptLog::append`] refuses new receipts
//! with that error until a flush succeeds: the node stops answering rather
//! than hand out receipts it cannot keep. The store opens its database
//! again after such an error, in a new epoch, losing the commits that were
//! not yet durable: the receipts committed in an older epoch than the flush
//! that followed them are written again. [`ReceiptLog::flush`] waits for the
//! queue to drain and makes it durable; dropping the log does both first.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vouch_store::{Epoch, Store};
use vouch_types::{Digest, Receipt};

use crate::error::NodeError;

/// Receipts held in memory, waiting for the writer, at most.
const MAX_QUEUED: usize = 4096;
/// How long the writer lets receipts gather before it writes them.
const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// How long the writer waits before retrying a failed write.
const RETRY: Duration = Duration::from_secs(1);
/// How long committed receipts wait, at most, to be made durable.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Write-behind receipt log over the store.
pub(crate) struct ReceiptLog {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when work is queued, a batch is written, or the log closes.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Appended and not yet durable, by id.
    pending: HashMap<Digest, (Receipt, Arc<[Digest]>)>,
    /// Ids in append order that the writer has not taken yet.
    queue: Vec<Digest>,
    /// Ids the writer is committing now.
    writing: usize,
    /// Ids committed and not yet flushed, with the epoch of their commit.
    unflushed: Vec<(Epoch, Digest)>,
    /// The last failed write or flush, until a flush succeeds.
    failing: Option<NodeError>,
    closed: bool,
}

impl ReceiptLog {
    /// Starts the writer thread.
    pub(crate) fn start(store: Arc<Store>) -> ReceiptLog {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("vouch-receipts".into())
                .spawn(move || write_loop(&shared, &store))
                .expect("spawning the receipt writer thread")
        };
        ReceiptLog {
            shared,
            writer: Some(writer),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses work while receipts cannot be written.
    pub(crate) fn check(&self) -> Result<(), NodeError> {
        let state = self.lock();
        if let Some(e) = &state.failing {
            return Err(refusal(e));
        }
        if state.queue.len() + state.writing >= MAX_QUEUED {
            return Err(NodeError::Storage(format!(
                "{MAX_QUEUED} receipts are waiting to be written; the disk is too slow for this load, retry shortly"
            )));
        }
        Ok(())
    }

    /// Queues a receipt and its trace leaves for writing.
    pub(crate) fn append(&self, receipt: Receipt, leaves: Vec<Digest>) -> Result<(), NodeError> {
        self.check()?;
        let mut state = self.lock();
        let id = receipt.id;
        // The same receipt twice (same request in the same millisecond) is
        // one record.
        if state.pending.contains_key(&id) {
            return Ok(());
        }
        state.pending.insert(id, (receipt, leaves.into()));
        state.queue.push(id);
        drop(state);
        self.shared.changed.notify_all();
        Ok(())
    }

    /// A receipt that is queued or being written (None when it is not).
    pub(crate) fn receipt(&self, id: &Digest) -> Option<Receipt> {
        self.lock().pending.get(id).map(|(r, _)| r.clone())
    }

    /// The leaves of a receipt that is queued or being written.
    pub(crate) fn leaves(&self, id: &Digest) -> Option<Arc<[Digest]>> {
        self.lock().pending.get(id).map(|(_, l)| l.clone())
    }

    /// Waits until everything appended so far is committed (or the writer
    /// is failing), then makes it durable.
    pub(crate) fn flush(&self, store: &Store) -> Result<(), NodeError> {
        self.drained()?;
        flush(&self.shared, store)
    }

    /// Waits until everything appended so far is committed.
    fn drained(&self) -> Result<(), NodeError> {
        let mut state = self.lock();
        while (!state.queue.is_empty() || state.writing > 0) && state.failing.is_none() {
            if self.writer.as_ref().is_none_or(JoinHandle::is_finished) {
                return Err(NodeError::Internal(
                    "the receipt writer stopped; restart the node (see the log)".into(),
                ));
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, RETRY)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        match &state.failing {
            Some(e) => Err(refusal(e)),
            None => Ok(()),
        }
    }
}

/// Makes the receipts committed so far durable and lets go of them; those
/// an I/O error lost (committed in an older epoch than the flush's, or
/// any, when the flush failed) go back in the queue to be written again.
fn flush(shared: &Shared, store: &Store) -> Result<(), NodeError> {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let taken = std::mem::take(&mut state.unflushed);
    drop(state);
    let result = store.flush();
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let mut lost = Vec::new();
    for (epoch, id) in taken {
        if result.as_ref().is_ok_and(|&flushed| flushed == epoch) {
            state.pending.remove(&id);
        } else {
            lost.push(id);
        }
    }
    if !lost.is_empty() {
        tracing::warn!(
            receipts = lost.len(),
            "receipts not made durable; writing them again"
        );
        state.requeue(lost);
    }
    let result = result.map(drop).map_err(NodeError::from);
    // New receipts wait until a flush works again.
    state.failing = result.as_ref().err().cloned();
    drop(state);
    shared.changed.notify_all();
    result
}

impl State {
    /// Puts `ids` back at the front of the queue, to be written first.
    fn requeue(&mut self, mut ids: Vec<Digest>) {
        ids.append(&mut self.queue);
        self.queue = ids;
    }
}

fn refusal(e: &NodeError) -> NodeError {
    match e {
        NodeError::DiskFull(m) => NodeError::DiskFull(format!("receipts cannot be written: {m}")),
        other => NodeError::Storage(format!("receipts cannot be written: {other}")),
    }
}

impl Drop for ReceiptLog {
    fn drop(&mut self) {
        self.lock().closed = true;
        self.shared.changed.notify_all();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

fn write_loop(shared: &Shared, store: &Store) {
    let lock = || shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let mut flushed = Instant::now();
    let mut state = lock();
    loop {
        // Wait for receipts to write, or for committed ones' flush.
        while state.queue.is_empty() && !state.closed && state.failing.is_none() {
            let left = FLUSH_EVERY.saturating_sub(flushed.elapsed());
            if !state.unflushed.is_empty() && left.is_zero() {
                break;
            }
            state = if state.unflushed.is_empty() {
                shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner())
            } else {
                shared
                    .changed
                    .wait_timeout(state, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            };
        }
        if !state.queue.is_empty() {
            if !state.closed {
                // Let a batch gather, off the answering threads' backs.
                drop(state);
                std::thread::sleep(BATCH_WINDOW);
                state = lock();
            }
            state = write_batch(shared, store, state);
        }
        // Flush what is due; while failing with nothing to write, a flush
        // tells whether the disk works again.
        let due = !state.unflushed.is_empty() && (state.closed || flushed.elapsed() >= FLUSH_EVERY);
        let probe = state.failing.is_some() && state.queue.is_empty() && !state.closed;
        if (state.failing.is_none() && due) || probe {
            drop(state);
            if let Err(e) = flush(shared, store) {
                tracing::warn!(error = %e, "flushing receipts failed");
            }
            flushed = Instant::now();
            state = lock();
        }
        if state.failing.is_some() && !state.closed {
            let (s, _) = shared
                .changed
                .wait_timeout(state, RETRY)
                .unwrap_or_else(|e| e.into_inner());
            state = s;
        } else if state.closed
            && (state.failing.is_some() || state.queue.is_empty() && state.unflushed.is_empty())
        {
            // Drained and durable, or closing with a failing disk: give up,
            // the error was logged.
            return;
        }
    }
}

/// Commits the queued receipts in one transaction.
fn write_batch<'a>(
    shared: &'a Shared,
    store: &Store,
    mut state: MutexGuard<'a, State>,
) -> MutexGuard<'a, State> {
    let ids = std::mem::take(&mut state.queue);
    state.writing = ids.len();
    let batch: Vec<(Receipt, Arc<[Digest]>)> = ids
        .iter()
        .filter_map(|id| state.pending.get(id).cloned())
        .collect();
    drop(state);
    let result = store.put_receipts(batch.iter().map(|(r, l)| (r, &l[..])));
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    state.writing = 0;
    match result {
        // Failing ends with a flush that works, not with a commit that
        // may not be durable.
        Ok(epoch) => state
            .unflushed
            .extend(ids.into_iter().map(|id| (epoch, id))),
        Err(e) => {
            tracing::error!(error = %e, receipts = ids.len(), "writing receipts failed; retrying");
            state.failing = Some(NodeError::from(e));
            state.requeue(ids);
        }
    }
    shared.changed.notify_all();
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_types::receipt::RECEIPT_VERSION;
    use vouch_types::{Determinism, EngineInfo, Kind, ReceiptBody, SecretKey, TraceCommitment};

    fn receipt(key: &SecretKey, i: u64) -> (Receipt, Vec<Digest>) {
        let leaves: Vec<Digest> = (0..i % 5)
            .map(|j| Digest::of(Kind::TraceLeaf, &[i as u8, j as u8]))
            .collect();
        let body = ReceiptBody {
            version: RECEIPT_VERSION,
            model: Digest::of(Kind::Model, b"m"),
            request: Digest::of(Kind::Input, &i.to_le_bytes()),
            output: Digest::of(Kind::Output, &i.to_le_bytes()),
            trace: TraceCommitment {
                root: vouch_types::merkle::root(&leaves),
                len: leaves.len() as u64,
            },
            engine: EngineInfo {
                name: "test".into(),
                version: "0".into(),
            },
            determinism: Determinism::Exact,
            seed: None,
            node: key.public(),
            nonce: format!("n{i}"),
            timestamp_ms: i,
            price: 0,
        };
        (body.sign(key), leaves)
    }

    #[test]
    fn the_writer_makes_receipts_durable_within_seconds_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_bytes(&[8; 32]);
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let log = ReceiptLog::start(store.clone());
        let (r, l) = receipt(&key, 3);
        log.append(r.clone(), l).unwrap();
        // Held in memory until a flush made it durable, then let go.
        assert!(log.receipt(&r.id).is_some());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while log.receipt(&r.id).is_some() {
            assert!(std::time::Instant::now() < deadline, "never flushed");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(store.receipt(&r.id).unwrap(), Some(r));
    }

    #[test]
    fn receipts_are_readable_at_once_and_durable_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_bytes(&[7; 32]);
        let all: Vec<_> = (0..300).map(|i| receipt(&key, i)).collect();
        {
            let store = Arc::new(Store::open(dir.path()).unwrap());
            let log = Arc::new(ReceiptLog::start(store.clone()));
            std::thread::scope(|s| {
                for part in all.chunks(75) {
                    let (log, store) = (log.clone(), store.clone());
                    s.spawn(move || {
                        for (r, l) in part {
                            log.append(r.clone(), l.clone()).unwrap();
                            // Read-your-writes, queued or committed.
                            let got = log.receipt(&r.id).or_else(|| store.receipt(&r.id).unwrap());
                            assert_eq!(got.as_ref(), Some(r));
                        }
                    });
                }
            });
            log.flush(&store).unwrap();
            for (r, l) in &all {
                assert!(
                    log.receipt(&r.id).is_none(),
                    "flushed receipts leave memory"
                );
                assert_eq!(store.trace_leaves(&r.id).unwrap().as_deref(), Some(&l[..]));
            }
            // The same receipt twice is one record.
            log.append(all[0].0.clone(), all[0].1.clone()).unwrap();
            // Appended after the flush and never flushed: dropping drains them.
            let late = receipt(&key, 1000);
            log.append(late.0.clone(), late.1.clone()).unwrap();
            drop(log);
            assert_eq!(store.receipt(&late.0.id).unwrap(), Some(late.0));
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.receipt_count().unwrap(), 301);
        for (r, _) in &all {
            assert_eq!(store.receipt(&r.id).unwrap().as_ref(), Some(r));
        }
    }
}

//! Loaded models, bounded by memory: least recently used models are
//! dropped when the budget is exceeded (a model larger than the whole
//! budget is still kept while it is the only one).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use vouch_engine::LoadedModel;
use vouch_types::Digest;

struct Entry {
    model: Arc<dyn LoadedModel>,
    bytes: usize,
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Digest, Entry>,
    used: usize,
    tick: u64,
}

/// A memory-bounded LRU of loaded models keyed by model id.
pub struct ModelCache {
    budget: usize,
    inner: Mutex<Inner>,
}

impl ModelCache {
    /// A cache holding at most `budget` bytes of models.
    pub fn new(budget: usize) -> ModelCache {
        ModelCache {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A cached model, marked as just used.
    pub fn get(&self, id: &Digest) -> Option<Arc<dyn LoadedModel>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let e = inner.entries.get_mut(id)?;
        e.last_used = tick;
        Some(e.model.clone())
    }

    /// Adds a model, evicting the least recently used until it fits.
    pub fn insert(&self, id: Digest, model: Arc<dyn LoadedModel>) {
        let bytes = model.memory_bytes();
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(old) = inner.entries.insert(
            id,
            Entry {
                model,
                bytes,
                last_used: tick,
            },
        ) {
            inner.used -= old.bytes;
        }
        inner.used += bytes;
        while inner.used > self.budget && inner.entries.len() > 1 {
            let Some(victim) = inner
                .entries
                .iter()
                .filter(|(k, _)| **k != id)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(e) = inner.entries.remove(&victim) {
                inner.used -= e.bytes;
                tracing::debug!(model = %victim, bytes = e.bytes, "evicted from model cache");
            }
        }
    }

    /// Drops a model (e.g. after its blob was found corrupted).
    pub fn remove(&self, id: &Digest) {
        let mut inner = self.lock();
        if let Some(e) = inner.entries.remove(id) {
            inner.used -= e.bytes;
        }
    }

    /// (models, bytes) held now.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.entries.len(), inner.used)
    }
}

/// The last `cap` values inserted, by key; the oldest goes first.
#[derive(Debug)]
pub struct Recent<K, V> {
    cap: usize,
    map: HashMap<K, V>,
    order: std::collections::VecDeque<K>,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Recent<K, V> {
    /// Keeps at most `cap` values.
    pub fn new(cap: usize) -> Recent<K, V> {
        Recent {
            cap,
            map: HashMap::new(),
            order: Default::default(),
        }
    }

    /// Keeps `value` under `key`, dropping the oldest beyond the cap.
    pub fn insert(&mut self, key: K, value: V) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    /// The value under `key`, if kept.
    pub fn get(&self, key: &K) -> Option<V> {
        self.map.get(key).cloned()
    }
}

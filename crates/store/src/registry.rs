//! The model registry: signed manifests by name and version, and by id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use redb::{Durability, ReadableTable};
use vouch_types::encode::{Reader, Sink};
use vouch_types::{Digest, Manifest, Signature, SignedManifest};

use crate::{MODEL_IDS, MODELS, Store, StoreError, db_err};

/// A model registered in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRecord {
    /// The signed manifest.
    pub signed: SignedManifest,
    /// Registration order (monotonic per store): the newest version wins.
    pub seq: u64,
    /// When it was registered, Unix milliseconds.
    pub created_ms: u64,
}

impl ModelRecord {
    /// The model id.
    pub fn id(&self) -> Digest {
        self.signed.manifest.id()
    }

    /// `name@version`, as messages and metrics name the model.
    pub fn label(&self) -> String {
        format!(
            "{}@{}",
            self.signed.manifest.name, self.signed.manifest.version
        )
    }

    fn encode(&self) -> Vec<u8> {
        let manifest = self.signed.manifest.encode();
        let mut b = Vec::with_capacity(manifest.len() + 80);
        b.put_u64(self.seq);
        b.put_u64(self.created_ms);
        b.put(&self.signed.signature.to_bytes());
        b.put(&manifest);
        b
    }

    fn decode(bytes: &[u8]) -> Result<ModelRecord, String> {
        let mut r = Reader::new(bytes);
        let seq = r.u64().map_err(|e| e.to_string())?;
        let created_ms = r.u64().map_err(|e| e.to_string())?;
        let sig: [u8; 64] = r.array().map_err(|e| e.to_string())?;
        let rest = r.take(r.remaining()).map_err(|e| e.to_string())?;
        let manifest = Manifest::decode(rest).map_err(|e| e.to_string())?;
        Ok(ModelRecord {
            signed: SignedManifest {
                manifest,
                signature: Signature::from_bytes(&sig),
            },
            seq,
            created_ms,
        })
    }
}

impl Store {
    /// Registers a model. Pushing identical content again is a no-op that
    /// returns the existing record; other content under a taken
    /// name and version is refused.
    pub fn put_model(
        &self,
        signed: SignedManifest,
        now_ms: u64,
    ) -> Result<ModelRecord, StoreError> {
        let m = &signed.manifest;
        let id = m.id();
        let record = self
            .write(Durability::Immediate, |txn| {
                let mut models = txn.open_table(MODELS).map_err(db_err)?;
                if let Some(existing) = models
                    .get((m.name.as_str(), m.version.as_str()))
                    .map_err(db_err)?
                {
                    let existing = ModelRecord::decode(existing.value()).map_err(|detail| {
                        StoreError::Record {
                            what: m.name.clone(),
                            detail,
                        }
                    })?;
                    if existing.id() == id {
                        return Ok(existing);
                    }
                    return Err(StoreError::VersionTaken {
                        name: m.name.clone(),
                        version: m.version.clone(),
                        existing: existing.id(),
                    });
                }
                let seq = models
                    .iter()
                    .map_err(db_err)?
                    .filter_map(|row| row.ok())
                    .filter_map(|(_, v)| ModelRecord::decode(v.value()).ok())
                    .map(|r| r.seq + 1)
                    .max()
                    .unwrap_or(0);
                let record = ModelRecord {
                    signed: signed.clone(),
                    seq,
                    created_ms: now_ms,
                };
                models
                    .insert(
                        (m.name.as_str(), m.version.as_str()),
                        record.encode().as_slice(),
                    )
                    .map_err(db_err)?;
                let mut ids = txn.open_table(MODEL_IDS).map_err(db_err)?;
                ids.insert(
                    id.as_bytes().as_slice(),
                    (m.name.as_str(), m.version.as_str()),
                )
                .map_err(db_err)?;
                Ok(record)
            })
            .map(|(record, _)| record);
        // Whatever the outcome: a commit that reported an error may still
        // have changed the models.
        self.models.changed();
        record
    }
    /// Every registered model, every version, in registration order.
    pub fn list_models(&self) -> Result<Vec<ModelRecord>, StoreError> {
        Ok(self.registered()?.list.clone())
    }

    /// The registered models: as cached while no write changed them, else
    /// read from the registry (and cached).
    fn registered(&self) -> Result<Arc<Registered>, StoreError> {
        let generation = self.models.generation.load(Ordering::SeqCst);
        if let Some((at, r)) = &*self.models.kept.lock().unwrap_or_else(|e| e.into_inner())
            && *at == generation
        {
            return Ok(r.clone());
        }
        let list = self.read_models()?;
        let by_id = list.iter().enumerate().map(|(i, r)| (r.id(), i)).collect();
        let r = Arc::new(Registered { list, by_id });
        *self.models.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some((generation, r.clone()));
        Ok(r)
    }

    /// Every registered model, read from the registry.
    pub(crate) fn read_models(&self) -> Result<Vec<ModelRecord>, StoreError> {
        let txn = self.read()?;
        let models = txn.open_table(MODELS).map_err(db_err)?;
        let mut out = Vec::new();
        for row in models.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let record = ModelRecord::decode(v.value()).map_err(|detail| StoreError::Record {
                what: format!("{}@{}", k.value().0, k.value().1),
                detail,
            })?;
            out.push(record);
        }
        out.sort_by_key(|r| r.seq);
        Ok(out)
    }
    /// A model by name: the given version, or the newest one registered.
    pub fn find_model(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<ModelRecord>, StoreError> {
        let registered = self.registered()?;
        let named = registered
            .list
            .iter()
            .filter(|r| r.signed.manifest.name == name);
        Ok(match version {
            Some(v) => named
                .into_iter()
                .find(|r| r.signed.manifest.version == v)
                .cloned(),
            None => named.max_by_key(|r| r.seq).cloned(),
        })
    }
    /// A model by id.
    pub fn model_by_id(&self, id: &Digest) -> Result<Option<ModelRecord>, StoreError> {
        let registered = self.registered()?;
        Ok(registered
            .by_id
            .get(id)
            .map(|&i| registered.list[i].clone()))
    }
}

/// The registered models, read once per change of the registry.
pub(crate) struct Registered {
    /// In registration order.
    list: Vec<ModelRecord>,
    /// Index into `list` by model id.
    by_id: HashMap<Digest, usize>,
}

/// [`Registered`] as last read, with the generation of the registry it
/// was read at; a write that changes the models moves the generation on
/// after it commits ([`Cache::changed`]), so a copy read before the
/// commit is never used after it.
#[derive(Default)]
pub(crate) struct Cache {
    generation: AtomicU64,
    kept: Mutex<Option<(u64, Arc<Registered>)>>,
}

impl Cache {
    /// After a write that changed the models.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

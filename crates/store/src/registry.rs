//! The model registry: signed manifests by name and version, and by id.

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
        self.write(Durability::Immediate, |txn| {
            let mut models = txn.open_table(MODELS).map_err(db_err)?;
            if let Some(existing) = models
                .get((m.name.as_str(), m.version.as_str()))
                .map_err(db_err)?
            {
                let existing =
                    ModelRecord::decode(existing.value()).map_err(|detail| StoreError::Record {
                        what: m.name.clone(),
                        detail,
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
        .map(|(record, _)| record)
    }
    /// Every registered model, every version, in registration order.
    pub fn list_models(&self) -> Result<Vec<ModelRecord>, StoreError> {
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
        let txn = self.read()?;
        let models = txn.open_table(MODELS).map_err(db_err)?;
        let decode = |k: (&str, &str), v: &[u8]| {
            ModelRecord::decode(v).map_err(|detail| StoreError::Record {
                what: format!("{}@{}", k.0, k.1),
                detail,
            })
        };
        if let Some(version) = version {
            return match models.get((name, version)).map_err(db_err)? {
                Some(v) => decode((name, version), v.value()).map(Some),
                None => Ok(None),
            };
        }
        // Every version of `name`: keys sort by name, then version.
        let mut newest: Option<ModelRecord> = None;
        for row in models.range((name, "")..).map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            if k.value().0 != name {
                break;
            }
            let record = decode(k.value(), v.value())?;
            if newest.as_ref().is_none_or(|n| record.seq > n.seq) {
                newest = Some(record);
            }
        }
        Ok(newest)
    }
    /// A model by id.
    pub fn model_by_id(&self, id: &Digest) -> Result<Option<ModelRecord>, StoreError> {
        let txn = self.read()?;
        let ids = txn.open_table(MODEL_IDS).map_err(db_err)?;
        let Some(row) = ids.get(id.as_bytes().as_slice()).map_err(db_err)? else {
            return Ok(None);
        };
        let (name, version) = row.value();
        let (name, version) = (name.to_string(), version.to_string());
        // No transaction held while taking another: reopening the registry
        // waits for every old one to end.
        drop((row, ids, txn));
        self.find_model(&name, Some(&version))
    }
}

//! Which announced models and providers to trust. Any peer can announce
//! any model under any name: a name resolves only to a model an admitted
//! operator published (its manifest fetched and checked against the id),
//! and a provider is used only once it proved it holds the model.

use std::collections::BTreeSet;
use std::sync::Arc;

use vouch_p2p::{Frame, Peer, Request};
use vouch_types::blob::{CHUNK_SIZE, ChunkTable};
use vouch_types::{Digest, Kind, Manifest, Signature, SignedManifest};

use crate::node::Node;
use crate::state::NetworkModel;
use crate::state::{Network, ask};
use vouch_service::error::NodeError;

impl Node {
    /// The models called `name` (at `version`, when given) that peers
    /// announce, oldest version first (numeric versions by number).
    fn offers_named(&self, name: &str, version: Option<&str>) -> Vec<NetworkModel> {
        let mut offers: Vec<NetworkModel> = self
            .network_models()
            .into_values()
            .filter(|m| m.offer.name == name && version.is_none_or(|v| m.offer.version == v))
            .collect();
        offers.sort_by_key(|m| {
            let v = &m.offer.version;
            (v.parse::<u64>().ok(), v.clone())
        });
        offers
    }
    /// The newest model called `name` (at `version`, when given) that peers
    /// announce and that an operator this node admits published. Any peer
    /// can announce `NAME@999999`; a name is only as good as its
    /// publisher, which the manifest names (fetched from a provider and
    /// checked against the id, once per id).
    pub(crate) async fn trusted_network_model(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<NetworkModel, NodeError> {
        let candidates = self.offers_named(name, version);
        if candidates.is_empty() {
            return Err(not_announced(name, version));
        }
        let which = version.map_or(name.to_string(), |v| format!("{name}@{v}"));
        let network = self.network()?;
        let admitted = self.admitted();
        let mut others = Vec::new();
        for m in candidates.into_iter().rev() {
            let Ok(id) = m.offer.id.parse::<Digest>() else {
                continue;
            };
            match publisher_of(network, id, &m.providers).await {
                Ok(publisher) if admitted.contains(&publisher) => return Ok(m),
                Ok(publisher) => others.push(format!(
                    "{name}@{} published by {publisher}",
                    m.offer.version
                )),
                Err(e) => others.push(format!("{name}@{} ({e})", m.offer.version)),
            }
        }
        Err(NodeError::NotFound(format!(
            "no operator this node admits published `{which}`; peers announce {}: admit a publisher you trust with --admit KEY",
            others.join(", ")
        )))
    }
    /// `providers` of model `id` (in the order given) that proved they
    /// hold it. Announcing a model is free; a provider is used only once it
    /// answered a challenge: a chunk of the model file drawn by this node,
    /// checked against the chunk table and manifest it also sent (which are
    /// checked against the id). The first [`CHALLENGES_AT_ONCE`] providers
    /// not yet proven are challenged together; a success is kept, a failure
    /// for [`PROOF_RETRY`].
    pub(crate) async fn holding(
        &self,
        network: &Arc<Network>,
        id: Digest,
        providers: Vec<Peer>,
    ) -> Vec<Peer> {
        let known = |p: &Peer| {
            network
                .proven
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&(*p, id))
                .filter(|(ok, at)| *ok || at.elapsed() < PROOF_RETRY)
                .map(|(ok, _)| *ok)
        };
        let unknown: Vec<Peer> = providers
            .iter()
            .filter(|p| known(p).is_none())
            .take(CHALLENGES_AT_ONCE)
            .copied()
            .collect();
        let outcomes = futures_util::future::join_all(
            unknown
                .iter()
                .map(|&peer| async move { (peer, challenge(network, peer, id).await) }),
        )
        .await;
        for (peer, outcome) in outcomes {
            if let Err(e) = &outcome {
                tracing::warn!(%peer, model = %id, error = %e, "a provider did not prove it holds the model");
            }
            network
                .proven
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((peer, id), (outcome.is_ok(), std::time::Instant::now()));
        }
        providers
            .into_iter()
            .filter(|p| known(p) == Some(true))
            .collect()
    }
}

/// The error for a model name (and version) no peer announces.
fn not_announced(name: &str, version: Option<&str>) -> NodeError {
    let which = version.map_or(name.to_string(), |v| format!("{name}@{v}"));
    NodeError::NotFound(format!(
        "no peer announces model `{which}`; check the name with `vouch network`, or push it to a node first"
    ))
}
/// Who published model `id`: its manifest's publisher, fetched once from
/// `providers` (checked against the id) and remembered.
async fn publisher_of(
    network: &Network,
    id: Digest,
    providers: &BTreeSet<Peer>,
) -> Result<vouch_types::PublicKey, NodeError> {
    let known = network
        .publishers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .copied();
    if let Some(publisher) = known {
        return Ok(publisher);
    }
    let providers: Vec<Peer> = providers.iter().copied().collect();
    let publisher = fetch_manifest(network, id, &providers)
        .await?
        .manifest
        .publisher;
    network
        .publishers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, publisher);
    Ok(publisher)
}
/// How many providers of a model [`Node::holding`] challenges at once.
const CHALLENGES_AT_ONCE: usize = 8;
/// How long a provider that failed its challenge waits before another (a
/// failure may be the network's, not the provider's).
const PROOF_RETRY: std::time::Duration = std::time::Duration::from_secs(10);
/// Has `peer` prove it holds model `id`: its manifest (checked against the
/// id), the chunk table of the model's first file (checked against the
/// manifest's digest) and one chunk of it drawn here with the OS's
/// randomness (checked against the table).
async fn challenge(network: &Network, peer: Peer, id: Digest) -> Result<(), NodeError> {
    let signed = fetch_manifest(network, id, &[peer]).await?;
    let Some(file) = signed.manifest.files.first() else {
        return Ok(());
    };
    let table = fetch_table(network, file.digest, file.size, &[peer]).await?;
    if table.chunks.is_empty() {
        return Ok(());
    }
    let mut draw = [0u8; 8];
    getrandom::fill(&mut draw).map_err(|e| NodeError::Internal(format!("drawing a chunk: {e}")))?;
    let index = u64::from_le_bytes(draw) % table.chunks.len() as u64;
    let body = ask(
        network,
        peer,
        Frame::new(Request::Chunks {
            blob: file.digest,
            indexes: vec![index],
        }),
    )
    .await?;
    let want = (file.size - index * CHUNK_SIZE as u64).min(CHUNK_SIZE as u64) as usize;
    if body.len() != want || Digest::of(Kind::BlobChunk, &body) != table.chunks[index as usize] {
        network.record(peer, |r| r.bad_data += 1);
        return Err(NodeError::Unavailable(format!(
            "{peer} answered chunk {index} of {} with bytes that are not the model's",
            file.digest
        )));
    }
    Ok(())
}
/// Asks each provider in turn for the signed manifest of `id` until one
/// sends a manifest that hashes to `id` under a valid signature.
pub(crate) async fn fetch_manifest(
    network: &Network,
    id: Digest,
    providers: &[Peer],
) -> Result<SignedManifest, NodeError> {
    let mut why = Vec::new();
    for &peer in providers {
        let checked = match ask(network, peer, Frame::new(Request::Manifest { id })).await {
            Ok(body) => decode_manifest(&body, id),
            Err(e) => Err(e.to_string()),
        };
        match checked {
            Ok(signed) => return Ok(signed),
            Err(e) => {
                network.record(peer, |r| r.failures += 1);
                why.push(format!("{peer}: {e}"));
            }
        }
    }
    Err(NodeError::Unavailable(format!(
        "no provider sent a valid manifest for {id} ({})",
        why.join("; ")
    )))
}
fn decode_manifest(body: &[u8], id: Digest) -> Result<SignedManifest, String> {
    let sig: [u8; 64] = body
        .get(..64)
        .and_then(|s| s.try_into().ok())
        .ok_or("a manifest answer shorter than a signature")?;
    let manifest = Manifest::decode(&body[64..]).map_err(|e| e.to_string())?;
    let signed = SignedManifest {
        manifest,
        signature: Signature::from_bytes(&sig),
    };
    if signed.manifest.id() != id {
        return Err(format!(
            "the manifest sent is {}, not {id}",
            signed.manifest.id()
        ));
    }
    if !signed.verify() {
        return Err("the manifest's signature does not verify".into());
    }
    Ok(signed)
}
/// Asks each provider in turn for the chunk table of `blob` until one sends
/// a table that hashes to `blob`.
pub(crate) async fn fetch_table(
    network: &Network,
    blob: Digest,
    size: u64,
    providers: &[Peer],
) -> Result<ChunkTable, NodeError> {
    for &peer in providers {
        if let Ok(body) = ask(network, peer, Frame::new(Request::ChunkTable { blob })).await {
            match ChunkTable::decode(&body) {
                Ok(t) if t.root() == blob && t.size == size => return Ok(t),
                _ => network.record(peer, |r| r.bad_data += 1),
            }
        } else {
            network.record(peer, |r| r.failures += 1);
        }
    }
    Err(NodeError::Unavailable(format!(
        "no provider sent the chunk table of {blob}"
    )))
}

//! A genesis as a JSON file, for validators that run as separate
//! processes (`vouch genesis` writes one, `vouch node --genesis` reads it).
//!
//! ```json
//! {"chain_id": "...", "params": {"min_stake": 1000, ...},
//!  "accounts": [{"key": "ed25519:...", "balance": 1000000}],
//!  "operators": [{"key": "ed25519:...", "stake": 100000, "price": 0,
//!                 "contact": "", "addresses": []}]}
//! ```
//!
//! `params` may name only some parameters; the rest keep their defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vouch_ledger::{Genesis, Offer, Params};
use vouch_types::PublicKey;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    chain_id: String,
    /// Parameters by name ([`Params::NAMES`]); those left out keep their
    /// defaults.
    #[serde(default)]
    params: BTreeMap<String, u64>,
    #[serde(default)]
    accounts: Vec<AccountFile>,
    #[serde(default)]
    operators: Vec<OperatorFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountFile {
    key: PublicKey,
    balance: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorFile {
    key: PublicKey,
    stake: u64,
    #[serde(default)]
    price: u64,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    addresses: Vec<String>,
}

/// Reads a genesis file's JSON; the error says what to change.
pub fn from_json(text: &str) -> Result<Genesis, String> {
    let f: File = serde_json::from_str(text).map_err(|e| format!("not a genesis file: {e}"))?;
    if f.chain_id.is_empty() || f.chain_id.len() > 64 {
        return Err("`chain_id` must be 1 to 64 characters".into());
    }
    let mut params = Params::default();
    for (name, value) in &f.params {
        params
            .set(name, *value)
            .map_err(|e| format!("`params`: {e}"))?;
    }
    Ok(Genesis {
        chain_id: f.chain_id,
        params,
        accounts: f.accounts.into_iter().map(|a| (a.key, a.balance)).collect(),
        operators: f
            .operators
            .into_iter()
            .map(|o| {
                let offer = Offer {
                    price: o.price,
                    contact: o.contact,
                    addresses: o.addresses,
                    // A node declares the models it serves once it runs.
                    models: Vec::new(),
                };
                (o.key, o.stake, offer)
            })
            .collect(),
    })
}

/// A genesis as a genesis file's JSON.
pub fn to_json(g: &Genesis) -> String {
    let f = File {
        chain_id: g.chain_id.clone(),
        params: Params::NAMES
            .iter()
            .zip(g.params.values())
            .map(|(name, value)| (name.to_string(), value))
            .collect(),
        accounts: g
            .accounts
            .iter()
            .map(|(key, balance)| AccountFile {
                key: *key,
                balance: *balance,
            })
            .collect(),
        operators: g
            .operators
            .iter()
            .map(|(key, stake, offer)| OperatorFile {
                key: *key,
                stake: *stake,
                price: offer.price,
                contact: offer.contact.clone(),
                addresses: offer.addresses.clone(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&f).expect("a genesis serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_files_round_trip_and_bad_ones_say_why() {
        let key = vouch_types::SecretKey::from_bytes(&[3; 32]).public();
        let g = Genesis {
            chain_id: "t".into(),
            params: Params {
                min_stake: 5,
                ..Params::default()
            },
            accounts: vec![(key, 10)],
            operators: vec![(key, 7, Offer::default())],
        };
        let back = from_json(&to_json(&g)).unwrap();
        assert_eq!(
            vouch_ledger::Ledger::genesis(&back).state_root(),
            vouch_ledger::Ledger::genesis(&g).state_root()
        );
        let partial = r#"{"chain_id": "t", "params": {"min_stake": 5}}"#;
        assert_eq!(from_json(partial).unwrap().params.min_stake, 5);
        assert_eq!(
            from_json(partial).unwrap().params.escrow_delay,
            Params::default().escrow_delay
        );
        assert!(
            from_json(r#"{"chain_id": "t", "extra": 1}"#)
                .unwrap_err()
                .contains("extra")
        );
        assert!(
            from_json(r#"{"chain_id": ""}"#)
                .unwrap_err()
                .contains("chain_id")
        );
        assert!(
            from_json(r#"{"chain_id": "t", "params": {"admin": 1}}"#)
                .unwrap_err()
                .contains("no parameter `admin`")
        );
        let bad_key = r#"{"chain_id": "t", "accounts": [{"key": "nope", "balance": 1}]}"#;
        assert!(from_json(bad_key).is_err());
    }
}

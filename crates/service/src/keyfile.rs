//! The node's secrets on disk, each created on first run with mode 0600
//! and never printed: the operator key (a hex seed in `operator.key`) and
//! the admin token (`admin-token`, 64 hex digits) that operator actions
//! over HTTP must present.

use std::fs;
use std::io::Write;
use std::path::Path;

use vouch_types::SecretKey;

use crate::error::NodeError;

fn io(action: &'static str, path: &Path, e: std::io::Error) -> NodeError {
    NodeError::Storage(format!("{action} {}: {e}", path.display()))
}

/// Loads the key at `path` (64 hex digits).
pub fn load(path: &Path) -> Result<SecretKey, NodeError> {
    restrict(path)?;
    let text = fs::read_to_string(path).map_err(|e| io("reading", path, e))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| {
        NodeError::Storage(format!(
            "{} is not an operator key (64 hex digits); move it away to create a new key",
            path.display()
        ))
    })?;
    Ok(SecretKey::from_bytes(&seed))
}

/// Loads the key at `path`, or creates one there.
pub fn load_or_create(path: &Path) -> Result<SecretKey, NodeError> {
    if path.exists() {
        return load(path);
    }
    let seed = random_secret("a key")?;
    let key = SecretKey::from_bytes(&seed);
    create_secret(path, &hex::encode(seed))?;
    tracing::info!(node = %key.public(), path = %path.display(), "created operator key");
    Ok(key)
}

/// Loads the admin token at `path`, or creates one there.
pub fn load_or_create_token(path: &Path) -> Result<String, NodeError> {
    if path.exists() {
        restrict(path)?;
        let text = fs::read_to_string(path).map_err(|e| io("reading", path, e))?;
        let token = text.trim();
        if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(NodeError::Storage(format!(
                "{} is not an admin token (at least 32 printable characters); move it away to create a new one",
                path.display()
            )));
        }
        return Ok(token.to_string());
    }
    let token = hex::encode(random_secret("an admin token")?);
    create_secret(path, &token)?;
    tracing::info!(path = %path.display(), "created the admin token");
    Ok(token)
}

fn random_secret(what: &str) -> Result<[u8; 32], NodeError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| NodeError::Internal(format!("drawing {what}: {e}")))?;
    Ok(seed)
}

/// Writes `text` to a new file at `path` that only its owner can read.
fn create_secret(path: &Path, text: &str) -> Result<(), NodeError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| io("creating", path, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| io("writing", path, e))?;
    file.sync_all().map_err(|e| io("syncing", path, e))
}

/// Makes sure only the owner can read the key.
fn restrict(path: &Path) -> Result<(), NodeError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(path).map_err(|e| io("reading", path, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "a secret was readable by others; setting mode 0600");
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                .map_err(|e| io("restricting", path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.key");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(!format!("{a:?}").contains(&hex::encode(a.to_bytes())));
    }

    #[test]
    fn token_created_once_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-token");
        let a = load_or_create_token(&path).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(load_or_create_token(&path).unwrap(), a);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let other = dir.path().join("short");
        fs::write(&other, "abc").unwrap();
        let err = load_or_create_token(&other).unwrap_err().to_string();
        assert!(err.contains("not an admin token"), "{err}");
    }
}

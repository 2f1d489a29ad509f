//! The operator key file: a hex seed in `operator.key`, created on first
//! run with mode 0600. Its contents are never printed.

use std::fs;
use std::io::Write;
use std::path::Path;

use vouch_types::SecretKey;

use crate::error::NodeError;

fn io(action: &'static str, path: &Path, e: std::io::Error) -> NodeError {
    NodeError::Storage(format!("{action} {}: {e}", path.display()))
}

/// Loads the key at `path`, or creates one there.
pub fn load_or_create(path: &Path) -> Result<SecretKey, NodeError> {
    if path.exists() {
        restrict(path)?;
        let text = fs::read_to_string(path).map_err(|e| io("reading", path, e))?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| {
            NodeError::Storage(format!(
                "{} is not an operator key (64 hex digits); move it away to create a new key",
                path.display()
            ))
        })?;
        return Ok(SecretKey::from_bytes(&seed));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| NodeError::Internal(format!("drawing a key: {e}")))?;
    let key = SecretKey::from_bytes(&seed);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| io("creating", path, e))?;
    file.write_all(hex::encode(seed).as_bytes())
        .map_err(|e| io("writing", path, e))?;
    file.sync_all().map_err(|e| io("syncing", path, e))?;
    tracing::info!(node = %key.public(), path = %path.display(), "created operator key");
    Ok(key)
}

/// Makes sure only the owner can read the key.
fn restrict(path: &Path) -> Result<(), NodeError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(path).map_err(|e| io("reading", path, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "operator key was readable by others; setting mode 0600");
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
}

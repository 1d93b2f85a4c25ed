//! Where the server's keys come from: a Secrets Manager secret (production), an environment
//! variable, or — on one machine — a key generated once into the data directory.
//!
//! Errors name the variable and never the key.

use std::path::Path;

use super::config::{Config, Secret, StoreKind};

/// The shortest key accepted (HMAC-SHA-256 wants at least its 256-bit output size).
const MIN_KEY_LEN: usize = 32;

/// The secret string of `arn`, at least [`MIN_KEY_LEN`] long; `var` names the setting in errors.
async fn from_secrets_manager(var: &str, arn: &str) -> Result<Vec<u8>, String> {
    let sdk = super::aws::load_sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let secret = client.get_secret_value().secret_id(arn).send().await.map_err(|e| {
        tracing::error!(error = %aws_sdk_secretsmanager::error::DisplayErrorContext(&e), var, "GetSecretValue failed");
        format!("{var}: cannot read the secret `{arn}` from Secrets Manager (see the log for the AWS error)")
    })?;
    let value = secret.secret_string().unwrap_or_default();
    if value.len() < MIN_KEY_LEN {
        return Err(format!("{var}: the secret must be a string of at least {MIN_KEY_LEN} characters"));
    }
    Ok(value.as_bytes().to_vec())
}

/// The key in `dir/name`, made (random, hex, readable by the owner only) when missing.
fn from_key_file(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let path = dir.join(name);
    if let Ok(existing) = std::fs::read(&path) {
        return Ok(existing);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the operating system's random source is unavailable");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut f) => {
            std::io::Write::write_all(&mut f, hex.as_bytes())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a key");
            Ok(hex.into_bytes())
        }
        // Another process made it first.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A key from the secret `arn` (preferred), else `value`, else `fallback`.
async fn key(
    (var, value): (&str, Option<&Secret>),
    (arn_var, arn): (&str, Option<&String>),
) -> Option<Result<Vec<u8>, String>> {
    if let Some(arn) = arn {
        if value.is_some() {
            tracing::warn!("both {arn_var} and {var} are set: using the Secrets Manager secret");
        }
        return Some(from_secrets_manager(arn_var, arn).await);
    }
    match value {
        Some(v) if v.expose().len() < MIN_KEY_LEN => {
            Some(Err(format!("{var} must be at least {MIN_KEY_LEN} characters")))
        }
        Some(v) => Some(Ok(v.expose().as_bytes().to_vec())),
        None => None,
    }
}

/// The session signing key: `NEXUS_JWT_SECRET_ARN`, `NEXUS_JWT_SECRET`, or a random one for this
/// process only (development, loudly).
pub async fn signing_key(config: &Config) -> Result<Vec<u8>, String> {
    let given = key(
        ("NEXUS_JWT_SECRET", config.jwt_secret.as_ref()),
        ("NEXUS_JWT_SECRET_ARN", config.jwt_secret_arn.as_ref()),
    )
    .await;
    given.unwrap_or_else(|| {
        tracing::warn!(
            "NEXUS_JWT_SECRET is not set: using a random development signing key. Sessions end when \
             the server restarts and replicas cannot share them. Never run production like this."
        );
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source is unavailable");
        Ok(key)
    })
}

/// The key `NoEcho` values are sealed with: `NEXUS_PARAMETER_KEY`, or one generated once into
/// the data directory (fine on one machine; replicas sharing DynamoDB must share the variable).
pub fn parameter_key(config: &Config) -> Result<Vec<u8>, String> {
    if let Some(k) = &config.parameter_key {
        return Ok(k.expose().as_bytes().to_vec());
    }
    if config.store == StoreKind::DynamoDb {
        tracing::warn!(
            "NEXUS_PARAMETER_KEY is not set: using a key file in NEXUS_DATA_DIR; replicas must share one key"
        );
    }
    from_key_file(&config.data_dir, "parameter.key")
}

/// The key the audit chain is signed with: `NEXUS_AUDIT_KEY_SECRET_ARN`, `NEXUS_AUDIT_KEY`, or
/// one generated once into the data directory. It must not live in the store: whoever can write
/// the store must not be able to re-sign a rewritten chain.
pub async fn audit_key(config: &Config) -> Result<Vec<u8>, String> {
    let given = key(
        ("NEXUS_AUDIT_KEY", config.audit.key.as_ref()),
        ("NEXUS_AUDIT_KEY_SECRET_ARN", config.audit.key_secret_arn.as_ref()),
    )
    .await;
    match given {
        Some(key) => key,
        None => {
            if config.store == StoreKind::DynamoDb {
                tracing::warn!(
                    "NEXUS_AUDIT_KEY is not set: using a key file in NEXUS_DATA_DIR; replicas must share one key"
                );
            }
            from_key_file(&config.data_dir, "audit.key")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("nexus-keys-{}", crate::ssr::ids::new_id()));
        let first = from_key_file(&dir, "audit.key").unwrap();
        assert_eq!(first.len(), 64, "32 random bytes in hex");
        assert_eq!(from_key_file(&dir, "audit.key").unwrap(), first);
        assert_ne!(from_key_file(&dir, "other.key").unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("audit.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "readable by the owner only");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_short_audit_key_is_refused_by_name() {
        let mut config = Config::from_vars(std::iter::empty()).unwrap();
        config.audit.key = Some(Secret::new("too-short"));
        let e = audit_key(&config).await.unwrap_err();
        assert!(e.contains("NEXUS_AUDIT_KEY") && !e.contains("too-short"), "{e}");
    }
}

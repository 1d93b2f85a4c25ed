//! Where published template bodies live: the artifacts bucket on AWS (`S3Artifacts`,
//! `NEXUS_ARTIFACTS_BUCKET`), or a folder of the data directory on one machine
//! (`LocalArtifacts`). Templates over 51,200 bytes are handed to CloudFormation by URL from here.

use std::path::PathBuf;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact `{0}` not found")]
    NotFound(String),
    #[error("the artifact store is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// `s3` or `local`.
    fn kind(&self) -> &'static str;
    /// Stores `body` under `key`; returns where it is (`s3://bucket/key` or a path).
    async fn put(&self, key: &str, body: &[u8]) -> Result<String, ArtifactError>;
    async fn get(&self, key: &str) -> Result<Vec<u8>, ArtifactError>;
    /// An HTTPS URL CloudFormation can read `key` from, after storing `body` there; `None`
    /// when the store has no URLs (a local folder).
    async fn url_for(&self, _key: &str, _body: &[u8]) -> Result<Option<String>, ArtifactError> {
        Ok(None)
    }
}

/// Keys are `catalog/<slug>/<version>.<yaml|json>`: letters, digits, dots, dashes and slashes,
/// never `..` (checked again here, so a key can never leave the folder).
fn safe_key(key: &str) -> Result<&str, ArtifactError> {
    let ok = !key.is_empty()
        && !key.starts_with('/')
        && !key.split('/').any(|p| p.is_empty() || p == "." || p == "..")
        && key.chars().all(|c| c.is_ascii_alphanumeric() || "-._/+".contains(c));
    if ok { Ok(key) } else { Err(ArtifactError::Unavailable(format!("`{key}` is not an artifact key"))) }
}

pub struct LocalArtifacts {
    dir: PathBuf,
}

impl LocalArtifacts {
    pub fn new(dir: PathBuf) -> Self {
        LocalArtifacts { dir }
    }
}

#[async_trait]
impl ArtifactStore for LocalArtifacts {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn put(&self, key: &str, body: &[u8]) -> Result<String, ArtifactError> {
        let path = self.dir.join(safe_key(key)?);
        let parent = path.parent().expect("keys have a folder").to_path_buf();
        let tmp = path.with_extension("partial");
        let body = body.to_vec();
        let target = path.clone();
        // Written whole, then renamed: a crash never leaves half a template under the key.
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&parent)?;
            std::fs::write(&tmp, &body)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &target)
        })
        .await
        .map_err(|e| ArtifactError::Unavailable(e.to_string()))?
        .map_err(|e| ArtifactError::Unavailable(format!("{}: {e}", path.display())))?;
        Ok(path.display().to_string())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, ArtifactError> {
        let path = self.dir.join(safe_key(key)?);
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ArtifactError::NotFound(key.into())),
            Err(e) => Err(ArtifactError::Unavailable(format!("{}: {e}", path.display()))),
        }
    }
}

pub struct S3Artifacts {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Artifacts {
    pub fn new(sdk: &aws_config::SdkConfig, bucket: String) -> Self {
        // Emulators on loopback serve buckets by path, not by virtual host.
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let conf = aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style).build();
        S3Artifacts { client: aws_sdk_s3::Client::from_conf(conf), bucket }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }
}

#[async_trait]
impl ArtifactStore for S3Artifacts {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn put(&self, key: &str, body: &[u8]) -> Result<String, ArtifactError> {
        let key = safe_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.to_vec().into())
            .content_type("text/plain; charset=utf-8")
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), bucket = %self.bucket, key, "S3 PutObject failed");
                ArtifactError::Unavailable(format!("cannot write to the artifacts bucket `{}`", self.bucket))
            })?;
        Ok(format!("s3://{}/{key}", self.bucket))
    }

    async fn url_for(&self, key: &str, body: &[u8]) -> Result<Option<String>, ArtifactError> {
        self.put(key, body).await?;
        // Path-style under a custom endpoint (the emulator), virtual-host style on AWS.
        let url = match std::env::var("AWS_ENDPOINT_URL") {
            Ok(endpoint) => format!("{}/{}/{key}", endpoint.trim_end_matches('/'), self.bucket),
            Err(_) => format!("https://{}.s3.amazonaws.com/{key}", self.bucket),
        };
        Ok(Some(url))
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, ArtifactError> {
        let key = safe_key(key)?;
        let out = self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                ArtifactError::NotFound(key.into())
            } else {
                tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), bucket = %self.bucket, key, "S3 GetObject failed");
                ArtifactError::Unavailable(format!("cannot read the artifacts bucket `{}`", self.bucket))
            }
        })?;
        let bytes = out.body.collect().await.map_err(|e| ArtifactError::Unavailable(e.to_string()))?;
        Ok(bytes.into_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_leave_the_folder() {
        assert!(safe_key("catalog/lead-scoring/1.2.0.yaml").is_ok());
        for bad in ["../x", "catalog/../../etc/passwd", "/abs", "a//b", "a b", ""] {
            assert!(safe_key(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn local_artifacts_round_trip() {
        let dir = std::env::temp_dir().join(format!("nexus-artifacts-{}", crate::ssr::ids::new_id()));
        let store = LocalArtifacts::new(dir.clone());
        store.put("catalog/x/1.0.0.yaml", b"body").await.unwrap();
        assert_eq!(store.get("catalog/x/1.0.0.yaml").await.unwrap(), b"body");
        assert!(matches!(store.get("catalog/x/2.0.0.yaml").await, Err(ArtifactError::NotFound(_))));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

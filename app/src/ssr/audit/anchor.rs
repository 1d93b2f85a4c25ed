//! Where checkpoints of the audit chain's head are kept, outside the store: an S3 bucket with
//! Object Lock in governance mode (production: nobody without `s3:BypassGovernanceRetention`,
//! which the toolkit's role never holds, can delete or overwrite a checkpoint), or a file beside
//! the data on one machine.

use std::path::PathBuf;

use async_trait::async_trait;

use super::chain::{ChainKey, Checkpoint};

#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("the checkpoint store cannot be reached: {0}")]
    Unavailable(String),
    #[error("a checkpoint cannot be read: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait Anchor: Send + Sync {
    /// `file`, `s3` or `none`, for logs and the verification report.
    fn kind(&self) -> &'static str;
    async fn write(&self, checkpoint: &Checkpoint) -> Result<(), AnchorError>;
    /// The newest checkpoint signed with `key` (forged or unreadable ones are skipped).
    async fn latest(&self, key: &ChainKey) -> Result<Option<Checkpoint>, AnchorError>;
}

/// No checkpoints: the chain is still keyed, but a cut tail cannot be told.
pub struct NoAnchor;

#[async_trait]
impl Anchor for NoAnchor {
    fn kind(&self) -> &'static str {
        "none"
    }
    async fn write(&self, _: &Checkpoint) -> Result<(), AnchorError> {
        Ok(())
    }
    async fn latest(&self, _: &ChainKey) -> Result<Option<Checkpoint>, AnchorError> {
        Ok(None)
    }
}

/// One file holding the newest checkpoint, replaced atomically (write beside, then rename).
pub struct FileAnchor {
    path: PathBuf,
}

impl FileAnchor {
    pub fn new(path: PathBuf) -> Self {
        FileAnchor { path }
    }
}

#[async_trait]
impl Anchor for FileAnchor {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn write(&self, checkpoint: &Checkpoint) -> Result<(), AnchorError> {
        let path = self.path.clone();
        let body = serde_json::to_vec_pretty(checkpoint).expect("checkpoints serialize");
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // A name per writer: two processes on one directory never share the temporary file.
            let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
            std::fs::write(&tmp, body)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .expect("the checkpoint writer does not panic")
        .map_err(|e| AnchorError::Unavailable(format!("{}: {e}", self.path.display())))
    }

    async fn latest(&self, key: &ChainKey) -> Result<Option<Checkpoint>, AnchorError> {
        let bytes = match tokio::fs::read(&self.path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AnchorError::Unavailable(format!("{}: {e}", self.path.display()))),
        };
        let checkpoint: Checkpoint = serde_json::from_slice(&bytes)
            .map_err(|e| AnchorError::Corrupt(format!("{}: {e}", self.path.display())))?;
        if !checkpoint.is_genuine(key) {
            return Err(AnchorError::Corrupt(format!(
                "{}: the signature does not match",
                self.path.display()
            )));
        }
        Ok(Some(checkpoint))
    }
}

/// Checkpoints as objects of a bucket with Object Lock, one per head, newest first by name.
pub struct S3Anchor {
    client: aws_sdk_s3::Client,
    bucket: String,
}

const PREFIX: &str = "audit-checkpoints/";

/// Names sort newest first, so the newest checkpoint is the first object listed.
fn object_key(seq: u64) -> String {
    format!("{PREFIX}{:020}.json", u64::MAX - seq)
}

impl S3Anchor {
    pub fn new(sdk: &aws_config::SdkConfig, bucket: String) -> Self {
        // Emulators on loopback serve buckets by path, not by virtual host.
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let conf = aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style).build();
        S3Anchor { client: aws_sdk_s3::Client::from_conf(conf), bucket }
    }

    fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> AnchorError {
        let context = aws_sdk_s3::error::DisplayErrorContext(e);
        tracing::warn!(error = %context, "audit checkpoint bucket call failed");
        AnchorError::Unavailable(context.to_string())
    }
}

#[async_trait]
impl Anchor for S3Anchor {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn write(&self, checkpoint: &Checkpoint) -> Result<(), AnchorError> {
        let body = serde_json::to_vec(checkpoint).expect("checkpoints serialize");
        // The bucket's default retention locks each object; the checksum lets S3 accept a
        // put into a bucket with Object Lock.
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(object_key(checkpoint.seq))
            .content_type("application/json")
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .body(body.into())
            .send()
            .await
            .map_err(Self::unavailable)?;
        Ok(())
    }

    async fn latest(&self, key: &ChainKey) -> Result<Option<Checkpoint>, AnchorError> {
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(PREFIX).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(Self::unavailable)?;
            for object in page.contents() {
                let Some(name) = object.key() else { continue };
                let out = self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(name)
                    .send()
                    .await
                    .map_err(Self::unavailable)?;
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| AnchorError::Unavailable(e.to_string()))?
                    .into_bytes();
                match serde_json::from_slice::<Checkpoint>(&bytes) {
                    // Anyone who may put objects could plant one; only a signed one counts.
                    Ok(cp) if cp.is_genuine(key) && object_key(cp.seq) == name => return Ok(Some(cp)),
                    _ => tracing::warn!(object = name, "an audit checkpoint that is not genuine was skipped"),
                }
            }
        }
        Ok(None)
    }
}

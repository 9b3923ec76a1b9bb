//! Where uploaded files' bytes live: an `object_store` behind one small handle, chosen once at
//! start-up from `FV_OBJECT_STORE_URL`. The database keeps only metadata and the object key.
//!
//! The local directory and memory stores are always there; S3, Azure and GCS only when built
//! with the cargo feature of that name (`s3`, `azure`, `gcs`): they bring an HTTP client and a TLS
//! stack (reqwest, rustls, ring) that nothing else here needs. Naming a store that was not
//! compiled in fails at start-up and says which feature to build with.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    ObjectStore, ObjectStoreScheme, PutPayload, local::LocalFileSystem, memory::InMemory,
    path::Path,
};

use crate::{
    config::Config,
    error::{AppError, AppResult},
};

/// A stored object being read.
pub struct StoredObject {
    /// Its length in bytes.
    pub size: u64,
    /// Its content, chunk by chunk.
    pub chunks: BoxStream<'static, AppResult<Bytes>>,
}

impl std::fmt::Debug for StoredObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredObject")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// The object store of uploaded files, with the upload limit. Cheap to clone.
#[derive(Clone)]
pub struct FileStore {
    store: Arc<dyn ObjectStore>,
    /// Largest file accepted, in bytes.
    pub max_upload_bytes: usize,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("store", &self.store.to_string())
            .field("max_upload_bytes", &self.max_upload_bytes)
            .finish()
    }
}

/// Environment variables whose names start with `prefix`, as builder options
/// (`AWS_REGION` → `aws_region`): what the builders' own `from_env` would read.
#[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
fn env_options(prefix: &str) -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(key, _)| key.starts_with(prefix))
        .map(|(key, value)| (key.to_ascii_lowercase(), value))
        .collect()
}

/// A cloud store, each back-end compiled in only with its cargo feature.
fn cloud(url: &url::Url, raw: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let (scheme, _) = ObjectStoreScheme::parse(url).map_err(|_| {
        anyhow::anyhow!(
            "FV_OBJECT_STORE_URL: {raw} names no known store \
             (memory://, file:///dir, s3://, az://, gs://)"
        )
    })?;
    match scheme {
        #[cfg(feature = "s3")]
        ObjectStoreScheme::AmazonS3 => open_cloud(url, raw, "AWS_"),
        #[cfg(feature = "azure")]
        ObjectStoreScheme::MicrosoftAzure => open_cloud(url, raw, "AZURE_"),
        #[cfg(feature = "gcs")]
        ObjectStoreScheme::GoogleCloudStorage => open_cloud(url, raw, "GOOGLE_"),
        #[cfg(not(feature = "s3"))]
        ObjectStoreScheme::AmazonS3 => Err(not_compiled_in(raw, "an S3", "s3")),
        #[cfg(not(feature = "azure"))]
        ObjectStoreScheme::MicrosoftAzure => Err(not_compiled_in(raw, "an Azure", "azure")),
        #[cfg(not(feature = "gcs"))]
        ObjectStoreScheme::GoogleCloudStorage => Err(not_compiled_in(raw, "a GCS", "gcs")),
        _ => anyhow::bail!("FV_OBJECT_STORE_URL: {raw} is not a supported store"),
    }
}

/// The start-up error for a store whose back-end this binary was built without.
#[cfg(not(all(feature = "s3", feature = "azure", feature = "gcs")))]
fn not_compiled_in(raw: &str, store: &str, feature: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "FV_OBJECT_STORE_URL names {store} store ({raw}), but this binary was built without \
         the `{feature}` cargo feature; build with `cargo build --release --features {feature}`"
    )
}

/// Open `url` with the builder options of the environment variables starting with
/// `env_prefix`; a path in the URL (`s3://bucket/prefix`) keeps every key under that prefix.
#[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
fn open_cloud(url: &url::Url, raw: &str, env_prefix: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let (store, prefix) = object_store::parse_url_opts(url, env_options(env_prefix))
        .with_context(|| format!("FV_OBJECT_STORE_URL: cannot open {raw}"))?;
    let store: Arc<dyn ObjectStore> = Arc::from(store);
    Ok(if prefix.as_ref().is_empty() {
        store
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
    })
}

/// A local directory as a store, created when missing (start-up fails early on a bad path
/// rather than on the first upload).
fn local(dir: &std::path::Path) -> anyhow::Result<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the file directory {}", dir.display()))?;
    let store = LocalFileSystem::new_with_prefix(dir)
        .with_context(|| format!("cannot use {} as the file store", dir.display()))?;
    Ok(Arc::new(store))
}

impl FileStore {
    /// Open the store `config` names (see `FV_OBJECT_STORE_URL`).
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let store: Arc<dyn ObjectStore> = match config.object_store_url.as_deref() {
            None | Some("") => local(&config.data_dir.join("files"))?,
            Some(raw) => {
                let url = url::Url::parse(raw)
                    .with_context(|| format!("FV_OBJECT_STORE_URL is not a URL: {raw}"))?;
                match url.scheme() {
                    "memory" => Arc::new(InMemory::new()),
                    "file" => {
                        let dir = url.to_file_path().map_err(|()| {
                            anyhow::anyhow!("FV_OBJECT_STORE_URL: {raw} is not an absolute path")
                        })?;
                        local(&dir)?
                    }
                    _ => cloud(&url, raw)?,
                }
            }
        };
        Ok(Self {
            store,
            max_upload_bytes: config.max_upload_bytes,
        })
    }

    fn path(key: &str) -> AppResult<Path> {
        Path::parse(key).map_err(AppError::internal)
    }

    /// Store `bytes` under `key` (replacing any object there).
    #[tracing::instrument(skip_all, fields(key, size = bytes.len()))]
    pub(crate) async fn put(&self, key: &str, bytes: Bytes) -> AppResult<()> {
        self.store
            .put(&Self::path(key)?, PutPayload::from_bytes(bytes))
            .await
            .map_err(AppError::internal)?;
        Ok(())
    }

    /// The object stored under `key` as a stream of chunks, with its size: nothing is read
    /// before the caller polls, and a chunk at a time after (the local store reads 8 KiB ones).
    /// A missing object is internal: its row says it exists; so is a failure mid-stream, logged
    /// here because the response has begun and can only be cut off.
    #[tracing::instrument(skip_all, fields(key))]
    pub(crate) async fn get(&self, key: &str) -> AppResult<StoredObject> {
        let object = self
            .store
            .get(&Self::path(key)?)
            .await
            .map_err(AppError::internal)?;
        let size = object.meta.size;
        let key = key.to_owned();
        let chunks = object
            .into_stream()
            .map_err(move |err| {
                tracing::error!(key, error = %err, "reading a stored file failed mid-stream");
                AppError::internal(err)
            })
            .boxed();
        Ok(StoredObject { size, chunks })
    }

    /// Every key in the store, sorted (backups copy them all).
    pub async fn keys(&self) -> AppResult<Vec<String>> {
        let mut keys: Vec<String> = self
            .store
            .list(None)
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .map_err(AppError::internal)?;
        keys.sort();
        Ok(keys)
    }

    /// The whole object under `key` (backups; uploads are bounded by `FV_MAX_UPLOAD_BYTES`).
    pub async fn read_all(&self, key: &str) -> AppResult<Bytes> {
        self.store
            .get(&Self::path(key)?)
            .await
            .map_err(AppError::internal)?
            .bytes()
            .await
            .map_err(AppError::internal)
    }

    /// Store `bytes` under `key` (restores).
    pub async fn write(&self, key: &str, bytes: Bytes) -> AppResult<()> {
        self.put(key, bytes).await
    }

    /// Remove `key`, logging rather than failing: used to undo a write whose row was never
    /// committed, where the caller's error is the one that matters.
    pub(crate) async fn delete_best_effort(&self, key: &str) {
        let result = match Self::path(key) {
            Ok(path) => self.store.delete(&path).await.map_err(AppError::internal),
            Err(e) => Err(e),
        };
        if let Err(AppError::Internal(cause)) = result {
            tracing::warn!(
                key,
                error = format!("{cause:#}"),
                "could not remove an orphaned upload"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(raw: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
        cloud(&url::Url::parse(raw).unwrap(), raw)
    }

    #[test]
    fn a_store_not_compiled_in_names_its_feature() {
        for (raw, feature, compiled) in [
            ("s3://bucket/files", "s3", cfg!(feature = "s3")),
            ("az://account/container", "azure", cfg!(feature = "azure")),
            ("gs://bucket", "gcs", cfg!(feature = "gcs")),
        ] {
            if compiled {
                continue;
            }
            let message = open(raw).expect_err("refused").to_string();
            assert!(
                message.contains(&format!("--features {feature}")),
                "{message}"
            );
        }
    }

    #[test]
    fn an_unknown_scheme_is_refused() {
        let message = open("ftp://example.com/x")
            .expect_err("refused")
            .to_string();
        assert!(message.contains("no known store"), "{message}");
    }
}

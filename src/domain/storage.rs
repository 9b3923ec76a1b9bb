//! Where uploaded files' bytes live: an `object_store` behind one small handle, chosen once at
//! start-up from `FV_OBJECT_STORE_URL`. The database keeps only metadata and the object key.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{ObjectStore, PutPayload, local::LocalFileSystem, memory::InMemory, path::Path};

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

/// Environment variables whose names start with one of `prefixes`, as builder options
/// (`AWS_REGION` → `aws_region`): what the builders' own `from_env` would read.
fn env_options(prefixes: &[&str]) -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(key, _)| prefixes.iter().any(|p| key.starts_with(p)))
        .map(|(key, value)| (key.to_ascii_lowercase(), value))
        .collect()
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
                    _ => {
                        let options = env_options(&["AWS_", "AZURE_", "GOOGLE_"]);
                        let (store, prefix) = object_store::parse_url_opts(&url, options)
                            .with_context(|| {
                                format!("FV_OBJECT_STORE_URL: cannot open {raw} (cloud stores need the aws/azure/gcp features of object_store)")
                            })?;
                        let store: Arc<dyn ObjectStore> = Arc::from(store);
                        if prefix.as_ref().is_empty() {
                            store
                        } else {
                            // `s3://bucket/prefix`: keep every key under the prefix.
                            Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
                        }
                    }
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

//! Where backup archives are kept: a local directory (the default) or an S3-compatible
//! object store (through the `object_store` crate).
//!
//! `pg_dump` and `pg_restore` work on local files, so every archive is first written to a
//! local file and checked with `pg_restore --list`; [`BackupStore::commit`] then keeps it in
//! place (local store) or uploads it to `<prefix>/<database>/<backup>.dump` and removes the
//! local file (S3). Reading goes the other way: [`BackupStore::fetch`] gives a local file,
//! downloaded into a staging file for S3 (removed again by [`Fetched::cleanup`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Archives at least this large are uploaded in parts.
pub const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Size of each part of a multipart upload (S3's minimum is 5 MiB).
const PART_SIZE: usize = 16 * 1024 * 1024;
/// Parts uploaded at the same time.
const PART_CONCURRENCY: usize = 4;

/// Connection settings of an S3-compatible store.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub bucket: String,
    /// For S3-compatible servers (path-style requests); default AWS.
    pub endpoint: Option<String>,
    pub region: String,
    /// Default: the `AWS_*` environment variables.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Key prefix of every archive (no leading or trailing `/`).
    pub prefix: String,
    /// Allow a plain-HTTP endpoint (a local server).
    pub allow_http: bool,
}

/// The backup store.
#[derive(Debug, Clone)]
pub enum BackupStore {
    /// `<dir>/<database>/<backup>.dump`.
    Local { dir: PathBuf },
    /// `s3://<bucket>/<prefix>/<database>/<backup>.dump`.
    S3 {
        store: Arc<dyn ObjectStore>,
        bucket: String,
        prefix: String,
    },
}

/// Errors of the backup store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("backup archive not found: {0}")]
    NotFound(String),
    #[error("backup store: {0}")]
    Other(String),
}

impl From<object_store::Error> for StoreError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => Self::NotFound(path),
            e => Self::Other(e.to_string()),
        }
    }
}

fn io_err(path: &Path, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StoreError::NotFound(path.display().to_string())
    } else {
        StoreError::Other(format!("{}: {e}", path.display()))
    }
}

/// A local copy of an archive, from [`BackupStore::fetch`].
#[derive(Debug)]
pub struct Fetched {
    pub path: PathBuf,
    temporary: bool,
}

impl Fetched {
    /// A local file to remove after use.
    pub fn temporary(path: PathBuf) -> Self {
        Self {
            path,
            temporary: true,
        }
    }

    /// Removes the staging file of a downloaded archive (nothing for the local store).
    pub async fn cleanup(self) {
        if self.temporary {
            if let Err(e) = tokio::fs::remove_file(&self.path).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, path = %self.path.display(), "cannot remove a staging file");
                }
            }
        }
    }
}

static STAGING_SEQ: AtomicU64 = AtomicU64::new(0);

impl BackupStore {
    /// The S3 store of these settings (no request is made).
    pub fn s3(o: &S3Options) -> Result<Self, StoreError> {
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&o.bucket)
            .with_region(&o.region)
            .with_allow_http(o.allow_http);
        if let Some(e) = &o.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(k) = &o.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(s) = &o.secret_access_key {
            b = b.with_secret_access_key(s);
        }
        let store = b.build().map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(Self::S3 {
            store: Arc::new(store),
            bucket: o.bucket.clone(),
            prefix: o.prefix.trim_matches('/').to_string(),
        })
    }

    fn key(prefix: &str, database_id: &str, backup_id: &str) -> ObjectPath {
        let rel = format!("{database_id}/{backup_id}.dump");
        if prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{prefix}/{rel}"))
        }
    }

    /// The local file where `pg_dump` writes a new archive (the final file of the local
    /// store; a staging file under `staging` for S3). Its parent directory is created.
    pub async fn dump_path(
        &self,
        staging: &Path,
        database_id: &str,
        backup_id: &str,
    ) -> Result<PathBuf, StoreError> {
        let dir = match self {
            Self::Local { dir } => dir,
            Self::S3 { .. } => staging,
        };
        let dir = dir.join(database_id);
        create_private_dir(&dir).await?;
        Ok(dir.join(format!("{backup_id}.dump")))
    }

    /// Stores a verified archive written at `file.with_extension("dump.partial")`, where
    /// `file` is [`Self::dump_path`]: the local store renames it into place; S3 uploads it
    /// and removes the local file. Returns `(location, size in bytes)`.
    pub async fn commit(
        &self,
        file: &Path,
        database_id: &str,
        backup_id: &str,
    ) -> Result<(String, u64), StoreError> {
        let partial = file.with_extension("dump.partial");
        let size = tokio::fs::metadata(&partial)
            .await
            .map_err(|e| io_err(&partial, e))?
            .len();
        // pg_dump creates the file with the process's umask; an archive is the tenant's data.
        {
            use std::os::unix::fs::PermissionsExt as _;
            tokio::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
                .await
                .map_err(|e| io_err(&partial, e))?;
        }
        match self {
            Self::Local { .. } => {
                tokio::fs::rename(&partial, file)
                    .await
                    .map_err(|e| io_err(file, e))?;
                Ok((file.display().to_string(), size))
            }
            Self::S3 {
                store,
                bucket,
                prefix,
            } => {
                let key = Self::key(prefix, database_id, backup_id);
                if size >= MULTIPART_THRESHOLD {
                    upload_multipart(store.as_ref(), &key, &partial).await?;
                } else {
                    let bytes = tokio::fs::read(&partial)
                        .await
                        .map_err(|e| io_err(&partial, e))?;
                    store.put(&key, PutPayload::from(bytes)).await?;
                }
                if let Err(e) = tokio::fs::remove_file(&partial).await {
                    tracing::warn!(error = %e, path = %partial.display(), "cannot remove a staging file");
                }
                Ok((format!("s3://{bucket}/{key}"), size))
            }
        }
    }

    /// A local file with the archive: the store's own file, or a download into a fresh
    /// staging file under `staging`.
    pub async fn fetch(
        &self,
        staging: &Path,
        database_id: &str,
        backup_id: &str,
    ) -> Result<Fetched, StoreError> {
        match self {
            Self::Local { dir } => Ok(Fetched {
                path: dir.join(database_id).join(format!("{backup_id}.dump")),
                temporary: false,
            }),
            Self::S3 { store, prefix, .. } => {
                let key = Self::key(prefix, database_id, backup_id);
                let dir = staging.join("downloads");
                create_private_dir(&dir).await?;
                let path = dir.join(format!(
                    "{backup_id}-{}-{}.dump",
                    std::process::id(),
                    STAGING_SEQ.fetch_add(1, Ordering::Relaxed)
                ));
                let fetched = Fetched {
                    path,
                    temporary: true,
                };
                match download(store.as_ref(), &key, &fetched.path).await {
                    Ok(()) => Ok(fetched),
                    Err(e) => {
                        fetched.cleanup().await;
                        Err(e)
                    }
                }
            }
        }
    }

    /// Deletes an archive; one that is already gone is not an error.
    pub async fn delete(&self, database_id: &str, backup_id: &str) -> Result<(), StoreError> {
        match self {
            Self::Local { dir } => {
                let path = dir.join(database_id).join(format!("{backup_id}.dump"));
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(io_err(&path, e)),
                }
            }
            Self::S3 { store, prefix, .. } => {
                match store
                    .delete(&Self::key(prefix, database_id, backup_id))
                    .await
                {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}

async fn upload_multipart(
    store: &dyn ObjectStore,
    key: &ObjectPath,
    file: &Path,
) -> Result<(), StoreError> {
    let upload = store.put_multipart(key).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut f = tokio::fs::File::open(file)
        .await
        .map_err(|e| io_err(file, e))?;
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = match f.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(io_err(file, e));
            }
        };
        if n == 0 {
            break;
        }
        if let Err(e) = writer.wait_for_capacity(PART_CONCURRENCY).await {
            return Err(e.into());
        }
        writer.write(&buf[..n]);
    }
    writer.finish().await?;
    Ok(())
}

/// Creates a directory (and its missing parents) readable by pgfleet's OS user only: backup
/// archives and staging files are tenants' data.
pub async fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt as _;
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .await
        .map_err(|e| io_err(dir, e))?;
    tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .await
        .map_err(|e| io_err(dir, e))
}

async fn download(
    store: &dyn ObjectStore,
    key: &ObjectPath,
    file: &Path,
) -> Result<(), StoreError> {
    let mut stream = store.get(key).await?.into_stream();
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .await
        .map_err(|e| io_err(file, e))?;
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk?).await.map_err(|e| io_err(file, e))?;
    }
    out.flush().await.map_err(|e| io_err(file, e))?;
    out.sync_all().await.map_err(|e| io_err(file, e))?;
    Ok(())
}

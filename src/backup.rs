//! `finvision backup` and `finvision restore`: the whole deployment in one file.
//!
//! A backup is a tar holding `manifest.json` (format version, when, and the size and SHA-256 of
//! every other part), `database.dump` (`pg_dump --format=custom` of the database) and
//! `files/<key>` (every object of the file store). A restore checks every checksum before it
//! touches anything, refuses a database or a file store that already holds data unless forced,
//! then runs `pg_restore` in one transaction and writes the files back.
//!
//! `pg_dump` and `pg_restore` come from the embedded cluster's installation when there is one
//! (their version matches the server's), else from the newest `/usr/lib/postgresql/*/bin`, else
//! from `PATH`. They are clients, so they run as the current user even as root. The password
//! travels in `PGPASSWORD`, never on a command line.

use std::{
    fs::File,
    io::{self, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use diesel::{QueryableByName, sql_types::BigInt};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::storage::FileStore;

/// The manifest's name inside the archive.
pub const MANIFEST: &str = "manifest.json";
/// The database dump's name inside the archive.
pub const DATABASE_DUMP: &str = "database.dump";
/// The directory of the file store's objects inside the archive.
pub const FILES_DIR: &str = "files";
/// What `manifest.json` says it is.
const FORMAT: &str = "finvision-backup";
/// The archive layout's version; a restore refuses any other.
pub const FORMAT_VERSION: u32 = 1;

/// What a backup holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `finvision-backup`.
    pub format: String,
    /// The layout's version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// The version of the binary that wrote it.
    pub app_version: String,
    /// When the backup was taken.
    pub created_at: DateTime<Utc>,
    /// Every part but the manifest: the dump first, then the files in key order.
    pub parts: Vec<Part>,
}

/// One file of the archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Part {
    /// Its path inside the archive (`database.dump`, `files/<key>`).
    pub path: String,
    /// Its length.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of its content.
    pub sha256: String,
}

impl Manifest {
    /// The number of files of the store the backup holds.
    pub fn file_count(&self) -> usize {
        self.parts
            .iter()
            .filter(|part| part.path.starts_with(FILES_DIR))
            .count()
    }
}

/// What is backed up or restored into.
pub struct Target<'a> {
    /// The database (with its password, if any).
    pub database_url: &'a str,
    /// The directory of the PostgreSQL client binaries to use (the embedded cluster's).
    pub bin_dir: Option<&'a Path>,
    /// The file store.
    pub files: &'a FileStore,
}

/// Back the database and the file store up into `out` (written whole, then renamed into place).
pub async fn backup(target: &Target<'_>, out: &Path) -> anyhow::Result<Manifest> {
    let parent = parent_of(out);
    let staging = tempfile::Builder::new()
        .prefix(".fv-backup-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a staging directory in {}", parent.display()))?;
    let dump = staging.path().join(DATABASE_DUMP);
    let (url, password) = split_password(target.database_url)?;
    let mut pg_dump = tokio::process::Command::new(client_binary("pg_dump", target.bin_dir)?);
    pg_dump
        .arg("--format=custom")
        .arg("--file")
        .arg(&dump)
        .arg("--dbname")
        .arg(&url);
    run(pg_dump, password.as_deref(), "pg_dump").await?;
    let mut parts = vec![part_of(DATABASE_DUMP, &dump)?];

    for key in target.files.keys().await.map_err(anyhow::Error::from)? {
        let bytes = target
            .files
            .read_all(&key)
            .await
            .map_err(anyhow::Error::from)?;
        let path = format!("{FILES_DIR}/{key}");
        let staged = staging.path().join(&path);
        if let Some(dir) = staged.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&staged, &bytes)?;
        parts.push(Part {
            path,
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
        });
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        app_version: env!("CARGO_PKG_VERSION").into(),
        created_at: Utc::now(),
        parts,
    };

    let partial = staging.path().join("backup.tar");
    {
        let mut tar = tar::Builder::new(io::BufWriter::new(File::create(&partial)?));
        let json = serde_json::to_vec_pretty(&manifest)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(u64::try_from(manifest.created_at.timestamp()).unwrap_or(0));
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, json.as_slice())?;
        for part in &manifest.parts {
            tar.append_path_with_name(staging.path().join(&part.path), &part.path)?;
        }
        tar.into_inner()?.flush()?;
    }
    File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, out)
        .with_context(|| format!("cannot write the backup to {}", out.display()))?;
    Ok(manifest)
}

/// Restore the backup `from` into an empty database and an empty file store (`force`: into ones
/// that hold data; the database's objects are replaced, files of the same keys overwritten).
/// Every checksum is verified before anything is written.
pub async fn restore(target: &Target<'_>, from: &Path, force: bool) -> anyhow::Result<Manifest> {
    let parent = parent_of(from);
    let staging = tempfile::Builder::new()
        .prefix(".fv-restore-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a staging directory in {}", parent.display()))?;
    let archive = File::open(from).with_context(|| format!("cannot open {}", from.display()))?;
    // `unpack` refuses entries that would land outside the directory (`..`, absolute paths).
    tar::Archive::new(io::BufReader::new(archive))
        .unpack(staging.path())
        .with_context(|| format!("{} is not a readable backup", from.display()))?;
    let manifest = verify(staging.path())?;

    if !force {
        let tables = relation_count(target.database_url).await?;
        ensure!(
            tables == 0,
            "the database is not empty ({tables} tables, views or sequences): restore into an \
             empty one, or pass --force to replace its contents"
        );
        let keys = target.files.keys().await.map_err(anyhow::Error::from)?;
        ensure!(
            keys.is_empty(),
            "the file store is not empty ({} files): restore into an empty one, or pass --force",
            keys.len()
        );
    }

    let (url, password) = split_password(target.database_url)?;
    let mut pg_restore = tokio::process::Command::new(client_binary("pg_restore", target.bin_dir)?);
    // Owners name roles of the source cluster, which the target may not have: the restoring user
    // (the owner role, FV_MIGRATION_DATABASE_URL) owns everything, as the migrations would have
    // made it. Grants are restored: the application role (`finvision_app`) must exist in the
    // target cluster, as it must for the migrations; without them it could read nothing.
    pg_restore
        .args(["--no-owner", "--exit-on-error", "--single-transaction"])
        .arg("--dbname")
        .arg(&url);
    if force {
        pg_restore.args(["--clean", "--if-exists"]);
    }
    pg_restore.arg(staging.path().join(DATABASE_DUMP));
    run(pg_restore, password.as_deref(), "pg_restore").await?;

    for part in &manifest.parts {
        let Some(key) = part.path.strip_prefix(&format!("{FILES_DIR}/")) else {
            continue;
        };
        let bytes = std::fs::read(staging.path().join(&part.path))?;
        target
            .files
            .write(key, Bytes::from(bytes))
            .await
            .map_err(anyhow::Error::from)?;
    }
    Ok(manifest)
}

/// Read the unpacked archive's manifest and check every part against it: nothing missing,
/// nothing extra, every size and SHA-256 as recorded.
fn verify(dir: &Path) -> anyhow::Result<Manifest> {
    let raw = std::fs::read(dir.join(MANIFEST)).context("the backup has no manifest.json")?;
    let manifest: Manifest = serde_json::from_slice(&raw).context("manifest.json is not valid")?;
    ensure!(
        manifest.format == FORMAT && manifest.version == FORMAT_VERSION,
        "not a FinVision backup of format version {FORMAT_VERSION} ({} {})",
        manifest.format,
        manifest.version
    );
    ensure!(
        <[Part]>::first(&manifest.parts).map(|p| p.path.as_str()) == Some(DATABASE_DUMP),
        "the backup's manifest names no database dump"
    );
    let mut listed = std::collections::BTreeSet::new();
    for part in &manifest.parts {
        let path = dir.join(&part.path);
        let found = part_of(&part.path, &path)
            .with_context(|| format!("the backup lacks {}", part.path))?;
        if found != *part {
            bail!(
                "checksum mismatch for {}: the manifest says {} bytes, sha256 {}; the archive \
                 holds {} bytes, sha256 {}",
                part.path,
                part.bytes,
                part.sha256,
                found.bytes,
                found.sha256
            );
        }
        listed.insert(path);
    }
    for entry in walk(dir)? {
        ensure!(
            entry == dir.join(MANIFEST) || listed.contains(&entry),
            "the backup holds {} which its manifest does not list",
            entry.display()
        );
    }
    Ok(manifest)
}

/// Every regular file under `dir`.
fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            } else {
                found.push(entry.path());
            }
        }
    }
    Ok(found)
}

/// The size and SHA-256 of the file at `path`, named `name`.
fn part_of(name: &str, path: &Path) -> anyhow::Result<Part> {
    let mut hasher = Sha256::new();
    let bytes = io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(Part {
        path: name.to_owned(),
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The URL without its password, and the password (percent-decoded) for `PGPASSWORD`.
fn split_password(database_url: &str) -> anyhow::Result<(String, Option<String>)> {
    let mut url = url::Url::parse(database_url).context("DATABASE_URL is not a URL")?;
    let password = url.password().map(percent_decode);
    if password.is_some() {
        url.set_password(None)
            .map_err(|()| anyhow::anyhow!("DATABASE_URL: cannot remove its password"))?;
    }
    Ok((url.to_string(), password))
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `name` from `bin_dir`, else the newest `/usr/lib/postgresql/<version>/bin`, else `PATH`.
fn client_binary(name: &str, bin_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = bin_dir {
        return Ok(dir.join(name));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let binary = entry.path().join("bin").join(name);
            binary.is_file().then_some((version, binary))
        })
        .collect();
    versions.sort();
    if let Some((_, binary)) = versions.pop() {
        return Ok(binary);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|binary| binary.is_file())
        .with_context(|| {
            format!("{name} not found (install the PostgreSQL client of the server's version)")
        })
}

/// Run a PostgreSQL client without the caller's libpq variables (the URL says everything).
async fn run(
    mut command: tokio::process::Command,
    password: Option<&str>,
    what: &str,
) -> anyhow::Result<()> {
    for var in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGOPTIONS",
        "PGSERVICE",
    ] {
        command.env_remove(var);
    }
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {what}"))?;
    ensure!(
        output.status.success(),
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Tables, views and sequences outside PostgreSQL's own schemas: 0 for an empty database.
async fn relation_count(database_url: &str) -> anyhow::Result<i64> {
    let mut conn = AsyncPgConnection::establish(database_url)
        .await
        .context("cannot connect to the database to restore into")?;
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
            AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'",
    )
    .get_result(&mut conn)
    .await?;
    Ok(count.n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_decoded() {
        let (url, password) = split_password("postgres://fv:p%40ss%2Fw@127.0.0.1:5432/db").unwrap();
        assert_eq!(url, "postgres://fv@127.0.0.1:5432/db");
        assert_eq!(password.as_deref(), Some("p@ss/w"));
        let (url, password) = split_password("postgres://postgres@127.0.0.1/postgres").unwrap();
        assert_eq!(url, "postgres://postgres@127.0.0.1/postgres");
        assert_eq!(password, None);
    }
}

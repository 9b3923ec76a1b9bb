//! Who owns what under the data directory, and who may use it.
//!
//! PostgreSQL refuses to run as root, so as root the commands run as a runtime user
//! (`postgres`, else `nobody`) that must be able to reach the data directory and own the
//! cluster, its log and `run/`; the superuser password stays in a 0600 file only we read. One
//! data directory belongs to one process at a time: a postmaster still running on it at start is
//! an orphan of a crashed run and is stopped; a `postmaster.pid` whose pid now belongs to another
//! program is removed.

use std::fs;
use std::io;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::unistd::{Gid, Uid, User};
use rand::Rng;

use super::process::{process_alive, read_postmaster_pid};
use super::{EmbeddedError, EmbeddedPostgres, io_err};

/// Length of the generated superuser password (alphanumeric, so URL-safe).
const PASSWORD_LEN: usize = 40;

/// The unprivileged user PostgreSQL runs as when we are root.
#[derive(Debug, Clone)]
pub(super) struct RunAs {
    pub(super) name: String,
    pub(super) uid: Uid,
    pub(super) gid: Gid,
}

impl EmbeddedPostgres {
    /// Create `run/` and the log file, and let the runtime user reach them.
    pub(super) fn prepare_dirs(&self) -> Result<(), EmbeddedError> {
        fs::create_dir_all(&self.run_dir)
            .map_err(|e| io_err(format!("creating {}", self.run_dir.display()), e))?;
        set_mode(&self.run_dir, 0o700)?;
        if !self.log_file.exists() {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&self.log_file)
                .map_err(|e| io_err(format!("creating {}", self.log_file.display()), e))?;
        }
        if let Some(user) = &self.run_as {
            // The runtime user only needs to pass through data_dir (not list it);
            // pg-password stays 0600 root-only.
            let mode = fs::metadata(&self.data_dir)
                .map_err(|e| io_err(format!("reading {}", self.data_dir.display()), e))?
                .permissions()
                .mode();
            if mode & 0o001 == 0 {
                set_mode(&self.data_dir, (mode & 0o7777) | 0o001)?;
            }
            check_traversable(&self.data_dir, user)?;
            chown(&self.run_dir, user)?;
            chown(&self.log_file, user)?;
        }
        Ok(())
    }

    /// Read the persisted password, or generate and persist a new one.
    /// The application role's password, from `pg-app-password` or new: unlike the superuser's
    /// it can always be set again (`ensure_app_role`), so a missing file is no error.
    pub(super) fn load_or_create_app_password(&self) -> Result<String, EmbeddedError> {
        let file = self.data_dir.join("pg-app-password");
        match fs::read_to_string(&file) {
            Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("reading {}", file.display()), e)),
        }
        let password: String = rand::rng()
            .sample_iter(&rand::distr::Alphanumeric)
            .take(PASSWORD_LEN)
            .map(char::from)
            .collect();
        let tmp = self.data_dir.join("pg-app-password.tmp");
        write_secret(&tmp, &password)?;
        fs::rename(&tmp, &file).map_err(|e| {
            io_err(
                format!("renaming {} to {}", tmp.display(), file.display()),
                e,
            )
        })?;
        Ok(password)
    }

    pub(super) fn load_or_create_password(&self) -> Result<String, EmbeddedError> {
        let file = self.data_dir.join("pg-password");
        match fs::read_to_string(&file) {
            Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("reading {}", file.display()), e)),
        }
        if self.pgdata.join("PG_VERSION").is_file() {
            return Err(EmbeddedError::MissingPassword {
                pgdata: self.pgdata.clone(),
                password_file: file,
            });
        }
        let password: String = rand::rng()
            .sample_iter(&rand::distr::Alphanumeric)
            .take(PASSWORD_LEN)
            .map(char::from)
            .collect();
        // Write then rename so a crash never leaves a truncated password behind.
        let tmp = self.data_dir.join("pg-password.tmp");
        write_secret(&tmp, &password)?;
        fs::rename(&tmp, &file).map_err(|e| {
            io_err(
                format!("renaming {} to {}", tmp.display(), file.display()),
                e,
            )
        })?;
        Ok(password)
    }

    /// When root, make sure the cluster belongs to the runtime user (it may
    /// have been created by a different one, e.g. `nobody` before `postgres`
    /// existed).
    pub(super) fn fix_ownership(&self) -> Result<(), EmbeddedError> {
        let Some(user) = &self.run_as else {
            return Ok(());
        };
        let meta = fs::metadata(&self.pgdata)
            .map_err(|e| io_err(format!("reading {}", self.pgdata.display()), e))?;
        if meta.uid() != user.uid.as_raw() || meta.gid() != user.gid.as_raw() {
            tracing::info!(user = %user.name, "changing owner of the embedded cluster");
            chown_recursive(&self.pgdata, user)?;
        }
        Ok(())
    }

    /// Deal with a `postmaster.pid` left by a previous run (see module docs).
    pub(super) async fn handle_leftover_postmaster(&self) -> Result<(), EmbeddedError> {
        let Some(pid) = read_postmaster_pid(&self.pgdata) else {
            return Ok(());
        };
        if !process_alive(pid) {
            // A dead postmaster's lock file: postgres itself cleans this up.
            return Ok(());
        }
        let is_postgres = fs::read_link(format!("/proc/{}/exe", pid.as_raw()))
            .ok()
            .and_then(|exe| exe.file_name().map(|n| n == "postgres"))
            .unwrap_or(false);
        if is_postgres {
            tracing::warn!(
                pid = pid.as_raw(),
                data_dir = %self.data_dir.display(),
                "a PostgreSQL server from a previous run is still running on the data directory; stopping it"
            );
            self.pg_ctl_stop("fast").await
        } else {
            // The pid was reused by an unrelated process after a crash; the
            // lock file is stale and postgres would refuse to start over it.
            tracing::warn!(pid = pid.as_raw(), "removing stale postmaster.pid");
            let file = self.pgdata.join("postmaster.pid");
            fs::remove_file(&file).map_err(|e| io_err(format!("removing {}", file.display()), e))
        }
    }
}

/// `None` unless we are root; then `postgres`, else `nobody`.
pub(super) fn runtime_user() -> Result<Option<RunAs>, EmbeddedError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Ok(Some(user)) = User::from_name(name) {
            return Ok(Some(RunAs {
                name: user.name,
                uid: user.uid,
                gid: user.gid,
            }));
        }
    }
    Err(EmbeddedError::NoRuntimeUser)
}

/// Check that `user` can enter every directory from `/` down to `dir`.
///
/// Only the primary group counts, since supplementary groups are dropped.
fn check_traversable(dir: &Path, user: &RunAs) -> Result<(), EmbeddedError> {
    for ancestor in dir.ancestors() {
        let meta = fs::metadata(ancestor)
            .map_err(|e| io_err(format!("reading {}", ancestor.display()), e))?;
        let mode = meta.mode();
        let ok = if meta.uid() == user.uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !ok {
            return Err(EmbeddedError::Inaccessible {
                user: user.name.clone(),
                path: ancestor.to_path_buf(),
            });
        }
    }
    Ok(())
}

pub(super) fn write_secret(path: &Path, secret: &str) -> Result<(), EmbeddedError> {
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(format!("creating {}", path.display()), e))?;
    file.write_all(secret.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io_err(format!("writing {}", path.display()), e))
}

pub(super) fn set_mode(path: &Path, mode: u32) -> Result<(), EmbeddedError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| io_err(format!("setting permissions of {}", path.display()), e))
}

pub(super) fn chown(path: &Path, user: &RunAs) -> Result<(), EmbeddedError> {
    nix::unistd::chown(path, Some(user.uid), Some(user.gid)).map_err(|e| {
        io_err(
            format!("changing owner of {} to {}", path.display(), user.name),
            io::Error::from(e),
        )
    })
}

fn chown_recursive(path: &Path, user: &RunAs) -> Result<(), EmbeddedError> {
    // lchown semantics: never follow symlinks out of the cluster.
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(user.uid),
        Some(user.gid),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| {
        io_err(
            format!("changing owner of {}", path.display()),
            io::Error::from(e),
        )
    })?;
    let meta =
        fs::symlink_metadata(path).map_err(|e| io_err(format!("reading {}", path.display()), e))?;
    if meta.is_dir() {
        let entries =
            fs::read_dir(path).map_err(|e| io_err(format!("reading {}", path.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err(format!("reading {}", path.display()), e))?;
            chown_recursive(&entry.path(), user)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::embedded::tests::temp_dir;

    #[tokio::test]
    async fn unreachable_data_dir_is_reported_when_root() {
        let Ok(Some(user)) = runtime_user() else {
            return; // Not root: the runtime user is ourselves.
        };
        let dir = temp_dir();
        set_mode(dir.path(), 0o700).unwrap();
        let err = EmbeddedPostgres::start(&dir.path().join("data"))
            .await
            .unwrap_err();
        match err {
            EmbeddedError::Inaccessible { user: name, path } => {
                assert_eq!(name, user.name);
                assert_eq!(path, fs::canonicalize(dir.path()).unwrap());
            }
            other => panic!("unexpected error: {other}"),
        }
    }
}

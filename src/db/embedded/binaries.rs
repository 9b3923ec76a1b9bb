//! Finding the PostgreSQL binaries: `initdb`, `pg_ctl` and `postgres` from one installation,
//! on `PATH` first, then under the distribution's versioned directories.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::EmbeddedError;

/// Where distribution packages (Debian/Ubuntu) install versioned binaries.
pub(super) const LIB_ROOT: &str = "/usr/lib/postgresql";
/// Binaries that must all be present in one directory.
const BINARIES: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// Find a directory holding `initdb`, `pg_ctl` and `postgres`.
///
/// Looks on `path_var` (a `PATH`-style value) first, then under
/// `<lib_root>/<version>/bin`, highest version first. Symlinks on PATH (e.g.
/// `/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb`) are resolved
/// so that all three binaries come from the same installation.
pub fn find_binaries(path_var: Option<&OsStr>, lib_root: &Path) -> Result<PathBuf, EmbeddedError> {
    let has_all = |dir: &Path| BINARIES.iter().all(|b| is_executable(&dir.join(b)));
    if let Some(path_var) = path_var {
        for dir in std::env::split_paths(path_var) {
            if dir.as_os_str().is_empty() {
                continue;
            }
            let initdb = dir.join("initdb");
            if !is_executable(&initdb) {
                continue;
            }
            if let Some(real_dir) = fs::canonicalize(&initdb)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                && has_all(&real_dir)
            {
                return Ok(real_dir);
            }
            if has_all(&dir) {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(Vec<u64>, PathBuf)> = fs::read_dir(lib_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = parse_version(&name)?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions
        .into_iter()
        .map(|(_, dir)| dir)
        .find(|dir| has_all(dir))
        .ok_or(EmbeddedError::NoBinaries)
}

/// "15" -> [15], "9.6" -> [9, 6]; anything else is not a version directory.
fn parse_version(name: &OsStr) -> Option<Vec<u64>> {
    name.to_str()?
        .split('.')
        .map(|part| part.parse().ok())
        .collect()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::embedded::ownership::set_mode;
    use crate::db::embedded::tests::temp_dir;

    #[test]
    fn no_binaries_error_names_both_remedies() {
        let empty = temp_dir();
        let err = find_binaries(Some(OsStr::new("")), empty.path()).unwrap_err();
        assert!(matches!(err, EmbeddedError::NoBinaries));
        let msg = err.to_string();
        assert!(msg.contains("not found"), "{msg}");
        assert!(msg.contains("apt-get install postgresql"), "{msg}");
        assert!(msg.contains("DATABASE_URL"), "{msg}");
        let err = find_binaries(None, &empty.path().join("missing")).unwrap_err();
        assert!(matches!(err, EmbeddedError::NoBinaries));
    }

    #[test]
    fn binaries_prefer_path_then_highest_version() {
        let root = temp_dir();
        let fake = |dir: &Path, names: &[&str]| {
            fs::create_dir_all(dir).unwrap();
            for name in names {
                let file = dir.join(name);
                fs::write(&file, "#!/bin/sh\n").unwrap();
                set_mode(&file, 0o755).unwrap();
            }
        };
        fake(&root.path().join("9.6/bin"), &BINARIES);
        fake(&root.path().join("15/bin"), &BINARIES);
        // Incomplete installation: must be skipped despite the higher version.
        fake(&root.path().join("16/bin"), &["initdb", "pg_ctl"]);
        fake(&root.path().join("notaversion/bin"), &BINARIES);
        assert_eq!(
            find_binaries(Some(OsStr::new("")), root.path()).unwrap(),
            root.path().join("15/bin")
        );

        let on_path = root.path().join("onpath");
        fake(&on_path, &BINARIES);
        let path_var =
            std::env::join_paths([root.path().join("nothing"), on_path.clone()]).unwrap();
        assert_eq!(
            find_binaries(Some(&path_var), root.path()).unwrap(),
            fs::canonicalize(&on_path).unwrap()
        );
    }
}

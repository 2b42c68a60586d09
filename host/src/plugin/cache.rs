//! Compiled components on disk, keyed by the `.wasm`'s SHA-256 and the
//! engine's compatibility hash, so a restart deserializes (≈ 0.3 ms) instead
//! of compiling (≈ 50 ms per plugin). Only the gateway writes this directory;
//! files from the plugin folder are never deserialized.
//!
//! Deserializing trusts the artifact (it is native code), so the directory
//! must be the gateway's alone: it is created `0700`, an existing one that
//! only others could read is tightened to `0700`, and one owned by another
//! user or writable by group or others is not used at all (plugins are
//! then compiled at every load, and one warning says why).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// The artifact cache directory.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

/// Why the cache directory is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Untrusted {
    /// Another user owns it.
    #[error("it is owned by user {owner}, not by the gateway's user {me}")]
    Owner {
        /// The directory's owner.
        owner: u32,
        /// The gateway's effective user.
        me: u32,
    },
    /// Group or others may write into it.
    #[error("its group or other users may write into it (mode {mode:o})")]
    Writable {
        /// The permission bits.
        mode: u32,
    },
}

impl ArtifactCache {
    /// The cache in `dir` (created `0700` if missing); `None`, after one
    /// warning, when the directory is not the gateway's alone.
    pub(crate) fn new(dir: &Path, engine: &Engine) -> std::io::Result<Option<Self>> {
        create_private(dir)?;
        if let Err(why) = check_private(dir)? {
            tracing::warn!(
                dir = %dir.display(),
                reason = %why,
                "not using the compiled-plugin cache: loading from it would run whatever it holds; plugins are compiled at every load"
            );
            return Ok(None);
        }
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Some(ArtifactCache {
            dir: dir.to_path_buf(),
            engine_key: format!("{:016x}", hasher.finish()),
        }))
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The cached component for this content, if a usable artifact exists.
    pub(crate) fn get(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        // Read into memory rather than mmap (`deserialize_file`): a file
        // truncated underneath a mapping would crash the process (SIGBUS).
        let bytes = std::fs::read(&path).ok()?;
        // SAFETY: the file is named by the content hash and the engine's
        // compatibility hash, and only `put` below writes into this
        // directory, from a component this process compiled itself;
        // wasmtime checks the header and compatibility before using it.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize(engine, &bytes) };
        match loaded {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding an unusable compiled artifact");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled component (write to a temporary file, then rename).
    pub(crate) fn put(&self, sha256: &str, component: &Component) {
        let path = self.path(sha256);
        let result = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|bytes| {
                let mut tmp = tempfile_in(&self.dir)?;
                tmp.1.write_all(&bytes)?;
                tmp.1.sync_all()?;
                std::fs::rename(&tmp.0, &path)
            });
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "cannot cache a compiled plugin");
        }
    }

    /// Removes artifacts of other engine versions and of content not in `keep`.
    pub(crate) fn prune(&self, keep: &[String]) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".cwasm") else {
                continue;
            };
            let current = stem.ends_with(&self.engine_key)
                && keep.iter().any(|sha| stem.starts_with(sha.as_str()));
            if !current && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// Creates `dir` (and missing parents) with mode `0700`.
fn create_private(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Whether `dir` is the gateway's alone: owned by its user and writable by
/// no one else. A directory of ours that others may only read (made by an
/// earlier version under the default umask) is tightened to `0700`.
#[cfg(unix)]
fn check_private(dir: &Path) -> std::io::Result<Result<(), Untrusted>> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let meta = std::fs::metadata(dir)?;
    let mode = meta.mode() & 0o7777;
    #[cfg(target_os = "linux")]
    {
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Ok(Err(Untrusted::Owner {
                owner: meta.uid(),
                me,
            }));
        }
    }
    if mode & 0o022 != 0 {
        return Ok(Err(Untrusted::Writable { mode }));
    }
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(Ok(()))
}

#[cfg(not(unix))]
fn check_private(_dir: &Path) -> std::io::Result<Result<(), Untrusted>> {
    Ok(Ok(()))
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let path = dir.join(format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let file = std::fs::File::create(&path)?;
    Ok((path, file))
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn engine() -> Engine {
        Engine::default()
    }

    #[test]
    fn a_new_cache_directory_is_private() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data/cache");
        assert!(ArtifactCache::new(&dir, &engine()).unwrap().is_some());
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn an_existing_readable_directory_is_tightened() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("cache");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(ArtifactCache::new(&dir, &engine()).unwrap().is_some());
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_directory_others_may_write_is_not_used() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("cache");
        std::fs::create_dir(&dir).unwrap();
        for bits in [0o777, 0o770, 0o702] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(bits)).unwrap();
            assert_eq!(
                check_private(&dir).unwrap(),
                Err(Untrusted::Writable { mode: bits })
            );
            assert!(ArtifactCache::new(&dir, &engine()).unwrap().is_none());
            // Left as it was: not ours to repair.
            assert_eq!(mode(&dir), bits);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_directory_of_another_user_is_not_used() {
        let me = rustix::process::geteuid().as_raw();
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("cache");
        std::fs::create_dir(&dir).unwrap();
        let other = if me == 0 { 65_534 } else { 0 };
        // Giving a directory away needs root; as another user the test can
        // only check a directory root owns.
        let dir = if me == 0 {
            std::os::unix::fs::chown(&dir, Some(other), None).unwrap();
            dir
        } else {
            std::path::PathBuf::from("/")
        };
        assert_eq!(
            check_private(&dir).unwrap(),
            Err(Untrusted::Owner { owner: other, me })
        );
    }
}

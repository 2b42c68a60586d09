//! Compiled components on disk, keyed by the `.wasm`'s SHA-256 and the
//! engine's compatibility hash, so a restart deserializes (≈ 0.3 ms) instead
//! of compiling (≈ 50 ms per plugin). Only the gateway writes this directory;
//! files from the plugin folder are never deserialized.

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

impl ArtifactCache {
    pub(crate) fn new(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(ArtifactCache {
            dir: dir.to_path_buf(),
            engine_key: format!("{:016x}", hasher.finish()),
        })
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

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let path = dir.join(format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let file = std::fs::File::create(&path)?;
    Ok((path, file))
}

//! Listing the plugin directory, and the settle rule that keeps a file
//! still being written from being loaded half-way.
//!
//! **Which files count**: regular files (or links to them) directly in the
//! directory whose name ends in `.wasm` (any case) and does not start with
//! `.`. So `echo.wasm.tmp`, `.echo.wasm` or `echo.wasm.part` are ignored:
//! write under such a name, then rename to `*.wasm` (an atomic step on one
//! file system) and the gateway sees only the complete file.
//!
//! **When a file is complete**: once its [`Stamp`] (size, modification
//! time, and on Unix its inode and status-change time) has stayed the same
//! for at least the settle time (1 s by default), measured from the first
//! scan that saw it. A file copied in slowly keeps changing, so it is left
//! alone until the copy has finished. A file already loaded whose stamp
//! changes (replaced by a rename, rewritten) settles the same way. At
//! start, and on a forced reload, files are taken as they are.
//!
//! The inode and status-change time are part of the stamp because size and
//! modification time alone miss a same-size replacement that keeps the old
//! modification time (`cp -p`, `install -p`, unpacking an archive): a
//! rename over the file brings a new inode, and writing or renaming a file
//! sets its status-change time, which no tool can set back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What the settle rule compares between scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Size in bytes.
    pub len: u64,
    /// Last modification, where the file system records it.
    pub modified: Option<SystemTime>,
    /// Inode number (Unix; 0 elsewhere).
    pub inode: u64,
    /// Last status change in nanoseconds since the epoch (Unix; 0
    /// elsewhere): set by every write and rename, never by `cp -p`.
    pub changed: i128,
}

impl Stamp {
    /// The stamp of `path` now (following links).
    pub(crate) fn of(path: &Path) -> std::io::Result<Stamp> {
        let meta = std::fs::metadata(path)?;
        #[cfg(unix)]
        let (inode, changed) = {
            use std::os::unix::fs::MetadataExt as _;
            (
                meta.ino(),
                i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            )
        };
        #[cfg(not(unix))]
        let (inode, changed) = (0, 0);
        Ok(Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
            changed,
        })
    }
}

/// Is this a file name the gateway loads (see the module docs)?
pub(crate) fn counts(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.') && lower.len() > ".wasm".len() && lower.ends_with(".wasm")
}

/// One listing of the directory.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Files that are complete, with their stamps, sorted by path.
    pub ready: Vec<(PathBuf, Stamp)>,
    /// Files still changing (or seen for the first time), sorted by path.
    pub settling: Vec<PathBuf>,
}

impl Scan {
    /// Does the directory hold `path` (complete or not)?
    pub(crate) fn holds(&self, path: &Path) -> bool {
        self.ready.iter().any(|(p, _)| p == path) || self.settling.iter().any(|p| p == path)
    }
}

/// Remembers when each file's current stamp was first seen.
#[derive(Debug)]
pub(crate) struct Scanner {
    settle: Duration,
    seen: HashMap<PathBuf, (Stamp, Instant)>,
}

impl Scanner {
    /// A scanner that waits `settle` for a file to stop changing.
    pub(crate) fn new(settle: Duration) -> Self {
        Scanner {
            settle,
            seen: HashMap::new(),
        }
    }

    /// Lists `dir` at `now`. With `take_as_is`, every file counts as
    /// complete (start, forced reload). A missing directory is an empty
    /// one; `None` when it exists but cannot be listed (then nothing
    /// should change).
    pub(crate) fn scan(&mut self, dir: &Path, now: Instant, take_as_is: bool) -> Option<Scan> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.seen.clear();
                return Some(Scan::default());
            }
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "cannot list the plugin directory");
                return None;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| counts(p))
            .collect();
        paths.sort();
        let mut scan = Scan::default();
        let mut seen = HashMap::with_capacity(paths.len());
        for path in paths {
            // Gone between listing and stat, or not a file: not there.
            let Ok(stamp) = Stamp::of(&path) else {
                continue;
            };
            if !path.is_file() {
                continue;
            }
            let since = match self.seen.get(&path) {
                Some((previous, since)) if *previous == stamp => *since,
                _ => now,
            };
            seen.insert(path.clone(), (stamp, since));
            if take_as_is || now.saturating_duration_since(since) >= self.settle {
                scan.ready.push((path, stamp));
            } else {
                scan.settling.push(path);
            }
        }
        self.seen = seen;
        Some(scan)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn only_wasm_files_not_hidden_count() {
        assert!(counts(Path::new("/p/echo.wasm")));
        assert!(counts(Path::new("/p/Echo.WASM")));
        assert!(!counts(Path::new("/p/.echo.wasm")));
        assert!(!counts(Path::new("/p/echo.wasm.tmp")));
        assert!(!counts(Path::new("/p/echo.tmp")));
        assert!(!counts(Path::new("/p/.wasm")));
        assert!(!counts(Path::new("/p/echo.wasm.part")));
    }

    #[test]
    fn a_file_is_ready_once_unchanged_for_the_settle_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("echo.wasm");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"\0asm").unwrap();
        file.sync_all().unwrap();
        std::fs::write(dir.path().join("echo.wasm.tmp"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("sub.wasm")).unwrap();

        let settle = Duration::from_secs(1);
        let mut scanner = Scanner::new(settle);
        let t0 = Instant::now();
        let first = scanner.scan(dir.path(), t0, false).unwrap();
        assert!(first.ready.is_empty());
        assert_eq!(first.settling, vec![path.clone()]);
        // Not yet settled.
        let early = scanner
            .scan(dir.path(), t0 + Duration::from_millis(500), false)
            .unwrap();
        assert_eq!(early.settling, vec![path.clone()]);
        // A write restarts the wait.
        file.write_all(b"more").unwrap();
        file.sync_all().unwrap();
        let t1 = t0 + Duration::from_millis(1200);
        let changed = scanner.scan(dir.path(), t1, false).unwrap();
        assert_eq!(changed.settling, vec![path.clone()]);
        let settled = scanner.scan(dir.path(), t1 + settle, false).unwrap();
        assert_eq!(settled.ready.len(), 1);
        assert_eq!(settled.ready[0].0, path);
        assert_eq!(settled.ready[0].1.len, 8);
        assert!(settled.holds(&path));
    }

    #[cfg(unix)]
    #[test]
    fn a_same_size_replacement_with_the_old_mtime_changes_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("echo.wasm");
        std::fs::write(&path, b"\0asm-one").unwrap();
        let before = Stamp::of(&path).unwrap();
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        // `cp -p` to a temporary name, then a rename over the file.
        let tmp = dir.path().join(".echo.wasm.tmp");
        std::fs::write(&tmp, b"\0asm-two").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let after = Stamp::of(&path).unwrap();
        assert_eq!((after.len, after.modified), (before.len, before.modified));
        assert_ne!(after, before);

        // The same in place (no rename): the status-change time moves.
        let mut scanner = Scanner::new(Duration::from_secs(1));
        let t0 = Instant::now();
        scanner.scan(dir.path(), t0, false).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, b"\0asm-3re").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let scan = scanner
            .scan(dir.path(), t0 + Duration::from_secs(2), false)
            .unwrap();
        assert_eq!(scan.settling, vec![path], "a changed file settles again");
    }

    #[test]
    fn start_and_forced_reloads_take_files_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wasm");
        std::fs::write(&path, b"\0asm").unwrap();
        let mut scanner = Scanner::new(Duration::from_secs(60));
        let scan = scanner.scan(dir.path(), Instant::now(), true).unwrap();
        assert_eq!(scan.ready.len(), 1);
        assert!(scan.settling.is_empty());
    }

    #[test]
    fn a_missing_directory_is_empty_and_removed_files_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wasm");
        std::fs::write(&path, b"\0asm").unwrap();
        let mut scanner = Scanner::new(Duration::ZERO);
        assert_eq!(
            scanner
                .scan(dir.path(), Instant::now(), false)
                .unwrap()
                .ready
                .len(),
            1
        );
        std::fs::remove_file(&path).unwrap();
        let scan = scanner.scan(dir.path(), Instant::now(), false).unwrap();
        assert!(scan.ready.is_empty() && !scan.holds(&path));
        let gone = scanner
            .scan(&dir.path().join("missing"), Instant::now(), false)
            .unwrap();
        assert!(gone.ready.is_empty() && gone.settling.is_empty());
    }
}

//! The file text read into its raw sections, kept while the text stays the
//! same: every API write checks the same file text with another overlay,
//! and reading a file with thousands of contacts into the raw types costs
//! more than validating them.
//!
//! Only what depends on the text alone is kept (the raw sections, the
//! entries that did not parse and their problems), keyed by the whole
//! text, so a hit gives exactly what reading the text again would.

use std::sync::{Arc, Mutex};

use super::parse::{Broken, Document};
use super::raw::RawConfig;
use crate::problem::{Problem, Problems};

/// What reading a text gave.
#[derive(Debug)]
pub(super) struct Read {
    text: Arc<str>,
    pub raw: RawConfig,
    pub broken: Broken,
    /// The problems of entries that did not parse.
    pub problems: Vec<Problem>,
}

/// The last text read (see the module docs). Cheap to share.
#[derive(Debug, Default)]
pub struct RawCache(Mutex<Option<Arc<Read>>>);

impl RawCache {
    /// `text` read into its raw sections, from the cache when it holds this
    /// very text; with the document when it was parsed now. `Err` when the
    /// text is not TOML (nothing is kept then).
    pub(super) fn read<'t>(
        &self,
        text: &'t str,
    ) -> Result<(Arc<Read>, Option<Document<'t>>), Problems> {
        if let Some(hit) = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|r| *r.text == *text)
        {
            return Ok((hit.clone(), None));
        }
        let doc = Document::parse(text)?;
        let mut problems = Vec::new();
        let (raw, broken) = doc.raw(&mut problems);
        let read = Arc::new(Read {
            text: Arc::from(text),
            raw,
            broken,
            problems,
        });
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(read.clone());
        Ok((read, Some(doc)))
    }
}

impl RawCache {
    /// Reads `text` into the cache ahead of the first write (a start reads
    /// the file without it). What it finds is found again by that write.
    pub fn warm(&self, text: &str) {
        let _ = self.read(text);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::RawCache;

    #[test]
    fn the_same_text_is_read_once_and_another_text_anew() {
        let cache = RawCache::default();
        let a = "[server]\nlisten = \"127.0.0.1:1\"\n";
        let (first, doc) = cache.read(a).expect("toml");
        assert!(doc.is_some(), "parsed the first time");
        let (again, doc) = cache.read(a).expect("toml");
        assert!(doc.is_none() && Arc::ptr_eq(&first, &again), "a hit");
        let b = "[server]\nlisten = \"127.0.0.1:2\"\n";
        let (other, doc) = cache.read(b).expect("toml");
        assert!(doc.is_some() && !Arc::ptr_eq(&first, &other));
        assert_ne!(first.raw, other.raw);
    }

    #[test]
    fn a_hit_keeps_the_problems_of_entries_that_did_not_parse() {
        let cache = RawCache::default();
        let text = "[server]\nlisten = 5\n";
        let (first, _) = cache.read(text).expect("toml");
        assert!(!first.problems.is_empty());
        let (again, _) = cache.read(text).expect("toml");
        assert_eq!(first.problems, again.problems);
        assert_eq!(first.broken.sections, again.broken.sections);
    }

    #[test]
    fn a_warmed_text_is_a_hit() {
        let cache = RawCache::default();
        cache.warm("[server]\nlisten = \"127.0.0.1:1\"\n");
        let (_, doc) = cache
            .read("[server]\nlisten = \"127.0.0.1:1\"\n")
            .expect("toml");
        assert!(doc.is_none());
    }

    #[test]
    fn text_that_is_not_toml_is_not_kept() {
        let cache = RawCache::default();
        assert!(cache.read("[server").is_err());
        assert!(cache.0.lock().expect("lock").is_none());
        assert!(cache.read("[server").is_err(), "the same problems again");
    }
}

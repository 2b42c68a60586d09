//! `carillon.toml` from text, checked as `carillon config check` does
//! (every phase that does not need the plugins).
//!
//! Invariants: never panics; `from_toml` keeps a config exactly when the
//! check found nothing; every problem has a key path and a message, and a
//! line and column inside the text when it has one; no problem quotes the
//! value of a resolved secret.
//!
//! `${env:…}` resolves every name to the same marker value; inputs naming
//! `${file:…}` are skipped (a fuzzer must not read the machine's files).
#![no_main]

use std::path::Path;

use carillon::config::{Checked, Config, Resolver};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-secret-4f1c9b";

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    if text.contains("file:") || text.contains(SECRET) {
        return;
    }
    let env = |_: &str| Some(SECRET.to_owned());
    let resolver = Resolver {
        env: &env,
        base_dir: Path::new("/nonexistent/carillon-fuzz"),
    };
    let checked = Checked::text(text, &resolver);
    let problems = checked.problems();
    let lines = text.split('\n').count();
    for p in problems.iter() {
        assert!(!p.path.is_empty(), "a problem without a key path: {p:?}");
        assert!(!p.message.is_empty(), "a problem without a message: {p:?}");
        if let Some(line) = p.line {
            assert!((1..=lines).contains(&line), "line {line} of {lines}: {p:?}");
            assert!(
                p.column.is_some_and(|c| c >= 1),
                "a line without a column: {p:?}"
            );
        }
        assert!(
            !p.message.contains(SECRET),
            "a problem shows a secret: {p:?}"
        );
    }
    let shown = problems.to_string();
    assert!(!shown.contains(SECRET), "problems show a secret");
    match Config::from_toml(text, &resolver) {
        Ok(config) => {
            assert!(
                problems.is_empty(),
                "a config kept despite problems: {problems}"
            );
            assert!(
                !format!("{config:?}").contains(SECRET),
                "Debug shows a secret"
            );
        }
        Err(again) => {
            assert!(!problems.is_empty(), "a config refused without problems");
            assert_eq!(again, problems, "two checks of one text disagree");
        }
    }
});

//! What Carillon's fuzz targets share: the size bound every converter of
//! untrusted input must keep, and the checks of a parser's answer.
//!
//! The bound is the point of most targets: a request must not turn into
//! much more memory than it took to send (issue 28: nested Markdown grew
//! 20 KiB into 100 MiB of text; an Alertmanager group copied its group
//! fields into every alert's event).

use carillon::event::{Event, FieldError, ParseError, Parsed};

/// Output may be this many times the input …
pub const AMPLIFICATION: usize = 16;
/// … plus this much (headers, defaults, fixed text).
pub const SLACK: usize = 4096;

/// Panics unless `output` bytes are within the bound for `input` bytes.
pub fn assert_bounded(what: &str, output: usize, input: usize) {
    assert_bounded_with(what, output, input, SLACK);
}

/// [`assert_bounded`] with another constant part: a converter whose
/// product limit allows more than [`SLACK`] (Alertmanager's
/// `ServerLimits::EXPANSION_ALLOWANCE`) is checked against that limit.
pub fn assert_bounded_with(what: &str, output: usize, input: usize, slack: usize) {
    let limit = AMPLIFICATION.saturating_mul(input).saturating_add(slack);
    assert!(
        output <= limit,
        "{what}: {output} bytes out of {input} bytes in (limit {AMPLIFICATION} x input + {slack})"
    );
}

/// The fixed "now" of every parse, so a crash reproduces.
pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_760_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// A JSON pointer (RFC 6901: empty, or `/`-separated segments) or a
/// `header:NAME` location.
pub fn is_location(path: &str) -> bool {
    path.is_empty() || path.starts_with('/') || path.starts_with("header:")
}

fn check_errors(errors: &[FieldError], prefix: Option<&str>) -> usize {
    assert!(!errors.is_empty(), "a rejection without a reason");
    let mut size = 0;
    for e in errors {
        assert!(is_location(&e.path), "not a location: {:?}", e.path);
        assert!(
            !e.message.is_empty(),
            "an error without a message at {:?}",
            e.path
        );
        if let Some(prefix) = prefix {
            let rest = e.path.strip_prefix(prefix);
            assert!(
                rest.is_some_and(|r| r.is_empty() || r.starts_with('/')),
                "a batch item's error {:?} is not under {prefix}",
                e.path
            );
        }
        size += e.path.len() + e.message.len();
    }
    size
}

/// Checks a parser's answer for a body of `input` bytes: every error is
/// located by a JSON pointer (under its item's index in a batch); the
/// events and the errors together stay within the size bound; every event
/// reads back equal from the JSON the outbox stores. Returns the events.
pub fn check_parsed(
    what: &str,
    result: Result<Parsed, ParseError>,
    input: usize,
    item_prefix: &dyn Fn(usize) -> String,
) -> Vec<Event> {
    check_parsed_with(what, result, input, item_prefix, SLACK)
}

/// [`check_parsed`] with the bound's constant part given.
pub fn check_parsed_with(
    what: &str,
    result: Result<Parsed, ParseError>,
    input: usize,
    item_prefix: &dyn Fn(usize) -> String,
    slack: usize,
) -> Vec<Event> {
    let parsed = match result {
        Ok(parsed) => parsed,
        Err(ParseError::Invalid(errors)) => {
            let size = check_errors(&errors, None);
            assert_bounded_with(what, size, input, slack);
            return Vec::new();
        }
        Err(ParseError::Json { line, message, .. }) => {
            assert!(line >= 1, "JSON error line 0");
            assert!(!message.is_empty(), "JSON error without a message");
            return Vec::new();
        }
        Err(ParseError::UnsupportedMediaType { .. }) => return Vec::new(),
        // The limits ingest applies (issue 28 item 2): a refusal, no events.
        Err(ParseError::TooManyAlerts { .. } | ParseError::TooMuchToStore { .. }) => {
            return Vec::new();
        }
    };
    if !parsed.batch {
        assert_eq!(
            parsed.items.len(),
            1,
            "a single event parsed into several items"
        );
    }
    let mut size = 0;
    let mut events = Vec::new();
    for (index, item) in parsed.items.into_iter().enumerate() {
        match item {
            Ok(event) => {
                let json = serde_json::to_vec(&event).expect("an event serializes");
                let back: Event = serde_json::from_slice(&json)
                    .unwrap_or_else(|e| panic!("a stored event does not read back: {e}"));
                assert_eq!(back, event, "a stored event reads back different");
                size += json.len();
                events.push(event);
            }
            Err(errors) => {
                let prefix = parsed.batch.then(|| item_prefix(index));
                size += check_errors(&errors, prefix.as_deref());
            }
        }
    }
    assert_bounded_with(what, size, input, slack);
    events
}

/// Renders each event with its built-in template: an event a parser
/// accepted must never be refused by the gateway's own templates.
pub fn check_builtin_render(events: &[Event]) {
    use std::sync::LazyLock;
    static RENDERER: LazyLock<carillon::render::Renderer> = LazyLock::new(|| {
        carillon::render::Renderer::new(&Default::default(), Default::default())
            .expect("the built-in templates compile")
    });
    for event in events {
        if let Err(e) = RENDERER.render(event, None, None) {
            panic!("a parsed event fails its built-in template: {e}");
        }
    }
}

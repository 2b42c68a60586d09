//! Fitting a message into the channel's byte limits: the body text and the
//! table rows are trimmed (with a visible note) so that the whole JSON request
//! stays under the vendor's limit, never cutting a UTF-8 character.
//!
//! Candidate for the SDK: nothing here is WeCom-specific (the dingtalk plugin carries the same module).

use carillon_sdk::{DeliverError, Table, table, text};

/// The separator between sections of a composed message.
const GAP: &str = "\n\n";

/// Renders a table to text.
pub type RenderTable<'a> = &'a dyn Fn(&Table) -> String;

/// The parts of a message body, in display order. `body` and `table` are
/// trimmed when the whole does not fit; `head` and `tail` are kept.
pub struct Parts<'a> {
    /// The title line (always kept).
    pub head: String,
    /// The main text (trimmed first to a share of the budget).
    pub body: String,
    /// The table and how to render it.
    pub table: Option<(&'a Table, RenderTable<'a>)>,
    /// Fields, link and mention lines (always kept when they fit).
    pub tail: String,
    /// The locale used for the truncation notes.
    pub locale: &'a str,
}

/// The note appended to a trimmed body.
pub fn truncated_note(cut: usize, locale: &str) -> String {
    if locale.starts_with("zh") {
        format!("\n\n……（内容过长，已截断 {cut} 字节）")
    } else {
        format!("\n\n… (message too long: {cut} bytes truncated)")
    }
}

/// Joins the non-empty sections with blank lines.
fn join(sections: &[&str]) -> String {
    sections
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(GAP)
}

impl Parts<'_> {
    /// The composed text in at most `budget` bytes.
    pub fn compose(&self, budget: usize) -> String {
        let table_full = self.table.map(|(t, render)| render(t)).unwrap_or_default();
        let full = join(&[&self.head, &self.body, &table_full, &self.tail]);
        if full.len() <= budget {
            return full;
        }
        let fixed = join(&[&self.head, &self.tail]).len() + 3 * GAP.len();
        let Some(room) = budget.checked_sub(fixed).filter(|r| *r > 0) else {
            // Not even the title and tail fit: trim the whole text.
            return text::fit_bytes_with(&full, budget, |cut| truncated_note(cut, self.locale))
                .text;
        };
        // The table may use half the room, or more when the body is short.
        let table_text = match self.table {
            Some((t, render)) => {
                let share = (room / 2).max(room.saturating_sub(self.body.len()));
                table::fit_rows(t, share, render, |n| table::more_rows_note(n, self.locale))
                    .map(|(text, _)| text)
                    .unwrap_or_default()
            }
            None => String::new(),
        };
        let body_room = room.saturating_sub(table_text.len());
        let body = text::fit_bytes_with(&self.body, body_room, |cut| {
            truncated_note(cut, self.locale)
        })
        .text;
        join(&[&self.head, &body, &table_text, &self.tail])
    }
}

/// Builds a JSON body whose serialized size is at most `max_bytes`:
/// `build(budget)` must produce a body whose trimmable text is at most
/// `budget` bytes; the budget shrinks until JSON escaping and the envelope fit.
pub fn fit_json(
    max_bytes: usize,
    start_budget: usize,
    build: impl Fn(usize) -> serde_json::Value,
) -> Result<Vec<u8>, DeliverError> {
    let mut budget = start_budget;
    for _ in 0..16 {
        let bytes = serde_json::to_vec(&build(budget))
            .map_err(|e| DeliverError::rejected(format!("cannot encode the body: {e}")))?;
        if bytes.len() <= max_bytes {
            return Ok(bytes);
        }
        let excess = bytes.len() - max_bytes;
        if budget == 0 {
            break;
        }
        budget = budget.saturating_sub(excess.max(16));
    }
    Err(DeliverError::rejected(format!(
        "the message cannot be fitted into {max_bytes} bytes"
    )))
}

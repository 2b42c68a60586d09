//! The event-driven writer behind [`convert`](super::convert).

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

use super::escape::{line_start, push_escaped};
use super::{Caps, Dialect};
use crate::text::{MAX_NESTING, TEXT_SLACK, TRUNCATED};

/// A table being written: the header cells, the current row's cells and
/// where the current cell's text starts in the output.
#[derive(Default)]
struct TableState {
    head: Vec<String>,
    row: Vec<String>,
    cell_start: usize,
}

pub(super) struct Writer {
    dialect: Dialect,
    caps: Caps,
    out: String,
    budget: usize,
    lists: Vec<Option<u64>>,
    quotes: usize,
    links: Vec<String>,
    /// At the start of a line, before its quote prefix.
    line_open: bool,
    /// After the line's prefix (and bullet), before any text.
    fresh: bool,
    code_block: bool,
    /// A heading written as a bold line: inner bold markers are left out.
    bold_heading: bool,
    table: Option<TableState>,
}

impl Writer {
    pub(super) fn new(dialect: Dialect, input_len: usize) -> Self {
        Writer {
            dialect,
            caps: dialect.caps(),
            out: String::with_capacity(input_len + input_len / 4),
            budget: input_len.saturating_mul(4).saturating_add(TEXT_SLACK),
            lists: Vec::new(),
            quotes: 0,
            links: Vec::new(),
            line_open: true,
            fresh: true,
            code_block: false,
            bold_heading: false,
            table: None,
        }
    }

    pub(super) fn run(mut self, markdown: &str) -> String {
        let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
        // Adjacent text events (split at backslash escapes) are written as
        // one, so a line start such as `1\.` is seen whole.
        let mut pending = String::new();
        for event in Parser::new_ext(markdown, options) {
            if let Event::Text(t) = &event {
                pending.push_str(t);
                continue;
            }
            if !pending.is_empty() {
                let text = std::mem::take(&mut pending);
                self.event(Event::Text(text.into()));
            }
            self.event(event);
            if self.out.len() > self.budget {
                let cut = crate::text::floor_char_boundary(&self.out, self.budget);
                self.out.truncate(cut);
                self.out.push_str(TRUNCATED);
                return self.out;
            }
        }
        if !pending.is_empty() {
            self.event(Event::Text(pending.into()));
        }
        if self.out.len() > self.budget {
            let cut = crate::text::floor_char_boundary(&self.out, self.budget);
            self.out.truncate(cut);
            self.out.push_str(TRUNCATED);
            return self.out;
        }
        self.out.trim_end().to_owned()
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) => {
                if self.code_block {
                    self.code_text(&t);
                } else {
                    self.text(&t);
                }
            }
            Event::Code(t) => self.code_span(&t),
            Event::SoftBreak | Event::HardBreak => self.newline(),
            Event::Rule => {
                self.end_block();
                self.open_line();
                self.out.push_str(self.caps.rule);
                self.end_block();
            }
            Event::TaskListMarker(done) => {
                self.open_line();
                self.out.push_str(if done { "☑ " } else { "☐ " });
                self.fresh = false;
            }
            // Raw HTML shows as typed, escaped: vendors treat some tags as
            // their own (`<font>`, `<at>`, `<@userid>`), which message text
            // must not forge.
            Event::Html(t) | Event::InlineHtml(t) => self.text(&t),
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        let caps = self.caps;
        match tag {
            Tag::Paragraph => {}
            Tag::Heading { level, .. } => {
                self.end_block();
                self.open_line();
                if caps.headings {
                    self.out.push_str(&"#".repeat(level as usize));
                    self.out.push(' ');
                } else {
                    self.out.push_str(caps.strong);
                    self.bold_heading = true;
                }
                self.fresh = false;
            }
            Tag::BlockQuote(_) => {
                self.end_block();
                self.quotes += 1;
            }
            Tag::CodeBlock(kind) => {
                self.end_block();
                self.code_block = true;
                if caps.code {
                    self.open_line();
                    self.out.push_str("```");
                    if let CodeBlockKind::Fenced(lang) = kind {
                        let lang: String = lang
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+'))
                            .take(32)
                            .collect();
                        self.out.push_str(&lang);
                    }
                    self.newline();
                }
            }
            Tag::List(start) => {
                if self.lists.is_empty() {
                    self.end_block();
                } else {
                    self.end_line();
                }
                self.lists.push(start);
            }
            Tag::Item => {
                self.end_line();
                self.open_line();
                let depth = self.lists.len().saturating_sub(1).min(MAX_NESTING);
                self.out.push_str(&"   ".repeat(depth));
                let bullet = if caps.lists { "- " } else { "• " };
                match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let written = format!("{n}. ");
                        *n = n.saturating_add(1);
                        self.out.push_str(&written);
                    }
                    _ => self.out.push_str(bullet),
                }
                self.fresh = false;
            }
            Tag::Table(_) => {
                self.end_block();
                self.table = Some(TableState::default());
            }
            Tag::TableHead | Tag::TableRow => {}
            Tag::TableCell => {
                let at = self.out.len();
                if let Some(t) = &mut self.table {
                    t.cell_start = at;
                }
                self.fresh = false;
                self.line_open = false;
            }
            Tag::Emphasis => self.marker(caps.emphasis),
            Tag::Strong if !self.bold_heading => self.marker(caps.strong),
            Tag::Strikethrough => self.marker(caps.strike),
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                self.open_line();
                self.fresh = false;
                if caps.links {
                    self.out.push('[');
                }
                self.links.push(dest_url.to_string());
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        let caps = self.caps;
        match tag {
            TagEnd::Paragraph => self.end_paragraph(),
            TagEnd::Heading(_) => {
                if self.bold_heading {
                    self.out.push_str(caps.strong);
                    self.bold_heading = false;
                }
                self.end_paragraph();
            }
            TagEnd::BlockQuote(_) => {
                self.end_block();
                self.quotes = self.quotes.saturating_sub(1);
            }
            TagEnd::CodeBlock => {
                self.code_block = false;
                if caps.code {
                    self.end_line();
                    self.open_line();
                    self.out.push_str("```");
                }
                self.end_paragraph();
            }
            TagEnd::List(_) => {
                self.lists.pop();
                if self.lists.is_empty() {
                    self.end_block();
                }
            }
            TagEnd::Item => self.end_line(),
            TagEnd::TableCell => {
                if let Some(t) = &mut self.table {
                    let cell = self.out.split_off(t.cell_start.min(self.out.len()));
                    t.row.push(cell.trim().to_owned());
                }
            }
            TagEnd::TableHead => {
                if let Some(t) = &mut self.table {
                    t.head = std::mem::take(&mut t.row);
                }
                if caps.tables {
                    self.pipe_head();
                }
            }
            TagEnd::TableRow => self.table_row(),
            TagEnd::Table => {
                self.table = None;
                self.end_block();
            }
            TagEnd::Emphasis => self.marker(caps.emphasis),
            TagEnd::Strong if !self.bold_heading => self.marker(caps.strong),
            TagEnd::Strikethrough => self.marker(caps.strike),
            TagEnd::Link | TagEnd::Image => {
                let Some(url) = self.links.pop() else { return };
                if caps.links {
                    // An empty label (e.g. an image without alt text) shows the URL.
                    if self.out.ends_with('[') {
                        self.text(&url);
                    }
                    self.out.push_str("](");
                    self.out.push_str(&link_target(&url));
                    self.out.push(')');
                } else if !self.out.ends_with(url.as_str()) {
                    self.out.push_str(&format!(" ({url})"));
                }
            }
            _ => {}
        }
    }

    /// Writes an emphasis marker (none when the dialect has none).
    fn marker(&mut self, marker: &str) {
        if !marker.is_empty() {
            self.open_line();
            self.out.push_str(marker);
            self.fresh = false;
        }
    }

    /// Writes the quote prefix when a line is starting.
    fn open_line(&mut self) {
        if self.line_open {
            self.line_open = false;
            self.fresh = true;
            for _ in 0..self.quotes.min(MAX_NESTING) {
                self.out.push_str(self.caps.quote);
            }
        }
    }

    fn newline(&mut self) {
        self.out.push('\n');
        self.line_open = true;
        self.fresh = true;
    }

    fn end_line(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.newline();
        }
    }

    fn end_block(&mut self) {
        self.end_line();
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.newline();
        }
    }

    fn end_paragraph(&mut self) {
        if self.lists.is_empty() {
            self.end_block();
        } else {
            self.end_line();
        }
    }

    /// User text, escaped for the dialect.
    fn text(&mut self, text: &str) {
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                self.newline();
            }
            if line.is_empty() {
                continue;
            }
            self.open_line();
            let mut rest = line;
            if self.fresh
                && let Some((written, len)) = line_start(line, self.dialect)
            {
                self.out.push_str(&written);
                rest = &line[len..];
            }
            self.fresh = false;
            for c in rest.chars() {
                push_escaped(&mut self.out, c, self.dialect);
            }
        }
    }

    /// The text of a code block: as written inside a fence, or as escaped
    /// lines where the dialect has no code blocks.
    fn code_text(&mut self, text: &str) {
        if !self.caps.code {
            return self.text(text);
        }
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                self.newline();
            }
            if !line.is_empty() {
                self.open_line();
                self.out.push_str(line);
            }
        }
    }

    fn code_span(&mut self, code: &str) {
        if !self.caps.code {
            return self.text(code);
        }
        self.open_line();
        self.fresh = false;
        let longest = longest_run(code, '`');
        let fence = "`".repeat(longest + 1);
        let pad = if longest > 0 || code.starts_with('`') || code.ends_with('`') {
            " "
        } else {
            ""
        };
        self.out.push_str(&fence);
        self.out.push_str(pad);
        self.out.push_str(code);
        self.out.push_str(pad);
        self.out.push_str(&fence);
    }

    /// The header and delimiter rows of a pipe table.
    fn pipe_head(&mut self) {
        let Some(t) = &self.table else { return };
        let head = format!("| {} |", t.head.join(" | "));
        let rule = format!("|{}", " --- |".repeat(t.head.len()));
        self.open_line();
        self.out.push_str(&head);
        self.newline();
        self.open_line();
        self.out.push_str(&rule);
        self.newline();
    }

    /// One body row: a pipe row, or `Title: cell, Title: cell` on a line.
    fn table_row(&mut self) {
        let Some(t) = &mut self.table else { return };
        let row = std::mem::take(&mut t.row);
        let line = if self.caps.tables {
            format!("| {} |", row.join(" | "))
        } else {
            let bullet = if self.caps.lists { "- " } else { "• " };
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, cell)| match t.head.get(i).filter(|h| !h.is_empty()) {
                    Some(title) => format!("{title}: {cell}"),
                    None => cell.clone(),
                })
                .collect();
            format!("{bullet}{}", cells.join(", "))
        };
        self.open_line();
        self.out.push_str(&line);
        self.newline();
    }
}

/// The longest run of `c` in `text`.
fn longest_run(text: &str, c: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for ch in text.chars() {
        run = if ch == c { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// A link target that cannot end the `(…)` early: spaces, parentheses and
/// angle brackets percent-encoded.
pub(super) fn link_target(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

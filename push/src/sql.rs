//! A push task's SQL: one read-only statement whose `${name}` parameters
//! are bound as values, never spliced into the text.
//!
//! [`Statement::parse`] reads the text the way the driver's server will
//! (string literals, quoted identifiers, comments, PostgreSQL's
//! dollar-quoted strings, MySQL's backslash escapes), so that a `${name}`
//! or a `;` inside a literal or a comment is not mistaken for one outside.
//! It refuses, each with its reason and byte offset: a second statement,
//! a statement that does not start by reading (`SELECT`, `WITH`, `VALUES`,
//! `TABLE`, `SHOW`, `EXPLAIN`, `DESCRIBE`), a parameter inside a string
//! literal (it would be text, not a bound value), and the driver's own
//! placeholders (`$1`, `?`), which would bypass the names. The read-only
//! check here is for a clear early error; the run itself happens in a
//! read-only transaction (or a read-only SQLite connection), which is what
//! enforces it.

use super::source::Driver;

/// The most parameters one statement may have.
pub const MAX_PARAMS: usize = 256;
/// The longest statement, in bytes.
pub const MAX_SQL_BYTES: usize = 64 * 1024;

/// The statements a push may run: they read.
const READING: &[&str] = &[
    "select", "with", "values", "table", "show", "explain", "describe", "desc",
];

/// Why a statement is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// Nothing to run.
    #[error("the SQL is empty")]
    Empty,
    /// Longer than [`MAX_SQL_BYTES`].
    #[error("the SQL is {0} bytes; at most {MAX_SQL_BYTES}")]
    TooLong(usize),
    /// More than one statement.
    #[error("only one statement may run: a second one starts after the `;` at byte {0}")]
    Several(usize),
    /// The statement does not read.
    #[error(
        "a push runs only reading statements (SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN); this one starts with {0:?}"
    )]
    NotReading(String),
    /// A literal, identifier or comment is not closed.
    #[error("{what} opened at byte {at} is not closed")]
    Unclosed {
        /// `a string literal`, `a comment`, ….
        what: &'static str,
        /// Where it opened.
        at: usize,
    },
    /// `${` without a name and `}`.
    #[error(
        "the parameter at byte {0} is malformed: write ${{name}} with letters, digits, spaces and _ - + . : /"
    )]
    BadParam(usize),
    /// `'…${x}…'`: the parameter would be text inside the literal.
    #[error(
        "the parameter ${{{name}}} at byte {at} is inside a quoted literal; write it without quotes: it is bound as a value"
    )]
    ParamInLiteral {
        /// Its name.
        name: String,
        /// Where.
        at: usize,
    },
    /// `$1` or `?` written by hand.
    #[error("{0:?} at byte {1} is a placeholder of the driver; name parameters as ${{name}}")]
    DriverPlaceholder(String, usize),
    /// More than [`MAX_PARAMS`].
    #[error("more than {MAX_PARAMS} parameters")]
    TooManyParams,
}

/// One piece of the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Param(String),
}

/// A checked statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    driver: Driver,
    pieces: Vec<Piece>,
}

impl Statement {
    /// Checks `sql` for `driver` (see the module doc).
    pub fn parse(sql: &str, driver: Driver) -> Result<Statement, SqlError> {
        if sql.len() > MAX_SQL_BYTES {
            return Err(SqlError::TooLong(sql.len()));
        }
        let pieces = Lexer::new(sql, driver).run()?;
        let s = Statement { driver, pieces };
        if s.params().len() > MAX_PARAMS {
            return Err(SqlError::TooManyParams);
        }
        let first = first_word(&s.text_only());
        match first {
            None => Err(SqlError::Empty),
            Some(w) if READING.contains(&w.to_ascii_lowercase().as_str()) => Ok(s),
            Some(w) => Err(SqlError::NotReading(w)),
        }
    }

    /// The parameters' names, each once, in order of first use.
    pub fn params(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.pieces {
            if let Piece::Param(n) = p
                && !out.contains(&n.as_str())
            {
                out.push(n);
            }
        }
        out
    }

    /// The driver it was checked for.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// The text with each parameter replaced by the driver's placeholder,
    /// and the parameter each bind position takes (`$n` is reused for a
    /// name used twice in PostgreSQL; `?` binds once per use).
    pub fn to_driver(&self) -> (String, Vec<String>) {
        let mut sql = String::new();
        let mut binds: Vec<String> = Vec::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => sql.push_str(t),
                Piece::Param(name) => match self.driver {
                    Driver::Postgres => {
                        let n = match binds.iter().position(|b| b == name) {
                            Some(i) => i + 1,
                            None => {
                                binds.push(name.clone());
                                binds.len()
                            }
                        };
                        sql.push('$');
                        sql.push_str(&n.to_string());
                    }
                    Driver::Sqlite | Driver::MySql => {
                        sql.push('?');
                        binds.push(name.clone());
                    }
                },
            }
        }
        (sql, binds)
    }

    fn text_only(&self) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Param(_) => " 0 ",
            })
            .collect()
    }
}

/// The statement's first word, past blanks, comments and `(`.
fn first_word(text: &str) -> Option<String> {
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix('#') {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if word.is_empty() {
        // A statement that is only a `;` or starts with a symbol.
        return rest.chars().next().map(|c| c.to_string());
    }
    Some(word)
}

struct Lexer<'a> {
    sql: &'a str,
    bytes: &'a [u8],
    driver: Driver,
    at: usize,
    pieces: Vec<Piece>,
    text: String,
}

impl<'a> Lexer<'a> {
    fn new(sql: &'a str, driver: Driver) -> Self {
        Lexer {
            sql,
            bytes: sql.as_bytes(),
            driver,
            at: 0,
            pieces: Vec::new(),
            text: String::new(),
        }
    }

    fn run(mut self) -> Result<Vec<Piece>, SqlError> {
        while self.at < self.bytes.len() {
            let start = self.at;
            match self.bytes[self.at] {
                b'\'' => self.quoted(b'\'', "a string literal", true)?,
                b'"' => self.quoted(b'"', "a quoted identifier", self.driver == Driver::MySql)?,
                b'`' if self.driver == Driver::MySql => {
                    self.quoted(b'`', "a quoted identifier", false)?;
                }
                b'-' if self.peek(1) == Some(b'-') => self.line_comment(),
                b'#' if self.driver == Driver::MySql => self.line_comment(),
                b'/' if self.peek(1) == Some(b'*') => self.block_comment()?,
                b'$' if self.peek(1) == Some(b'{') => self.param()?,
                b'$' if self.peek(1).is_some_and(|b| b.is_ascii_digit()) => {
                    let end = self.digits_end(self.at + 1);
                    return Err(SqlError::DriverPlaceholder(
                        self.sql[start..end].to_owned(),
                        start,
                    ));
                }
                b'$' if self.driver == Driver::Postgres => self.dollar_quoted()?,
                b'?' if self.driver != Driver::Postgres => {
                    return Err(SqlError::DriverPlaceholder("?".into(), start));
                }
                b';' => {
                    self.at += 1;
                    let rest = &self.sql[self.at..];
                    if first_word(rest).is_some() {
                        return Err(SqlError::Several(start));
                    }
                    // A trailing `;` (and comments after it) is dropped.
                    self.at = self.bytes.len();
                }
                _ => self.char_through(),
            }
        }
        if !self.text.is_empty() {
            self.pieces
                .push(Piece::Text(std::mem::take(&mut self.text)));
        }
        Ok(self.pieces)
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.at + ahead).copied()
    }

    fn digits_end(&self, mut i: usize) -> usize {
        while i < self.bytes.len() && self.bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    }

    /// Copies one character (whole, if multi-byte).
    fn char_through(&mut self) {
        let c = self.sql[self.at..].chars().next().unwrap_or(' ');
        self.text.push(c);
        self.at += c.len_utf8();
    }

    /// Copies `sql[from..to]` to the text.
    fn copy(&mut self, from: usize, to: usize) {
        self.text.push_str(&self.sql[from..to]);
    }

    /// A literal or identifier closed by `quote` (doubled to escape; a
    /// backslash escapes too where `backslash`). A `${` inside is refused.
    fn quoted(&mut self, quote: u8, what: &'static str, backslash: bool) -> Result<(), SqlError> {
        let start = self.at;
        let backslash = backslash && self.driver == Driver::MySql;
        let mut i = start + 1;
        loop {
            match self.bytes.get(i) {
                None => return Err(SqlError::Unclosed { what, at: start }),
                Some(b'\\') if backslash => i += 2,
                Some(&b) if b == quote => {
                    if self.bytes.get(i + 1) == Some(&quote) {
                        i += 2;
                    } else {
                        i += 1;
                        break;
                    }
                }
                Some(b'$') if self.bytes.get(i + 1) == Some(&b'{') => {
                    let name = self.sql[i + 2..]
                        .split('}')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    return Err(SqlError::ParamInLiteral { name, at: i });
                }
                Some(_) => i += 1,
            }
        }
        let end = i.min(self.bytes.len());
        self.copy(start, end);
        self.at = end;
        Ok(())
    }

    fn line_comment(&mut self) {
        let end = self.sql[self.at..]
            .find('\n')
            .map_or(self.bytes.len(), |n| self.at + n);
        self.copy(self.at, end);
        self.at = end;
    }

    fn block_comment(&mut self) -> Result<(), SqlError> {
        let start = self.at;
        let Some(n) = self.sql[start + 2..].find("*/") else {
            return Err(SqlError::Unclosed {
                what: "a comment",
                at: start,
            });
        };
        let end = start + 2 + n + 2;
        self.copy(start, end);
        self.at = end;
        Ok(())
    }

    /// `$tag$ … $tag$` (PostgreSQL); a lone `$` is copied.
    fn dollar_quoted(&mut self) -> Result<(), SqlError> {
        let start = self.at;
        let tag_end = self.sql[start + 1..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map(|n| start + 1 + n);
        match tag_end {
            Some(t) if self.bytes[t] == b'$' => {
                let tag = &self.sql[start..=t];
                let Some(n) = self.sql[t + 1..].find(tag) else {
                    return Err(SqlError::Unclosed {
                        what: "a dollar-quoted string",
                        at: start,
                    });
                };
                let end = t + 1 + n + tag.len();
                if let Some(p) = self.sql[t + 1..t + 1 + n].find("${") {
                    let at = t + 1 + p;
                    let name = self.sql[at + 2..]
                        .split('}')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    return Err(SqlError::ParamInLiteral { name, at });
                }
                self.copy(start, end);
                self.at = end;
            }
            _ => self.char_through(),
        }
        Ok(())
    }

    fn param(&mut self) -> Result<(), SqlError> {
        let start = self.at;
        let body = &self.sql[start + 2..];
        let Some(close) = body.find('}') else {
            return Err(SqlError::BadParam(start));
        };
        let name = &body[..close];
        // Time expressions (`${yyyy-mm-dd hh24:mi}`, `${yyyy/mm/dd-1}`)
        // are names too: the host gives them their value.
        let name = name.trim();
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.' | ':' | '/' | ' ')
            });
        if !ok {
            return Err(SqlError::BadParam(start));
        }
        if !self.text.is_empty() {
            self.pieces
                .push(Piece::Text(std::mem::take(&mut self.text)));
        }
        self.pieces.push(Piece::Param(name.to_owned()));
        self.at = start + 2 + close + 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(sql: &str) -> Result<Statement, SqlError> {
        Statement::parse(sql, Driver::Postgres)
    }

    fn my(sql: &str) -> Result<Statement, SqlError> {
        Statement::parse(sql, Driver::MySql)
    }

    #[test]
    fn parameters_become_placeholders_of_each_driver() {
        let sql = "SELECT region, sum(amount) FROM orders WHERE day = ${day} AND region <> ${skip} OR day = ${day};";
        let s = pg(sql).unwrap();
        assert_eq!(s.params(), ["day", "skip"]);
        let t = pg("SELECT ${yyyy-mm-dd hh24:mi}, ${ yyyy/mm/dd-1 }").unwrap();
        assert_eq!(t.params(), ["yyyy-mm-dd hh24:mi", "yyyy/mm/dd-1"]);
        let (text, binds) = s.to_driver();
        assert_eq!(
            text,
            "SELECT region, sum(amount) FROM orders WHERE day = $1 AND region <> $2 OR day = $1"
        );
        assert_eq!(binds, ["day", "skip"]);
        let (text, binds) = my(sql).unwrap().to_driver();
        assert!(
            text.ends_with("day = ? AND region <> ? OR day = ?"),
            "{text}"
        );
        assert_eq!(binds, ["day", "skip", "day"]);
    }

    #[test]
    fn literals_comments_and_quotes_are_read_as_the_server_reads_them() {
        // `;` and `--` inside literals, a comment holding ${x}, identifiers.
        let s = pg("SELECT 'a;b', \"odd;col\", $$x;${y}$$ -- ${z}; DROP\n FROM t").unwrap_err();
        assert!(
            matches!(s, SqlError::ParamInLiteral { ref name, .. } if name == "y"),
            "{s}"
        );
        let s = pg("SELECT 'a;b', \"odd;col\", $q$x;y$q$ -- ${z}; DROP\n FROM t WHERE a = ${a}")
            .unwrap();
        assert_eq!(s.params(), ["a"]);
        let s =
            my("SELECT 'it\\'s', `weird``col` /* ${c} ; */ FROM t # ; x\n WHERE b = ${b}").unwrap();
        assert_eq!(s.params(), ["b"]);
        // PostgreSQL does not treat \ as an escape: 'a\' ends the literal.
        assert!(pg("SELECT 'a\\' , ${x}").is_ok());
    }

    #[test]
    fn every_refusal_names_its_reason() {
        type Case = (&'static str, fn(&SqlError) -> bool);
        let cases: &[Case] = &[
            ("", |e| *e == SqlError::Empty),
            ("  -- nothing\n", |e| *e == SqlError::Empty),
            ("SELECT 1; SELECT 2", |e| matches!(e, SqlError::Several(8))),
            ("SELECT 1; DROP TABLE t", |e| {
                matches!(e, SqlError::Several(_))
            }),
            (
                "DELETE FROM t",
                |e| matches!(e, SqlError::NotReading(w) if w == "DELETE"),
            ),
            ("update t set a = 1", |e| {
                matches!(e, SqlError::NotReading(_))
            }),
            ("SELECT 'open", |e| matches!(e, SqlError::Unclosed { .. })),
            ("SELECT 1 /* open", |e| {
                matches!(e, SqlError::Unclosed { .. })
            }),
            ("SELECT ${}", |e| matches!(e, SqlError::BadParam(7))),
            ("SELECT ${a;b}", |e| matches!(e, SqlError::BadParam(_))),
            ("SELECT ${open", |e| matches!(e, SqlError::BadParam(_))),
            ("SELECT '${day}'", |e| {
                matches!(e, SqlError::ParamInLiteral { .. })
            }),
            (
                "SELECT $1",
                |e| matches!(e, SqlError::DriverPlaceholder(p, 7) if p == "$1"),
            ),
        ];
        for (sql, ok) in cases {
            let e = pg(sql).unwrap_err();
            assert!(ok(&e), "{sql:?}: {e}");
        }
        assert!(matches!(
            my("SELECT ?"),
            Err(SqlError::DriverPlaceholder(_, _))
        ));
        // In PostgreSQL `?` is an operator (jsonb), not a placeholder.
        assert!(pg("SELECT doc ? 'key' FROM t").is_ok());
        assert!(pg("WITH x AS (SELECT 1) SELECT * FROM x").is_ok());
        assert!(pg("(SELECT 1) UNION (SELECT 2)").is_ok());
        let many: String = (0..=MAX_PARAMS).map(|i| format!(" ${{p{i}}}")).collect();
        assert_eq!(pg(&format!("SELECT{many}")), Err(SqlError::TooManyParams));
    }
}

//! Mailboxes: `local@domain` or `Display Name <local@domain>`, checked
//! strictly enough that what passes is a valid RFC 5321 path and a valid
//! RFC 5322 header address once written by [`Mailbox::header_tokens`].
//!
//! Only ASCII addresses are accepted: internationalized addresses need the
//! SMTPUTF8 extension, which Carillon does not use. A non-ASCII domain can be
//! written in its `xn--` form. Display names may be any Unicode text; they
//! are quoted or encoded (RFC 2047) when written.

use crate::mime;

/// A parsed mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, if any (unquoted, unescaped).
    pub name: Option<String>,
    /// `local@domain`.
    pub address: String,
}

impl Mailbox {
    /// The domain part of the address.
    pub fn domain(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map_or("", |(_, domain)| domain)
    }

    /// The mailbox as header tokens (to be joined by spaces and folded
    /// between tokens): the display name quoted or encoded, then `<addr>`.
    pub fn header_tokens(&self) -> Vec<String> {
        let address = format!("<{}>", self.address);
        let Some(name) = self.name.as_deref().filter(|n| !n.is_empty()) else {
            return vec![self.address.clone()];
        };
        let mut tokens = if !name.is_ascii() || name.len() > 60 {
            mime::encoded_words(name)
        } else if name
            .split(' ')
            .all(|w| !w.is_empty() && w.bytes().all(is_atext))
        {
            name.split(' ').map(str::to_owned).collect()
        } else {
            vec![quote(name)]
        };
        tokens.push(address);
        tokens
    }
}

/// A quoted-string with `\` and `"` escaped.
fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// RFC 5322 `atext`.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// Parses `addr` or `Name <addr>` (the name may be in double quotes).
pub fn parse_mailbox(input: &str) -> Result<Mailbox, String> {
    let input = input.trim();
    if input.chars().any(|c| c.is_control()) {
        return Err("an address must not contain control characters or line breaks".into());
    }
    let (name, address) = match input.rfind('<') {
        Some(open) => {
            let Some(inner) = input[open + 1..].strip_suffix('>') else {
                return Err(format!(
                    "{input:?}: expected Name <address> with the address last"
                ));
            };
            let name = input[..open].trim();
            let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                Some(quoted) => unquote(quoted),
                None => name.to_owned(),
            };
            if name.contains(['<', '>']) {
                return Err(format!("{input:?}: the name must not contain < or >"));
            }
            if name.chars().count() > 200 {
                return Err("the display name is longer than 200 characters".into());
            }
            ((!name.is_empty()).then_some(name), inner.trim())
        }
        None if input.contains('>') => {
            return Err(format!("{input:?}: unbalanced < >"));
        }
        None => (None, input),
    };
    check_address(address)?;
    Ok(Mailbox {
        name,
        address: address.to_owned(),
    })
}

fn unquote(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut escaped = false;
    for c in quoted.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// Checks `local@domain`: a dot-atom local part of at most 64 characters and
/// a domain of letter-digit-hyphen labels (at most 253 characters).
pub fn check_address(address: &str) -> Result<(), String> {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(format!("{address:?} is not an email address (no @)"));
    };
    if !address.is_ascii() {
        return Err(format!(
            "{address:?}: internationalized addresses are not supported; write the domain in its xn-- form"
        ));
    }
    let dot_atom = !local.is_empty()
        && local.len() <= 64
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(is_atext));
    if !dot_atom {
        return Err(format!(
            "{address:?}: the part before @ must be letters, digits and !#$%&'*+-/=?^_`{{|}}~, with single dots between them (at most 64)"
        ));
    }
    let labels_ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !labels_ok {
        return Err(format!(
            "{address:?}: the domain must be a host name such as example.com"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_parse() {
        let m = parse_mailbox("alerts@example.com").unwrap();
        assert_eq!((m.name, m.address.as_str()), (None, "alerts@example.com"));
        let m = parse_mailbox(" Carillon Alerts <alerts@example.com> ").unwrap();
        assert_eq!(m.name.as_deref(), Some("Carillon Alerts"));
        let m = parse_mailbox(r#""Ops, \"Night\"" <ops@example.com>"#).unwrap();
        assert_eq!(m.name.as_deref(), Some(r#"Ops, "Night""#));
        assert_eq!(m.domain(), "example.com");
        let m = parse_mailbox("告警中心 <alerts@example.cn>").unwrap();
        assert_eq!(m.name.as_deref(), Some("告警中心"));
        assert!(parse_mailbox("first.last+tag@sub.example.co.uk").is_ok());
        assert!(parse_mailbox("relay@localhost").is_ok());
    }

    #[test]
    fn bad_mailboxes_say_why() {
        for bad in [
            "",
            "no-at.example.com",
            "a@",
            "@example.com",
            "a..b@example.com",
            ".a@example.com",
            "a b@example.com",
            "a@exa mple.com",
            "a@-example.com",
            "a@example..com",
            "用户@example.com",
            "Name <a@example.com",
            "Name a@example.com>",
            "a@example.com\r\nBcc: x@evil.com",
            "Evil <x@y.com> <a@example.com>",
        ] {
            assert!(parse_mailbox(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn names_are_quoted_or_encoded() {
        let t = |s: &str| parse_mailbox(s).unwrap().header_tokens().join(" ");
        assert_eq!(t("a@example.com"), "a@example.com");
        assert_eq!(
            t("Carillon Alerts <a@example.com>"),
            "Carillon Alerts <a@example.com>"
        );
        assert_eq!(
            t("Ops, Night <a@example.com>"),
            r#""Ops, Night" <a@example.com>"#
        );
        assert_eq!(
            t(r#""Say \"hi\"" <a@example.com>"#),
            r#""Say \"hi\"" <a@example.com>"#
        );
        assert_eq!(
            t("告警 <a@example.com>"),
            "=?UTF-8?B?5ZGK6K2m?= <a@example.com>"
        );
    }
}

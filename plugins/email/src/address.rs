//! Mailboxes: `local@domain` or `Display Name <local@domain>`, checked
//! strictly enough that what passes is a valid RFC 5321 path and a valid
//! RFC 5322 header address once written by [`Mailbox::header_tokens`].
//!
//! A non-ASCII domain (`李伟@例子.公司`'s `例子.公司`) is converted to its
//! `xn--` form (IDNA, UTS #46), which every server accepts, and the mail
//! goes to that. A non-ASCII local part needs the SMTPUTF8 extension (RFC
//! 6531), which Carillon does not send: such an address is refused at the
//! config check, saying so. Display names may be any Unicode text; they are
//! quoted or encoded (RFC 2047) by lettre when written.

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

    /// The mailbox for lettre's message builder, which quotes or encodes
    /// the display name when it writes the header.
    pub fn to_lettre(&self) -> Result<lettre::message::Mailbox, String> {
        let address: lettre::Address = self
            .address
            .parse()
            .map_err(|e| format!("{:?}: {e}", self.address))?;
        let name = self.name.clone().filter(|n| !n.is_empty());
        Ok(lettre::message::Mailbox::new(name, address))
    }
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
    let address = ascii_address(address)?;
    check_address(&address)?;
    Ok(Mailbox { name, address })
}

/// `address` with its domain in `xn--` form; a non-ASCII local part is
/// refused (it needs SMTPUTF8).
pub fn ascii_address(address: &str) -> Result<String, String> {
    if address.is_ascii() {
        return Ok(address.to_owned());
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(format!("{address:?} is not an email address (no @)"));
    };
    if !local.is_ascii() {
        return Err(format!(
            "{address:?}: the part before @ is not ASCII; such a mailbox needs SMTPUTF8 (RFC 6531), which Carillon does not send. Use an ASCII alias of the mailbox"
        ));
    }
    let domain = idna::domain_to_ascii(domain).map_err(|_| {
        format!("{address:?}: the domain is not a valid internationalized domain name")
    })?;
    Ok(format!("{local}@{domain}"))
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
            "{address:?}: not ASCII (see `ascii_address`); write the domain in its xn-- form"
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
    fn a_non_ascii_domain_is_sent_in_its_xn_form_and_a_non_ascii_local_part_is_refused() {
        let m = parse_mailbox("Ops <ops@Bücher.example>").unwrap();
        assert_eq!(m.address, "ops@xn--bcher-kva.example");
        assert_eq!(m.name.as_deref(), Some("Ops"));
        let m = parse_mailbox("li.wei@例子.公司").unwrap();
        assert!(
            m.address.is_ascii() && m.address.starts_with("li.wei@xn--"),
            "{m:?}"
        );
        let e = parse_mailbox("用户@example.com").unwrap_err();
        assert!(e.contains("SMTPUTF8"), "{e}");
        let e = parse_mailbox("a@exa\u{200b}mple..公司").unwrap_err();
        assert!(!e.is_empty());
    }

    /// What lettre writes means the same mailbox: the name and address a
    /// mail client reads back (the spelling, quoted or encoded, is lettre's).
    #[test]
    fn names_are_quoted_or_encoded() {
        let read_back = |s: &str| {
            let mailbox = parse_mailbox(s).unwrap().to_lettre().unwrap();
            let mut headers = lettre::message::header::Headers::new();
            headers.set(lettre::message::header::From::from(
                lettre::message::Mailboxes::from(mailbox),
            ));
            let raw = format!("{headers}\r\nbody\r\n");
            assert!(raw.is_ascii(), "{raw}");
            let parsed = mail_parser::MessageParser::default()
                .parse(raw.as_bytes())
                .unwrap();
            let from = parsed.from().unwrap().first().unwrap();
            (
                from.name().map(str::to_owned),
                from.address().unwrap().to_owned(),
            )
        };
        let a = "a@example.com".to_owned();
        assert_eq!(read_back("a@example.com"), (None, a.clone()));
        for name in ["Carillon Alerts", "Ops, Night", r#"Say "hi""#, "告警"] {
            let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
            assert_eq!(
                read_back(&format!("\"{quoted}\" <a@example.com>")),
                (Some(name.to_owned()), a.clone()),
                "{name}"
            );
        }
    }
}

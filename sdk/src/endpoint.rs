//! Checking a destination's endpoint URL (a `webhook` or `url` field) before
//! anything is sent, so a typo is reported by `validate` with its path rather
//! than as a failed delivery.
//!
//! This is a deliberately small reader, not a URL library: it finds the
//! scheme, host, port, path and query of an absolute `http`/`https` URL, which
//! is what a plugin checks. The gateway parses the URL fully and checks the
//! host against the plugin's grants when it sends.

use std::fmt;

use crate::ConfigIssue;

/// Why a string is not a usable endpoint URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlProblem {
    /// It does not start with `http://` or `https://`.
    NotHttp,
    /// The authority is empty, has user info or spaces, or a port that is
    /// not a number.
    NoHost,
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlProblem::NotHttp => "expected an absolute http:// or https:// URL with a host",
            UrlProblem::NoHost => "the URL has no valid host",
        })
    }
}

impl std::error::Error for UrlProblem {}

/// The parts of an absolute http(s) URL a plugin checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl<'a> {
    /// The host in lower case; an IPv6 literal keeps its brackets.
    pub host: String,
    /// The explicit port, if any.
    pub port: Option<u16>,
    /// The path, possibly empty.
    pub path: &'a str,
    /// The query without `?` and without the fragment, possibly empty.
    pub query: &'a str,
}

impl<'a> HttpUrl<'a> {
    /// Reads `url`, or says why it is not an absolute http(s) URL with a host.
    pub fn parse(url: &'a str) -> Result<Self, UrlProblem> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or(UrlProblem::NotHttp)?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        if authority.contains(['@', ' ']) {
            return Err(UrlProblem::NoHost);
        }
        let (host, port) = split_port(authority).ok_or(UrlProblem::NoHost)?;
        if host.is_empty() {
            return Err(UrlProblem::NoHost);
        }
        let rest = rest.split('#').next().unwrap_or("");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        Ok(HttpUrl {
            host: host.to_ascii_lowercase(),
            port,
            path,
            query,
        })
    }

    /// The query's `name=value` pairs, as written (not percent-decoded).
    pub fn query_pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
    }

    /// The first non-empty value of query parameter `name`.
    pub fn query_value(&self, name: &str) -> Option<&'a str> {
        self.query_pairs()
            .find(|(n, v)| *n == name && !v.is_empty())
            .map(|(_, v)| v)
    }
}

/// Splits `host[:port]` (or `[v6][:port]`); `None` when the port is not a number.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')? + 1;
        let (host, rest) = authority.split_at(close);
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    match port {
        Some(port) => Some((host, Some(port.parse().ok()?))),
        None => Some((host, None)),
    }
}

/// Reads `url`, or says why not; a URL without a scheme is answered with
/// `example`, the shape the vendor's URLs have.
pub fn read<'a>(url: &'a str, example: &str) -> Result<HttpUrl<'a>, String> {
    HttpUrl::parse(url).map_err(|problem| match problem {
        UrlProblem::NotHttp => format!("{problem}, e.g. {example}"),
        UrlProblem::NoHost => problem.to_string(),
    })
}

/// Reads the endpoint at `pointer`, or returns the issue that reports it.
pub fn check<'a>(pointer: &str, url: &'a str) -> Result<HttpUrl<'a>, ConfigIssue> {
    HttpUrl::parse(url).map_err(|problem| ConfigIssue::new(pointer, problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_split_into_parts() {
        let url = HttpUrl::parse("https://Open.Feishu.cn:8443/open-apis/bot?a=1&key=k#frag");
        assert_eq!(
            url,
            Ok(HttpUrl {
                host: "open.feishu.cn".into(),
                port: Some(8443),
                path: "/open-apis/bot",
                query: "a=1&key=k",
            })
        );
        let url = HttpUrl::parse("http://[::1]:9000?key=").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path),
            ("[::1]", Some(9000), "")
        );
        assert_eq!(url.query_value("key"), None);
        let url = HttpUrl::parse("http://h/p?a&b=2&b=3").unwrap();
        assert_eq!(
            url.query_pairs().collect::<Vec<_>>(),
            [("a", ""), ("b", "2"), ("b", "3")]
        );
        assert_eq!(url.query_value("b"), Some("2"));
    }

    #[test]
    fn unusable_urls_say_why() {
        for (url, problem) in [
            ("ftp://x", UrlProblem::NotHttp),
            ("oapi.dingtalk.com/robot", UrlProblem::NotHttp),
            ("https://", UrlProblem::NoHost),
            ("https:///path", UrlProblem::NoHost),
            ("https://user@host/", UrlProblem::NoHost),
            ("https://a host/", UrlProblem::NoHost),
            ("https://host:port/", UrlProblem::NoHost),
            ("https://[::1/", UrlProblem::NoHost),
            ("https://:80/", UrlProblem::NoHost),
        ] {
            assert_eq!(HttpUrl::parse(url), Err(problem), "{url}");
        }
        let issue = check("/webhook", "ftp://x").unwrap_err();
        assert_eq!(
            read("x.example/hook", "https://x.example/hook?key=…"),
            Err("expected an absolute http:// or https:// URL with a host, e.g. https://x.example/hook?key=…".into())
        );
        assert_eq!(issue.path, "/webhook");
    }
}

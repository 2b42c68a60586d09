//! The soak's plugin upgrades: every few minutes a new build of the
//! webhook plugin is installed as the README says (written under a
//! temporary name, renamed over `plugins/webhook.wasm`), then
//! `POST /v1/plugins/reload` makes the gateway take it at once (the suite
//! runs with `watch_plugins = false`).
//!
//! Each build is the built-in webhook component with a custom section
//! holding a counter appended: the same code, but a new file, a new
//! SHA-256 and a new compile each time, so the gateway really swaps
//! builds (and must free the old ones) rather than recognising a file it
//! already has.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde::Serialize;

use crate::driver::ADMIN_TOKEN;

/// The file every build is installed as.
pub const FILE: &str = "webhook.wasm";

/// One upgrade.
#[derive(Debug, Clone, Serialize)]
pub struct Reload {
    /// Seconds since the load started.
    pub at_secs: f64,
    /// Which build (1, 2, …).
    pub build: u64,
    /// Whether the new build serves afterwards.
    pub ok: bool,
    /// Rename → the reload's answer (includes compiling the build).
    pub took_ms: f64,
    /// The SHA-256 the gateway reports for the file.
    pub sha256: Option<String>,
    /// What went wrong, when something did.
    pub error: Option<String>,
}

/// Installs builds into one gateway's plugin directory.
#[derive(Debug)]
pub struct Installer {
    dir: PathBuf,
    reload_url: String,
    http: reqwest::Client,
    base: &'static [u8],
    build: u64,
    last_sha: Option<String>,
}

impl Installer {
    /// An installer for the plugin directory `dir` of the gateway whose
    /// `POST /v1/plugins/reload` is at `reload_url`.
    pub fn new(dir: &Path, reload_url: String) -> anyhow::Result<Installer> {
        let base = carillon_builtin::builtin("carillon-plugin-webhook")
            .ok_or_else(|| anyhow!("the webhook plugin is not built in"))?;
        Ok(Installer {
            dir: dir.to_owned(),
            reload_url,
            // Compiling a build on a busy machine can take a while.
            // Reloads come minutes apart, past the gateway's idle timeout:
            // never reuse a connection the gateway may be closing.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .pool_idle_timeout(Duration::from_secs(20))
                .build()?,
            base,
            build: 0,
            last_sha: None,
        })
    }

    /// Installs the next build and reloads; `at_secs` is stamped on the
    /// record. Errors are recorded, not returned: the soak goes on.
    pub async fn next(&mut self, at_secs: f64) -> Reload {
        self.build += 1;
        let started = Instant::now();
        let outcome = self.install().await;
        let took_ms = started.elapsed().as_secs_f64() * 1e3;
        let (ok, sha256, error) = match outcome {
            Ok(sha) => {
                let fresh = self.last_sha.as_ref() != Some(&sha);
                self.last_sha = Some(sha.clone());
                let error = (!fresh).then(|| "the SHA-256 did not change".to_owned());
                (fresh, Some(sha), error)
            }
            Err(e) => (false, None, Some(format!("{e:#}"))),
        };
        Reload {
            at_secs,
            build: self.build,
            ok,
            took_ms,
            sha256,
            error,
        }
    }

    /// Writes, renames, reloads; the serving file's SHA-256.
    async fn install(&self) -> anyhow::Result<String> {
        let mut wasm = self.base.to_vec();
        wasm.extend(custom_section(
            "carillon-bench-soak",
            format!("build {}", self.build).as_bytes(),
        ));
        let tmp = self.dir.join(format!(".{FILE}.tmp"));
        let path = self.dir.join(FILE);
        tokio::fs::write(&tmp, &wasm)
            .await
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .with_context(|| format!("cannot rename over {}", path.display()))?;
        let body = self
            .http
            .post(&self.reload_url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("POST /v1/plugins/reload")?
            .bytes()
            .await
            .context("POST /v1/plugins/reload")?;
        let answer: serde_json::Value =
            serde_json::from_slice(&body).context("POST /v1/plugins/reload: not JSON")?;
        serving_sha(&answer)
    }
}

/// The SHA-256 of [`FILE`] in a `GET /v1/plugins` body, if it serves.
fn serving_sha(list: &serde_json::Value) -> anyhow::Result<String> {
    let file = list["files"]
        .as_array()
        .and_then(|files| files.iter().find(|f| f["file"] == FILE))
        .ok_or_else(|| anyhow!("{FILE} is not listed"))?;
    if file["status"] != "serving" || !file["error"].is_null() {
        bail!(
            "{FILE} is {} ({})",
            file["status"],
            file["error"].as_str().unwrap_or("no error")
        );
    }
    file["sha256"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{FILE} has no SHA-256"))
}

/// A WebAssembly custom section (id 0): allowed anywhere in a module or a
/// component and ignored by the runtime.
fn custom_section(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut content = leb128(name.len());
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(payload);
    let mut section = vec![0];
    section.extend(leb128(content.len()));
    section.extend(content);
    section
}

/// Unsigned LEB128, the encoding of every size in the binary format.
fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_custom_sections() {
        assert_eq!(leb128(0), [0]);
        assert_eq!(leb128(127), [0x7f]);
        assert_eq!(leb128(128), [0x80, 1]);
        assert_eq!(leb128(624_485), [0xe5, 0x8e, 0x26]);
        assert_eq!(custom_section("ab", b"x"), [0, 4, 2, b'a', b'b', b'x']);
    }

    #[test]
    fn finds_the_serving_build() {
        let list = serde_json::json!({"files": [
            {"file": "other.wasm", "status": "failed", "error": "x"},
            {"file": FILE, "status": "serving", "error": null, "sha256": "ab12"}
        ]});
        assert_eq!(serving_sha(&list).unwrap(), "ab12");
        let failed = serde_json::json!({"files": [
            {"file": FILE, "status": "serving", "error": "refused: …", "sha256": "ab12"}
        ]});
        assert!(serving_sha(&failed).is_err());
        assert!(serving_sha(&serde_json::json!({})).is_err());
    }
}

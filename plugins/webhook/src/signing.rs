//! Standard Webhooks signatures (spec/standard-webhooks.md, "Signature
//! scheme" and "Webhook headers"): the signed content is
//! `"{id}.{timestamp}.{body}"`; a `whsec_` secret (Base64 of 24–64 random
//! bytes) signs with HMAC-SHA256 as `v1,<Base64>`, a `whsk_` secret (Base64
//! of an ed25519 secret key) as `v1a,<Base64 of the 64-byte signature>`.
//! `webhook-signature` is the space-separated list of one signature per
//! configured secret, so a receiver rotates keys without downtime: it
//! accepts the message when any signature verifies with a key it trusts.

use carillon_sdk::sign;
use ed25519_dalek::Signer as _;

/// The most secrets one destination may sign with (the current key and
/// the ones being rotated out; more is a mistake, not a rotation).
pub const MAX_SECRETS: usize = 4;

/// One configured signing key.
pub enum Key {
    /// `whsec_`: HMAC-SHA256, signatures `v1,…`.
    Hmac(Vec<u8>),
    /// `whsk_`: ed25519, signatures `v1a,…`.
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl Key {
    /// Parses a `whsec_` or `whsk_` secret.
    pub fn parse(secret: &str) -> Result<Key, String> {
        if secret.starts_with("whsec_") {
            return signing_key(secret).map(Key::Hmac);
        }
        let Some(encoded) = secret.strip_prefix("whsk_") else {
            return Err("expected a whsec_ (HMAC) or whsk_ (ed25519) secret".to_owned());
        };
        let bytes = sign::base64_decode(encoded).ok_or("the part after whsk_ is not Base64")?;
        let key = match bytes.len() {
            32 => {
                let mut seed = [0u8; 32];
                seed.copy_from_slice(&bytes);
                ed25519_dalek::SigningKey::from_bytes(&seed)
            }
            // The secret key followed by its public key, as many libraries
            // export a key pair; the halves must belong together.
            64 => {
                let mut pair = [0u8; 64];
                pair.copy_from_slice(&bytes);
                ed25519_dalek::SigningKey::from_keypair_bytes(&pair).map_err(
                    |_| "the 64-byte whsk_ key's public half does not match its secret half",
                )?
            }
            n => {
                return Err(format!(
                    "the key is {n} bytes; an ed25519 secret key is 32 bytes (or 64 with its public key)"
                ));
            }
        };
        Ok(Key::Ed25519(Box::new(key)))
    }

    /// This key's signature of `content`.
    fn sign(&self, content: &[u8]) -> String {
        match self {
            Key::Hmac(key) => format!("v1,{}", sign::hmac_sha256_base64(key, content)),
            Key::Ed25519(key) => {
                format!("v1a,{}", sign::base64_encode(&key.sign(content).to_bytes()))
            }
        }
    }

    /// The `whpk_` public key receivers verify `v1a` signatures with;
    /// `None` for an HMAC secret (its receivers hold the secret itself).
    pub fn public_key(&self) -> Option<String> {
        match self {
            Key::Hmac(_) => None,
            Key::Ed25519(key) => Some(format!(
                "whpk_{}",
                sign::base64_encode(key.verifying_key().as_bytes())
            )),
        }
    }
}

/// The decoded key of a `whsec_` secret.
pub fn signing_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or("expected the whsec_ prefix")?;
    let key = sign::base64_decode(encoded).ok_or("the part after whsec_ is not Base64")?;
    // The reference libraries accept any length; refuse keys too short to be safe.
    if key.len() < 24 {
        return Err(format!(
            "the key is {} bytes; Standard Webhooks asks for 24 to 64 random bytes",
            key.len()
        ));
    }
    Ok(key)
}

/// The signed content, `"{id}.{timestamp}.{body}"`.
fn content(id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    signed
}

/// One `v1` signature: `v1,` + Base64(HMAC-SHA256(key, "id.ts.body")).
pub fn signature(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    Key::Hmac(key.to_vec()).sign(&content(id, timestamp, body))
}

/// The `webhook-signature` value: every key's signature, space-separated,
/// in the order configured.
pub fn signature_header(keys: &[Key], id: &str, timestamp: &str, body: &[u8]) -> String {
    let signed = content(id, timestamp, body);
    keys.iter()
        .map(|key| key.sign(&signed))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8032_test_1_signs_the_empty_message() {
        // RFC 8032 §7.1, TEST 1: secret key 9d61b1…7f60, message empty.
        let key = Key::parse("whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=").unwrap();
        assert_eq!(
            key.sign(b""),
            "v1a,5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc+bRr0lv18FlbviRlUUFDjnoQCw=="
        );
    }
}

//! Request signing primitives: HMAC-SHA256 and Base64, as the chat vendors
//! and Standard Webhooks use them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 of `message` keyed by `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_key_length(),
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_key_length() -> ! {
    // `Hmac::new_from_slice` only fails for fixed-key MACs; HMAC has none.
    panic!("HMAC rejected a key length, which HMAC does not do")
}

/// Standard Base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard Base64, accepting a missing padding.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim().trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .ok()
}

/// `Base64(HMAC-SHA256(key, message))`, the form every vendor here uses.
pub fn hmac_sha256_base64(key: &[u8], message: &[u8]) -> String {
    base64_encode(&hmac_sha256(key, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn dingtalk_vector() {
        // docs/vendors/dingtalk.md, "Test vectors": secret SEC000…,
        // timestamp 1700000000000.
        let secret = "SEC000000000000000000000";
        let signed = format!("1700000000000\n{secret}");
        assert_eq!(
            hmac_sha256_base64(secret.as_bytes(), signed.as_bytes()),
            "1zJ/w34EOSVAYr7cu7Vo8LnebmK2/GrCgegtr8mQrqM="
        );
    }

    #[test]
    fn lark_vector() {
        // Lark signs an empty message keyed by "timestamp\nsecret".
        assert_eq!(
            hmac_sha256_base64(b"100\ndemo", b""),
            "jquNHnVOwmDRfw+vqTIrY5dooJAgi5EcRtLsQE4wfXg="
        );
    }

    #[test]
    fn base64_round_trip_without_padding() {
        assert_eq!(base64_decode("aGk"), Some(b"hi".to_vec()));
        assert_eq!(base64_decode("aGk="), Some(b"hi".to_vec()));
        assert_eq!(base64_decode("!!"), None);
    }
}

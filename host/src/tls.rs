//! TLS setup shared by outbound HTTP and SMTP: rustls with the `ring`
//! provider, installed once per process.

/// Installs `ring` as rustls' process-wide crypto provider (idempotent).
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

//! Logging into the gateway's logs, which attach the plugin's and the
//! destination's names. Never log secrets.

use crate::Level;

/// Records one line at `level`.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::carillon::plugin::log::log(level, message)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::record_log(level, message)
    }
}

/// Records a debug line.
pub fn debug(message: &str) {
    log(Level::Debug, message)
}

/// Records an info line.
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Records a warning, e.g. a mention the channel cannot express.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Records an error.
pub fn error(message: &str) {
    log(Level::Error, message)
}

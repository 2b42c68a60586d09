//! Outbound mail through the gateway's `smtp` import (the same egress policy
//! as HTTP applies to the server's host).

use crate::{Mail, SmtpError, SmtpReply};

/// Sends a mail and returns the server's final reply.
pub fn send(mail: &Mail) -> Result<SmtpReply, SmtpError> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::carillon::plugin::smtp::send(mail)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::dispatch_smtp(mail)
    }
}

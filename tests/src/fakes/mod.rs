//! One fake per vendor: a real HTTP server on 127.0.0.1 that records every
//! request, enforces the vendor's checks and can inject faults. The server
//! machinery they share is [`scaffold`]; each vendor module holds only that
//! vendor's rules.

pub mod dingtalk;
pub mod lark;
pub mod scaffold;
pub mod smtp;
pub mod teams;
pub mod webhook;
pub mod wecom;

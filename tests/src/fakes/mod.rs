//! One fake per vendor: a real HTTP server on 127.0.0.1 that records every
//! request, enforces the vendor's checks and can inject faults.

pub mod dingtalk;
pub mod lark;
pub mod smtp;
pub mod teams;
pub mod webhook;
pub mod wecom;

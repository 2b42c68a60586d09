//! Test fixture: the `echo` plugin, version 1.0.0 (posts `v1|<title>`).
//!
//! The `echo-v1`, `echo-v2` and `echo-strict` fixtures are builds of one
//! plugin, `echo`, that differ visibly: each marks what it sends with its
//! version, so a test sees which build delivered a message.

include!("echo.rs");

//! Test fixture: the `echo` plugin, version 2.0.0 (posts `v2|<title>`): the
//! same code as `echo-v1` (see there), built with this crate's version.

include!("../../echo-v1/src/echo.rs");

//! Test support for Carillon's end-to-end tests: fake vendor servers on
//! 127.0.0.1 that check what each vendor checks and answer as it answers.

pub mod fakes;

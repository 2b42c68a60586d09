//! Carillon's benchmark suite. The binary `carillon-bench` starts the real
//! `carillon serve`, loads it over HTTP, receives what it delivers and
//! compares every figure with a ceiling measured in the same run; see
//! bench/README.md. The pieces are public so that drivers for peer
//! gateways (bench/peers/) can use the same receiver, marker and load
//! generator.

pub mod ceiling;
pub mod chart;
pub mod driver;
pub mod latency;
pub mod load;
pub mod marker;
pub mod receiver;
pub mod report;
pub mod scenario;
pub mod server;
pub mod usage;

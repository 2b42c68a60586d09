//! Carillon, the notification gateway: library behind the `carillon` binary.

//! The `tickcast` subcommands.

pub mod decode;
pub mod gen;

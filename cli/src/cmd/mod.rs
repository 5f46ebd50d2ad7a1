//! The `tickcast` subcommands.

pub mod bench;
pub mod check_config;
pub mod decode;
pub mod doctor;
pub mod gen;
pub mod run;
pub mod stat;

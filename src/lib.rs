//! chanmon: health checks for LLM API channels.
//!
//! `main.rs` only parses arguments and maps errors to exit codes; the program lives here.
//! See ARCHITECTURE.md for the data flow and the code map.

pub mod alert;
pub mod cli;
pub mod commands;
pub mod config;
pub(crate) mod http;
pub mod keys;
pub mod logging;
pub mod model;
pub mod net;
pub mod official;
pub mod pipeline;
pub mod probe;
pub mod provider;
pub mod redact;
pub(crate) mod report;
pub mod runner;
pub mod secret;
pub mod store;

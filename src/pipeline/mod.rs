//! The result pipeline: every finished `CheckResult` takes one lossless path.
//!
//! ```text
//! workers ──▶ writer (one thread, one connection)
//!               └─ one transaction: history rows + rollups + status tracker (+ later: incidents, outbox)
//!             ── after the commit ──▶ bus ──▶ observers that may lag (metrics, a live page)
//! ```
//!
//! `tracker` holds the pure status-tracking decisions, `writer` the thread that commits, `bus`
//! the fan-out to observers. A result subscriber (an alert sink, metrics, a page) subscribes to
//! the bus (`Daemon::bus`); it never touches the runner.

pub mod bus;
pub mod tracker;
mod writer;

pub(crate) use writer::{Fatal, Writer, WriterHandle};

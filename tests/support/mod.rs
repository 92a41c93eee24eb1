//! Support code shared by chanmon's integration tests (`mod support;` in each test file).
//!
//! The centrepiece is [`mock::MockUpstream`], a loopback server speaking the real OpenAI,
//! Anthropic and Gemini wire formats; `examples/mock_upstream.rs` serves the same module by hand.

// Every test crate compiles this module but uses only part of it.
#![allow(dead_code, unused_imports)]

pub(crate) mod mock;

pub(crate) use mock::tls_mock::{Flaw, TestCa};
pub(crate) use mock::{
    Behaviour, MockOptions, MockTls, MockUpstream, RecordedRequest, challenge_answer,
};
pub(crate) mod http_client;
pub(crate) mod pg;
pub(crate) mod receiver;
pub(crate) mod smtp;

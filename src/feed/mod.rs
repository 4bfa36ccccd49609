//! The feed: subscription filters, the per-change delivery decision, the replay-then-live
//! stream, and the shared wire encoding of events.
pub mod encoded;
pub mod filter;
pub mod sink;
pub mod stream;
pub mod wire;

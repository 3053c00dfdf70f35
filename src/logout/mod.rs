//! OpenID Connect Back-Channel Logout 1.0: when a session ends, every client that received
//! tokens in it and registered a `backchannel_logout_uri` is told so by a signed logout token.
//!
//! Deliveries go through a durable outbox (`logout_deliveries`): written in the transaction that
//! ends the session (`SsoSessionStore::end_sso_session`), then claimed and sent by whichever
//! node's worker gets there first, retried with backoff for a bounded time when the client is
//! down or slow, and kept a while for the record. A node that crashes mid-delivery loses
//! nothing: its lease runs out and another node sends it.

pub mod delivery;
pub mod token;

//! The device authorization grant (RFC 8628), for command-line tools and devices without a
//! browser: the device authorization endpoint, the records every node shares, and user codes.
//! The user's side (the verification page, then sign-in and consent through the pending
//! authorization pipeline) is `ui::device`; the poll is the token endpoint's `device_code.rs`.

pub mod endpoint;
pub mod records;
pub mod user_code;

//! What a person sees: the login, consent, logout and account pages (the SSO session itself is `session.rs`).

pub mod account;
pub mod assets;
pub mod consent;
pub mod device;
pub mod login;
pub mod pages;
pub mod passkeys;
pub mod second_factor;
pub mod upstream;

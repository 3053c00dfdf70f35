//! What a person sees: the login, consent and logout pages, and the SSO session cookie.

pub mod assets;
pub mod consent;
pub mod login;
pub mod pages;
pub mod session;

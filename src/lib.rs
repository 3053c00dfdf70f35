//! sesame: an OAuth 2.0 / OpenID Connect authorization server.

pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod cache;
pub mod clock;
pub mod config;
pub mod connections;
pub mod crypto;
pub mod dpop;
pub mod error;
pub mod lifecycle;
pub mod logout;
pub mod metrics;
pub mod mfa;
pub mod net;
pub mod oauth;
pub mod oidc;
pub mod ops;
pub mod outbound;
pub mod paths;
pub mod retention;
pub mod routes;
pub mod server;
pub mod session;
pub mod state;
pub mod tls;
pub mod store;
pub mod tokens;
pub mod ui;
pub mod upstream;

pub use routes::app;

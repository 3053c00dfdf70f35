pub mod discovery;
pub mod end_session;
pub mod id_token;
pub mod jwks;
pub mod userinfo;

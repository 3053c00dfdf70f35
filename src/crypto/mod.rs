//! Cryptography, all of it from vetted crates (aws-lc-rs, rsa, argon2, sha2).

pub mod alg;
pub mod jwt;
pub mod jwt_rules;
pub mod kek;
pub mod keyring;
pub mod keys;
pub mod password;
pub mod rotation;
pub mod secrets;
pub mod verify;

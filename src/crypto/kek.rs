//! The key-encryption key: AES-256-GCM over secrets at rest (signing keys' private parts, TOTP secrets).

use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub struct Kek(LessSafeKey);

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("the key-encryption key must be the base64 of exactly 32 bytes")]
    BadKey,
    #[error("cannot read or create the key-encryption key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("a signing key could not be decrypted: the key-encryption key is not the one it was sealed with")]
    Open,
    #[error("sealing failed")]
    Seal,
}

impl Kek {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KekError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KekError::BadKey)?;
        Ok(Self(LessSafeKey::new(key)))
    }

    pub fn from_base64(text: &str) -> Result<Self, KekError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| KekError::BadKey)?;
        if bytes.len() != 32 {
            return Err(KekError::BadKey);
        }
        Self::from_bytes(&bytes)
    }

    /// Reads `dir/kek`, creating it (mode 0600, the directory 0700) on first start.
    pub fn load_or_create(dir: &Path) -> Result<Self, KekError> {
        let path = dir.join("kek");
        let file_err = |e: std::io::Error| KekError::File { path: path.display().to_string(), reason: e.to_string() };
        match std::fs::read_to_string(&path) {
            Ok(text) => return Self::from_base64(&text),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(file_err(e)),
            Err(_) => {}
        }
        // The directory too is the owner's alone (0700): no one else may even list it.
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(file_err)?;
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| KekError::Seal)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&path) {
            Ok(mut file) => {
                file.write_all(STANDARD.encode(bytes).as_bytes()).map_err(file_err)?;
                file.sync_all().map_err(file_err)?;
                Self::from_bytes(&bytes)
            }
            // Another process created it between our read and our create: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::from_base64(&std::fs::read_to_string(&path).map_err(file_err)?)
            }
            Err(e) => Err(file_err(e)),
        }
    }

    /// nonce || ciphertext || tag, bound to `context` (the key id) as associated data.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, KekError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| KekError::Seal)?;
        let mut out = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut out)
            .map_err(|_| KekError::Seal)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&out);
        Ok(sealed)
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, KekError> {
        if sealed.len() < NONCE_LEN {
            return Err(KekError::Open);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KekError::Open)?;
        let mut buf = ciphertext.to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf).map_err(|_| KekError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {

    #[cfg(unix)]
    #[test]
    fn a_new_key_directory_and_file_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("keys");
        let created = Kek::load_or_create(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(dir.join("kek")).unwrap().permissions().mode() & 0o777, 0o600);
        let loaded = Kek::load_or_create(&dir).unwrap();
        let sealed = created.seal("kid", b"secret").unwrap();
        assert_eq!(loaded.open("kid", &sealed).unwrap(), b"secret");
    }

    use super::*;

    #[test]
    fn seal_open_round_trip_bound_to_context() {
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        let sealed = kek.seal("kid-1", b"secret").unwrap();
        assert_eq!(kek.open("kid-1", &sealed).unwrap(), b"secret");
        assert!(kek.open("kid-2", &sealed).is_err(), "moved to another kid");
        let other = Kek::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open("kid-1", &sealed).is_err(), "wrong kek");
    }

    #[test]
    fn file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = Kek::load_or_create(dir.path()).unwrap();
        let b = Kek::load_or_create(dir.path()).unwrap();
        let sealed = a.seal("k", b"x").unwrap();
        assert_eq!(b.open("k", &sealed).unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("kek")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

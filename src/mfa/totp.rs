//! Authenticator apps: RFC 6238 time-based one-time codes with the parameters every app
//! understands (HMAC-SHA-1, 6 digits, 30-second steps), one step of clock skew either way.
//! Pure functions over the secret and an injected `now`; the codes themselves are `totp-rs`'s.
//!
//! Verification returns the time step the code matched: the caller spends that step with the
//! store's compare-and-set, so a code is accepted once (RFC 6238 §5.2), however fast it is replayed.

use qrcode::render::svg;
use qrcode::QrCode;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::clock::UnixTime;

pub const DIGITS: usize = 6;
pub const STEP_SECONDS: u64 = 30;
/// Steps accepted either side of the current one: a code typed as it changes, or a phone a few
/// seconds off, still works.
pub const SKEW_STEPS: u16 = 1;
/// 160 bits, as RFC 4226 §4 recommends (128 at least).
pub const SECRET_BYTES: usize = 20;
/// The issuer shown in authenticator apps when the configured issuer has no usable host.
const FALLBACK_ISSUER: &str = "sesame";

#[derive(Debug, thiserror::Error)]
#[error("TOTP: {0}")]
pub struct TotpError(String);

/// A fresh random secret from the operating system's generator.
pub fn generate_secret() -> Vec<u8> {
    let secret = Secret::generate();
    debug_assert_eq!(secret.as_bytes().len(), SECRET_BYTES);
    secret.as_bytes().to_vec()
}

/// The secret as people and apps type it: RFC 4648 base32, unpadded.
pub fn secret_base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

/// The issuer label apps show beside the account: the host of the configured issuer URL (not
/// its port: a label may hold no colon), or `sesame` when there is no usable host.
pub fn issuer_label(issuer_url: &str) -> String {
    let host = url::Url::parse(issuer_url).ok().and_then(|u| u.host_str().map(str::to_string));
    match host {
        Some(h) if !h.is_empty() && !h.contains(':') && !h.starts_with('[') => h,
        _ => FALLBACK_ISSUER.to_string(),
    }
}

fn totp(secret: &[u8], issuer: Option<&str>, account: &str) -> Result<Totp, TotpError> {
    let mut builder = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_step_duration(STEP_SECONDS)
        .with_skew(SKEW_STEPS)
        .with_secret(secret.to_vec());
    if let Some(issuer) = issuer {
        builder = builder.with_issuer(Some(issuer)).with_account_name(account);
    }
    builder.build().map_err(|e| TotpError(e.to_string()))
}

/// `otpauth://totp/ISSUER:USERNAME?secret=...&issuer=ISSUER` (Key URI Format), the defaults
/// (SHA1, 6 digits, 30 s) left implicit as apps expect.
pub fn otpauth_uri(secret: &[u8], issuer: &str, username: &str) -> Result<String, TotpError> {
    totp(secret, Some(issuer), username)?.to_url().map_err(|e| TotpError(e.to_string()))
}

/// The QR code of `uri` as an SVG element (no XML declaration: it can sit inline in a page).
/// Presentation attributes only, no `style`, so a strict CSP renders it.
pub fn qr_svg(uri: &str) -> Result<String, TotpError> {
    let code = QrCode::new(uri.as_bytes()).map_err(|e| TotpError(format!("QR code: {e}")))?;
    let image = code.render::<svg::Color>().min_dimensions(240, 240).build();
    let start = image.find("<svg").ok_or_else(|| TotpError("QR code: no svg element".into()))?;
    Ok(image[start..].replacen("<svg ", "<svg role=\"img\" aria-label=\"QR code of the authenticator app set-up link\" ", 1))
}

/// The code as typed, if it can be one: six ASCII digits once spaces are dropped ("123 456").
pub fn normalize_code(input: &str) -> Option<String> {
    let code: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// The time step of `now`.
pub fn step_of(now: UnixTime) -> i64 {
    now.max(0) / STEP_SECONDS as i64
}

/// The code the secret gives at `at`: for tests and for the app side of a test.
pub fn code_at(secret: &[u8], at: UnixTime) -> Result<String, TotpError> {
    Ok(totp(secret, None, "")?.generate(at.max(0) as u64).to_string())
}

/// The time step whose code `code` is, within the skew around `now`; `None` when it is no code
/// of those steps (compared in constant time). The caller must still spend the step once.
pub fn verify(secret: &[u8], code: &str, now: UnixTime) -> Option<i64> {
    let code = normalize_code(code)?;
    let totp = totp(secret, None, "").ok()?;
    totp.check(&code, now.max(0) as u64).map(|step| step as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 seed and its 8-digit codes.
    const RFC_SECRET: &[u8] = b"12345678901234567890";
    const RFC_VECTORS: [(i64, &str); 6] = [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ];

    #[test]
    fn rfc_6238_sha1_test_vectors() {
        let eight = Builder::new().with_digits(8).with_secret(RFC_SECRET.to_vec()).build().unwrap();
        for (time, expected) in RFC_VECTORS {
            assert_eq!(eight.generate(time as u64).to_string(), expected, "8 digits at T={time}");
            // Six digits are the same truncation modulo 10^6: the vector's last six digits.
            let six = &expected[2..];
            assert_eq!(code_at(RFC_SECRET, time).unwrap(), six, "6 digits at T={time}");
            assert_eq!(verify(RFC_SECRET, six, time), Some(step_of(time)), "verified at T={time}");
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let t = 1234567890;
        let code = code_at(RFC_SECRET, t).unwrap();
        let step = step_of(t);
        for (now, expected) in [(t - 30, Some(step)), (t + 30, Some(step)), (t - 60, None), (t + 60, None)] {
            assert_eq!(verify(RFC_SECRET, &code, now), expected, "now = t{:+}", now - t);
        }
    }

    #[test]
    fn malformed_and_wrong_codes_are_refused() {
        let t = 1111111111;
        assert_eq!(verify(RFC_SECRET, "050 471", t), Some(step_of(t)), "spaces are dropped");
        for bad in ["", "05047", "0504711", "+50471", "05047a", "14050471", "050472"] {
            assert_eq!(verify(RFC_SECRET, bad, t), None, "{bad:?}");
        }
        assert_eq!(verify(b"another secret, 20 b", "050471", t), None, "another secret");
    }

    #[test]
    fn secrets_are_160_random_bits_in_base32() {
        let a = generate_secret();
        assert_eq!(a.len(), SECRET_BYTES);
        assert_ne!(a, generate_secret());
        assert_eq!(secret_base32(RFC_SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn the_uri_names_issuer_and_account_and_round_trips() {
        let uri = otpauth_uri(RFC_SECRET, "id.example.com", "alice@example.com").unwrap();
        assert_eq!(uri, "otpauth://totp/id.example.com:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=id.example.com");
        let parsed = Totp::from_url(&uri).unwrap();
        assert_eq!(parsed.secret().as_bytes(), RFC_SECRET);
        assert_eq!((parsed.digits(), parsed.step(), parsed.algorithm()), (6, 30, Algorithm::SHA1));
    }

    #[test]
    fn the_issuer_label_is_the_issuer_host() {
        assert_eq!(issuer_label("https://id.example.com"), "id.example.com");
        assert_eq!(issuer_label("http://127.0.0.1:8080"), "127.0.0.1", "no port: a label holds no colon");
        assert_eq!(issuer_label("http://[::1]:8080"), "sesame");
        assert_eq!(issuer_label("not a url"), "sesame");
    }

    #[test]
    fn the_qr_code_is_an_inline_svg_without_styles() {
        let svg = qr_svg("otpauth://totp/x:y?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=x").unwrap();
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains("role=\"img\"") && svg.contains("<path"));
        assert!(!svg.contains("<?xml") && !svg.contains("style") && !svg.contains("<script"));
    }
}

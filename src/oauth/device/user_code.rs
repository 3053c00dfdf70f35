//! User codes (RFC 8628 §6.1): eight characters from an alphabet without vowels (no words) and
//! without look-alikes, shown as `XXXX-XXXX`; typed back in any case, with or without the hyphen
//! or spaces.

use rand::Rng;

/// The alphabet RFC 8628 §6.1 suggests: 20 consonants, no vowels, none easily confused.
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// 20^8 ≈ 2^34.6 codes: guessing one of the few live codes takes far more tries than the
/// per-address throttle allows within a code's life.
pub const LENGTH: usize = 8;

/// A fresh code in its canonical form (eight letters, no hyphen).
pub fn generate() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..LENGTH).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// What the user typed, in canonical form: upper case, hyphens and white space dropped; `None`
/// unless exactly eight letters of the alphabet remain.
pub fn normalise(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let code: String = typed.chars().filter(|c| *c != '-' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
    (code.len() == LENGTH && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// The canonical code as people read it: `XXXX-XXXX`.
pub fn display(code: &str) -> String {
    match (code.get(..LENGTH / 2), code.get(LENGTH / 2..)) {
        (Some(a), Some(b)) if code.len() == LENGTH => format!("{a}-{b}"),
        _ => code.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn typed_forms_of_one_code_agree() {
        for typed in ["BCDF-GHJK", "bcdfghjk", " bcdf ghjk ", "Bcdf-gHjk", "BC-DF-GH-JK"] {
            assert_eq!(normalise(typed).as_deref(), Some("BCDFGHJK"), "{typed:?}");
        }
        for bad in ["", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", "BCDF_GHJK", "ＢCDF-GHJK"] {
            assert_eq!(normalise(bad), None, "{bad:?}");
        }
        assert_eq!(display("BCDFGHJK"), "BCDF-GHJK");
    }

    proptest! {
        #[test]
        fn generated_codes_read_back_whatever_the_spelling(lower in any::<bool>(), spaced in any::<bool>()) {
            let code = generate();
            prop_assert_eq!(code.len(), LENGTH);
            let mut shown = display(&code);
            if lower {
                shown = shown.to_lowercase();
            }
            if spaced {
                shown = shown.replace('-', " ");
            }
            prop_assert_eq!(normalise(&shown), Some(code));
        }

        #[test]
        fn anything_typed_is_refused_or_canonical(typed in ".{0,80}") {
            if let Some(code) = normalise(&typed) {
                prop_assert_eq!(code.len(), LENGTH);
                prop_assert!(code.bytes().all(|b| ALPHABET.contains(&b)));
            }
        }
    }
}

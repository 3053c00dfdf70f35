//! Recovery codes: ten single-use codes, shown once, stored only as hashes.
//!
//! A code is 16 characters of Crockford's base32 (80 random bits), shown as four groups of four
//! (`7K3M-9QXZ-...`). Typed back, case, spaces and dashes do not matter, and the letters people
//! confuse with digits (O, I, L) read as the digits (0, 1, 1).
//!
//! Stored as SHA-256 over the user's `sub` and the normalised code, not Argon2: at 80 bits an
//! offline search of a stolen table is out of reach (2^79 hashes on average for one code, and
//! the `sub` in the hash means no search covers two users at once), online guesses are throttled
//! like passwords, and a hash lets a code be spent by one conditional update on its row.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Codes issued at a time.
pub const COUNT: usize = 10;
/// Characters of a code: 5 bits each.
pub const LENGTH: usize = 16;
const GROUP: usize = 4;
/// Crockford's base32: digits and letters without I, L, O and U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `COUNT` fresh codes, formatted for people.
pub fn generate() -> Vec<String> {
    let mut rng = rand::rngs::OsRng;
    (0..COUNT)
        .map(|_| {
            let raw: String = (0..LENGTH).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
            format_code(&raw)
        })
        .collect()
}

/// `ABCDEFGHJKMNPQRS` as `ABCD-EFGH-JKMN-PQRS`.
fn format_code(raw: &str) -> String {
    raw.as_bytes().chunks(GROUP).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect::<Vec<_>>().join("-")
}

/// The code as typed, in canonical form (16 upper-case characters of the alphabet), if it can
/// be a recovery code at all.
pub fn normalize(input: &str) -> Option<String> {
    let mut code = String::with_capacity(LENGTH);
    for c in input.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || code.len() == LENGTH {
            return None;
        }
        code.push(c);
    }
    (code.len() == LENGTH).then_some(code)
}

/// What the store keeps of a code: SHA-256 of a label, the user's `sub` and the normalised code.
/// `None` when `input` cannot be a code.
pub fn hash(sub: &str, input: &str) -> Option<Vec<u8>> {
    let code = normalize(input)?;
    let mut h = Sha256::new();
    h.update(b"sesame recovery code\0");
    h.update(sub.as_bytes());
    h.update(b"\0");
    h.update(code.as_bytes());
    Some(h.finalize().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_of_80_bits_in_groups() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        for code in &codes {
            assert_eq!(code.len(), LENGTH + LENGTH / GROUP - 1, "{code}");
            assert_eq!(code.split('-').map(str::len).collect::<Vec<_>>(), [4, 4, 4, 4], "{code}");
            assert_eq!(normalize(code).unwrap(), code.replace('-', ""));
        }
        assert_eq!((ALPHABET.len() as f64).log2() as usize * LENGTH, 80);
    }

    #[test]
    fn typing_variants_normalise_to_the_same_code() {
        let canonical = "7K3M9QXZ0A1BCDEF";
        for typed in ["7K3M-9QXZ-0A1B-CDEF", "7k3m 9qxz 0a1b cdef", " 7K3M9QXZ-0A1BCDEF ", "7K3M-9QXZ-oAiB-CDEF", "7K3M-9QXZ-OALB-CDEF"] {
            assert_eq!(normalize(typed).as_deref(), Some(canonical), "{typed:?}");
            assert_eq!(hash("sub-1", typed), hash("sub-1", canonical), "{typed:?}");
        }
    }

    #[test]
    fn what_cannot_be_a_code_is_refused() {
        for bad in ["", "123456", "7K3M-9QXZ-0A1B-CDE", "7K3M-9QXZ-0A1B-CDEFG", "7K3M-9QXZ-0A1B-CDEU", "7K3M_9QXZ_0A1B_CDEF", "7K3M-9QXZ-0A1B-CDÉF"] {
            assert_eq!(normalize(bad), None, "{bad:?}");
            assert_eq!(hash("sub-1", bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_hash_is_bound_to_the_user() {
        let code = "7K3M-9QXZ-0A1B-CDEF";
        assert_ne!(hash("sub-1", code), hash("sub-2", code));
        assert_eq!(hash("sub-1", code).unwrap().len(), 32);
        assert!(!hash("sub-1", code).unwrap().windows(4).any(|w| w == b"7K3M"), "not the code in clear");
    }
}

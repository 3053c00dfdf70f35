//! The API key format: `ses_<env>_<random base62>_<checksum>`. The checksum (CRC32 of the rest,
//! base62, six characters) lets scanners and sesame reject a mistyped or made-up key offline.

use rand::distributions::{Alphanumeric, DistString};

pub const ENVS: [&str; 3] = ["dev", "staging", "prod"];
const RANDOM_CHARS: usize = 32;
const CHECKSUM_CHARS: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62_fixed(mut n: u32) -> String {
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn checksum(body: &str) -> String {
    base62_fixed(crc32fast::hash(body.as_bytes()))
}

/// A new key for `env` (190 random bits).
pub fn generate(env: &str) -> String {
    let random = Alphanumeric.sample_string(&mut rand::rngs::OsRng, RANDOM_CHARS);
    let body = format!("ses_{env}_{random}");
    let sum = checksum(&body);
    format!("{body}_{sum}")
}

/// The environment of a well-formed key with a correct checksum; `None` for anything else.
pub fn parse(key: &str) -> Option<&str> {
    let (body, sum) = key.rsplit_once('_')?;
    let rest = body.strip_prefix("ses_")?;
    let (env, random) = rest.split_once('_')?;
    let well_formed = ENVS.contains(&env)
        && random.len() >= 30
        && random.len() <= 64
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
        && sum.len() == CHECKSUM_CHARS;
    (well_formed && checksum(body) == sum).then_some(env)
}

/// The part of a key that is safe to show: `ses_prod_Ab12`.
pub fn display_prefix(key: &str) -> String {
    let env_end = key.find('_').and_then(|i| key[i + 1..].find('_').map(|j| i + 1 + j)).unwrap_or(0);
    key.chars().take(env_end + 5).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_carry_their_environment() {
        for env in ENVS {
            let key = generate(env);
            assert!(key.starts_with(&format!("ses_{env}_")));
            assert_eq!(parse(&key), Some(env));
            assert_eq!(display_prefix(&key), key[..format!("ses_{env}_").len() + 4]);
        }
        assert_ne!(generate("dev"), generate("dev"));
    }

    #[test]
    fn typos_and_fakes_fail_the_checksum() {
        let key = generate("prod");
        let mut chars: Vec<char> = key.chars().collect();
        let i = 12;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert_eq!(parse(&typo), None);
        assert_eq!(parse(&key.replace("_prod_", "_dev_")), None, "environment is covered by the checksum");
        assert_eq!(parse("ses_prod_abc_000000"), None);
        assert_eq!(parse("not a key"), None);
        assert_eq!(parse(""), None);
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// CRC32 catches every single-character change; the key is then refused offline.
            #[test]
            fn any_one_character_change_is_refused(env in prop::sample::select(ENVS.to_vec()), at in any::<prop::sample::Index>(), with in "[0-9A-Za-z_]") {
                let key = generate(env);
                let i = at.index(key.len());
                let original = key.as_bytes()[i] as char;
                let replacement = with.chars().next().unwrap();
                prop_assume!(original != replacement);
                let mut changed = key.clone();
                changed.replace_range(i..i + 1, &with);
                prop_assert_eq!(parse(&changed), None, "{} accepted", changed);
            }

            #[test]
            fn arbitrary_text_never_panics(text in ".{0,100}") {
                let _ = parse(&text);
                prop_assert!(text.starts_with(&display_prefix(&text)));
            }
        }
    }
}

//! Is an HS256 secret strong enough? Whoever can guess it signs tokens for every catalog, and
//! one captured token is enough to test guesses offline, as fast as the attacker's hardware
//! goes. So a secret must hold 32 random bytes (256 bits), as `openssl rand -base64 32` or
//! `openssl rand -hex 32` makes.
//!
//! A string cannot show how it was made, so this is an estimate, and a deliberately simple one
//! (docs/operations.md says the same):
//!
//! 1. **Capacity.** Each character is credited log2(K) bits, K being the size of the smallest
//!    usual alphabet the whole secret is drawn from: decimal digits (10), hex digits of one
//!    case (16), letters of one case (26), those and digits (36), letters and digits (62),
//!    base64 or base64url (64; trailing `=` padding is not counted) or printable ASCII (95;
//!    any other character is counted as one of these). That must reach 256 bits: 64 hex
//!    digits, 43 base64 characters, 39 printable ones.
//! 2. **Does it look like a random draw from that alphabet?** The capacity is only there if
//!    the characters are random, so a secret is refused if a run of characters worth 30 bits
//!    appears twice (8 hex digits, 5 base64 characters: `aaaa…`, `passwordpassword…`, a block
//!    pasted twice), if its characters are spread much less evenly than a random string's
//!    (the Shannon entropy of its character frequencies under 80% of what a random string of
//!    its alphabet and length shows), or if more than a quarter of it continues a run (`aaa`,
//!    `abc`, `2468`, `zyx`).
//!
//! Random secrets pass with a wide margin: over 40,000 draws of each kind the tests use, the
//! lowest spread seen was 85% and the most runs 17%, and a repeat by chance is about one in
//! a million. What the checks do not catch is structure they do not look for: a keyboard walk
//! of 43 distinct keys, a long passphrase of words in mixed case and punctuation, a hash of a
//! word. `zxcvbn` was considered and not used: it models human passwords and credits
//! characters it cannot explain with log2(10) bits each, so it would call a 44-character
//! `openssl rand -base64 32` secret about 143 bits, and it cannot tell 256 bits from less.

use std::collections::HashSet;

/// 32 bytes.
pub const MIN_BITS: u32 = 256;
/// A run of characters worth this many bits appearing twice is not chance: 8 hex digits, 5
/// base64 characters.
const REPEAT_BITS: u32 = 30;
/// The share of a random string's character-frequency entropy a secret must show.
const MIN_SPREAD: f64 = 0.8;

/// Why a secret was refused. Never holds any of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Weakness {
    #[error(
        "{characters} characters of {alphabet} hold at most {bits} bits even if each is random"
    )]
    TooShort {
        characters: usize,
        alphabet: &'static str,
        bits: u32,
    },
    #[error("a run of characters appears twice in it")]
    Repeats,
    #[error("its characters are spread much less evenly than a random string's")]
    Uneven,
    #[error("much of it is sequences or repeated characters such as aaa, abc or 123")]
    Runs,
}

/// The secret's estimated strength in bits, or why it is under [`MIN_BITS`].
pub fn check(secret: &str) -> Result<u32, Weakness> {
    let chars: Vec<char> = without_padding(secret).chars().collect();
    let (alphabet, size) = alphabet(&chars);
    let count = chars.len();
    let capacity = count as f64 * f64::from(size).log2();
    // 64 hex digits are exactly 256 bits; keep rounding from refusing them.
    if capacity + 1e-6 < f64::from(MIN_BITS) {
        return Err(Weakness::TooShort {
            characters: count,
            alphabet,
            bits: capacity.floor() as u32,
        });
    }
    if repeats(&chars, size) {
        return Err(Weakness::Repeats);
    }
    if shannon(&chars) < MIN_SPREAD * expected_shannon(size, count) {
        return Err(Weakness::Uneven);
    }
    if runs(&chars) * 4 > count.saturating_sub(2) {
        return Err(Weakness::Runs);
    }
    Ok(capacity.floor() as u32)
}

/// Up to two trailing `=` of a base64 string carry nothing.
fn without_padding(secret: &str) -> &str {
    let body = secret.trim_end_matches('=');
    if secret.len() - body.len() <= 2 && body.chars().all(is_base64) {
        body
    } else {
        secret
    }
}

fn is_base64(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_')
}

/// The smallest of the usual alphabets that holds every character, and its size.
fn alphabet(chars: &[char]) -> (&'static str, u32) {
    let all = |test: fn(&char) -> bool| chars.iter().all(test);
    if all(char::is_ascii_digit) {
        ("decimal digits", 10)
    } else if all(|c| c.is_ascii_digit() || matches!(c, 'a'..='f'))
        || all(|c| c.is_ascii_digit() || matches!(c, 'A'..='F'))
    {
        ("hex digits", 16)
    } else if all(char::is_ascii_lowercase) || all(char::is_ascii_uppercase) {
        ("letters of one case", 26)
    } else if all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        || all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        ("letters of one case and digits", 36)
    } else if all(char::is_ascii_alphanumeric) {
        ("letters and digits", 62)
    } else if all(|c| is_base64(*c)) {
        ("base64", 64)
    } else {
        ("printable ASCII", 95)
    }
}

/// Does a run of characters worth [`REPEAT_BITS`] appear twice? By chance that happens to
/// about one random secret in a million.
fn repeats(chars: &[char], size: u32) -> bool {
    let window = (f64::from(REPEAT_BITS) / f64::from(size).log2()).ceil() as usize;
    let mut seen = HashSet::new();
    chars.windows(window.max(2)).any(|run| !seen.insert(run))
}

/// Bits per character of the string's own character frequencies.
fn shannon(chars: &[char]) -> f64 {
    let mut counts = std::collections::HashMap::<char, usize>::new();
    for c in chars {
        *counts.entry(*c).or_default() += 1;
    }
    let total = chars.len() as f64;
    counts
        .values()
        .map(|&n| {
            let p = n as f64 / total;
            -p * p.log2()
        })
        .sum()
}

/// What [`shannon`] gives on average for `count` random characters of an alphabet of `size`:
/// log2(size) less the Miller–Madow bias of a finite sample.
fn expected_shannon(size: u32, count: usize) -> f64 {
    let size = f64::from(size);
    size.log2() - (size - 1.0) / (2.0 * count.max(1) as f64 * std::f64::consts::LN_2)
}

/// Characters that continue a run: the same step from the one before as that one's from its
/// predecessor (`aaa`, `abc`, `2468`, `zyx`).
fn runs(chars: &[char]) -> usize {
    chars
        .windows(3)
        .filter(|w| match w {
            [a, b, c] => {
                i64::from(u32::from(*c)) - i64::from(u32::from(*b))
                    == i64::from(u32::from(*b)) - i64::from(u32::from(*a))
            }
            _ => false,
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use rand::Rng;

    fn random_from(alphabet: &[u8], count: usize) -> String {
        let mut rng = rand::rng();
        (0..count)
            .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
            .collect()
    }

    /// What operators are told to run, and what the demo makes, always passes.
    /// A random draw repeats a 30-bit run about once in a million (that is the rule's price):
    /// over these 30,000 secrets about 0.2 such refusals are expected, so more than 3 (odds of
    /// some 1 in 30,000 by chance), or a refusal of any other kind, is a bug.
    #[test]
    fn random_secrets_of_32_bytes_pass() {
        let printable: Vec<u8> = (b' '..=b'~').collect();
        let mut repeated = Vec::new();
        for _ in 0..3000 {
            let bytes = rand::random::<[u8; 32]>();
            let long = rand::random::<[u8; 48]>();
            let candidates = [
                hex::encode(bytes),
                hex::encode_upper(bytes),
                STANDARD.encode(bytes),
                URL_SAFE_NO_PAD.encode(bytes),
                STANDARD.encode(long),
                hex::encode(long),
                random_from(&printable, 40),
                random_from(b"0123456789", 78),
                random_from(b"abcdefghijklmnopqrstuvwxyz", 55),
                random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", 50),
            ];
            for secret in candidates {
                match check(&secret) {
                    Ok(_) => {}
                    Err(Weakness::Repeats) => repeated.push(secret),
                    Err(other) => panic!("{secret}: {other:?}"),
                }
            }
        }
        assert!(repeated.len() <= 3, "{repeated:?}");
    }

    #[test]
    fn the_estimate_is_the_alphabets_capacity() {
        let hex = "4aec2485a34e0a3a637ebff6f98ceaa074296926e6f3ddd308351daf5b442e97";
        assert_eq!(check(hex), Ok(256), "64 hex digits of 4 bits");
        let base64 = "FcSaAa3z853EuQ/UTliMzCcAiX+ZJHI8psHjHenYU7U=";
        assert_eq!(check(base64), Ok(258), "43 characters of 6 bits");
        // A quarter of 32-byte base64 secrets have no `+` or `/`: letters and digits still
        // make 256.
        let alphanumeric = "sh4hWXkSwQbVgtqonhLml1PFTucuFwnXMDYtLo6tfsw=";
        assert_eq!(check(alphanumeric), Ok(256));
    }

    #[test]
    fn short_secrets_are_refused_whatever_they_look_like() {
        let sixteen = STANDARD.encode(rand::random::<[u8; 16]>());
        assert!(
            matches!(check(&sixteen), Err(Weakness::TooShort { bits, .. }) if bits <= 132),
            "{sixteen}"
        );
        let hex_43 = &hex::encode(rand::random::<[u8; 32]>())[..43];
        assert!(matches!(
            check(hex_43),
            Err(Weakness::TooShort { bits: 172, .. })
        ));
        // 55 random lower-case letters: 258 bits; 50 are 235.
        assert_eq!(
            check("qhzvmwkcyrtoxplbjneudgsfaiqmzkwvhxtrcpyoljbnsufgeadiwkr"),
            Ok(258)
        );
        assert!(matches!(
            check("qhzvmwkcyrtoxplbjneudgsfaiqmzkwvhxtrcpyoljbnsufgea"),
            Err(Weakness::TooShort { bits: 235, .. })
        ));
        // What the gateway's own tests used to use: 38 characters of base64url.
        assert!(matches!(
            check("test-secret-0123456789abcdef0123456789"),
            Err(Weakness::TooShort { .. })
        ));
    }

    #[test]
    fn long_but_patterned_secrets_are_refused() {
        let block = STANDARD.encode(rand::random::<[u8; 24]>());
        for (secret, why) in [
            ("a".repeat(64), Weakness::Repeats),
            ("password".repeat(8), Weakness::Repeats),
            ("passwordpassword".repeat(20), Weakness::Repeats),
            (block.repeat(2), Weakness::Repeats),
            ("0123456789abcdef".repeat(4), Weakness::Repeats),
            (
                "correct horse battery staple, then a very long passphrase".to_owned(),
                Weakness::Uneven,
            ),
            ("ab".repeat(3) + &"cd".repeat(30), Weakness::Repeats),
            (
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_".to_owned(),
                Weakness::Runs,
            ),
            (
                "aaaaaaa1bbbbbbb2ccccccc3ddddddd4eeeeeee5fffffff6ggggggg7hhhhhhh8".to_owned(),
                Weakness::Repeats,
            ),
            // Every other character the same: no run repeats, but half of it is one letter.
            (
                "Q7mZ2pK9xR4vT1nW8cL5yH3jF6bD0gS+"
                    .chars()
                    .flat_map(|c| ['a', c])
                    .collect(),
                Weakness::Uneven,
            ),
        ] {
            assert_eq!(check(&secret), Err(why), "{secret}");
        }
    }

    #[test]
    fn the_reason_never_holds_the_secret() {
        let secret = "hunter2hunter2hunter2hunter2hunter2hunter2hunter2";
        let reason = check(secret).unwrap_err().to_string();
        assert!(!reason.contains("hunter2"), "{reason}");
    }
}

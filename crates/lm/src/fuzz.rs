//! The byte-flip fuzz harness every file reader's tests run: seeded mutations of a real
//! file (bit and byte flips, extreme integers where a length or count may sit,
//! truncations, duplicated chunks, stray syntax characters for the text formats), each
//! fed to the reader, which must return (a value or an error) and never panic, abort,
//! hang or allocate without bound.
//!
//! Bounded so that CI runs it: [`cases`] mutants per file, 300 unless `BAE_FUZZ_CASES`
//! says otherwise (raise it for a longer search). A failure names the seed;
//! [`mutant`] with that seed rebuilds the file that broke the reader.

use std::panic::AssertUnwindSafe;

use crate::rng::SplitMix64;

/// Mutants per file: `BAE_FUZZ_CASES`, else 300.
pub fn cases() -> u64 {
    std::env::var("BAE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

/// Values a crafted length, count, offset or dimension takes.
const EXTREMES: [u64; 8] = [0, 1, 0xff, 1 << 31, u32::MAX as u64, 1 << 40, 1 << 62, u64::MAX];

/// Characters that change the structure of JSON and TOML.
const SYNTAX: &[u8] = b"0123456789-.eE\"'{}[],:=#\n \\";

/// The mutant of `original` that `seed` makes: one to four edits.
pub fn mutant(original: &[u8], seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    let mut bytes = original.to_vec();
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(6) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = rng.next_u64() as u8,
            2 => {
                let value = EXTREMES[rng.below(EXTREMES.len())].to_le_bytes();
                let width = if rng.below(2) == 0 { 4 } else { 8 };
                for (i, b) in value[..width].iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
            3 => bytes.truncate(at),
            4 => {
                let len = rng.below(64).min(bytes.len() - at);
                let chunk = bytes[at..at + len].to_vec();
                let to = rng.below(bytes.len() + 1);
                bytes.splice(to..to, chunk);
            }
            _ => bytes[at] = SYNTAX[rng.below(SYNTAX.len())],
        }
    }
    bytes
}

/// Feeds [`cases`] mutants of `original` to `read`. `read` returns the reader's error
/// message, if any, which must name `file` (the name the reader was given); a panic or
/// an error that does not say which file fails the test with the seed to replay.
pub fn run(target: &str, original: &[u8], file: &str, read: impl Fn(&[u8]) -> Option<String>) {
    let base =
        target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    // Panics the readers' guards catch are expected here: keep them off stderr.
    crate::guard::install_quiet_hook();
    let (mut refused, mut accepted) = (0u64, 0u64);
    for case in 0..cases() {
        let seed = base.wrapping_add(case);
        let bytes = mutant(original, seed);
        match std::panic::catch_unwind(AssertUnwindSafe(|| read(&bytes))) {
            Err(_) => panic!("{target}: mutant {case} panicked the reader; rebuild it with fuzz::mutant(original, {seed:#x})"),
            Ok(Some(message)) => {
                assert!(
                    message.contains(file),
                    "{target}: mutant {case} (seed {seed:#x}) gave an error that does not name {file}: {message}"
                );
                refused += 1;
            }
            Ok(None) => accepted += 1,
        }
    }
    // Most mutants break a file; a reader that refuses none is not reading it.
    assert!(refused > 0 || cases() == 0, "{target}: all {accepted} mutants accepted");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_are_seeded_varied_and_reproducible() {
        let original: Vec<u8> = (0..=255u8).collect();
        assert_eq!(mutant(&original, 7), mutant(&original, 7));
        let distinct: std::collections::HashSet<Vec<u8>> = (0..50).map(|s| mutant(&original, s)).collect();
        assert!(distinct.len() >= 45, "{} distinct of 50", distinct.len());
        assert!(distinct.iter().any(|m| m.len() < original.len()), "no truncation");
        assert!(distinct.iter().any(|m| m.len() > original.len()), "no duplicated chunk");
    }

    #[test]
    fn a_panicking_reader_fails_with_its_seed() {
        let caught = std::panic::catch_unwind(|| run("t", b"abc", "f", |_| panic!("boom")));
        let message = *caught.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("panicked the reader") && message.contains("fuzz::mutant"), "{message}");
        let unnamed = std::panic::catch_unwind(|| run("t", b"abc", "f", |_| Some("bad".into())));
        assert!(unnamed.is_err(), "an error without the file name passed");
    }
}

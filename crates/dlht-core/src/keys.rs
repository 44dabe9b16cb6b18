//! Order-preserving encoding of user keys into the RMI's f64 domain, and validation of key arrays.
//! The model learns one number line, so every key family must map onto it without reordering.
//!
//! How families order against each other:
//! - **numeric keys** (numbers, bigints) order numerically: a number is its own encoding, a bigint
//!   its value rounded to f64 (`5` and `5n` encode alike);
//! - **byte keys** (strings as UTF-8, byte arrays) order lexicographically by bytes: an
//!   order-preserving arithmetic code tuned for text (see [`crate::text_code`]), in `[0, 2^64)`;
//! - the two families share the f64 domain and **interleave**: a number and a string are not
//!   ordered against each other;
//! - encodings are monotone non-decreasing, not injective: byte keys sharing a long prefix (about 12
//!   letters of English, 13 digits, 6–7 arbitrary bytes: what fits in the 53-bit f64 mantissa), like
//!   bigints beyond 2^53 that round alike, share an encoded value.
//!   They are still stored and found exactly by the node, which compares real keys; only their
//!   placement on the ring coincides.

use crate::error::{Error, Result};
use crate::text_code;

/// Version of the key encoding: 1 kept a byte key's first 8 bytes, 2 is the text code. A key is
/// placed elsewhere under another version, so peers and data directories must agree on it.
pub const ENCODING_VERSION: u32 = 2;

/// A number key: itself, when finite.
pub fn encode_number(x: f64) -> Result<f64> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(Error::NonFiniteKey { index: 0, key: x })
    }
}

/// A bigint key: its value, rounded to the nearest f64 (monotone non-decreasing).
pub fn encode_i128(x: i128) -> f64 {
    x as f64
}

/// A byte key (a string's UTF-8 bytes): its order-preserving text code (see [`text_code`]), a
/// number in `[0, 2^64)`.
pub fn encode_bytes(bytes: &[u8]) -> f64 {
    text_code::encode(bytes)
}

/// Encodes byte keys packed in one buffer: key `i` is `data[offsets[i]..offsets[i + 1]]`.
/// `offsets` has one more entry than `out`, never decreases and stays within `data`.
pub fn encode_bytes_batch(data: &[u8], offsets: &[u32], out: &mut [f64]) -> Result<()> {
    encode_bytes_batch_by(encode_bytes, data, offsets, out)
}

/// [`encode_bytes_batch`] with `encode` as the code of a byte key (a model's, see
/// [`crate::Rmi::encode_bytes`]).
pub fn encode_bytes_batch_by(
    encode: impl Fn(&[u8]) -> f64,
    data: &[u8],
    offsets: &[u32],
    out: &mut [f64],
) -> Result<()> {
    if offsets.len() != out.len() + 1 {
        return Err(Error::InvalidArgument(format!(
            "{} offsets for {} keys: expected one more offset than keys",
            offsets.len(),
            out.len()
        )));
    }
    validate_offsets(data, offsets)?;
    for (slot, w) in out.iter_mut().zip(offsets.windows(2)) {
        *slot = encode(&data[w[0] as usize..w[1] as usize]);
    }
    Ok(())
}

/// Checks byte keys packed in one buffer: `offsets` is not empty, never decreases and stays
/// within `data`.
pub fn validate_offsets(data: &[u8], offsets: &[u32]) -> Result<()> {
    if offsets.is_empty() {
        return Err(Error::InvalidArgument(
            "offsets must hold at least the start of the first key".into(),
        ));
    }
    if let Some(i) = offsets.windows(2).position(|w| w[0] > w[1]) {
        return Err(Error::InvalidArgument(format!(
            "offsets decrease at index {}: {} > {}",
            i + 1,
            offsets[i],
            offsets[i + 1]
        )));
    }
    let last = offsets[offsets.len() - 1] as usize;
    if last > data.len() {
        return Err(Error::InvalidArgument(format!(
            "offset {last} is past the end of the {}-byte buffer",
            data.len()
        )));
    }
    Ok(())
}

/// Checks training keys: not empty, finite, ascending (duplicates allowed).
pub fn validate_sorted(keys: &[f64]) -> Result<()> {
    if keys.is_empty() {
        return Err(Error::EmptyKeys);
    }
    validate_finite(keys)?;
    match keys.windows(2).position(|w| w[1] < w[0]) {
        Some(i) => Err(Error::UnsortedKeys {
            index: i + 1,
            key: keys[i + 1],
        }),
        None => Ok(()),
    }
}

/// Checks that every key is finite, naming the first that is not.
pub fn validate_finite(keys: &[f64]) -> Result<()> {
    match keys.iter().position(|k| !k.is_finite()) {
        Some(index) => Err(Error::NonFiniteKey {
            index,
            key: keys[index],
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_their_own_encoding() {
        assert_eq!(encode_number(42.5), Ok(42.5));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                encode_number(bad).unwrap_err().code(),
                "ERR_DLHT_NON_FINITE_KEY"
            );
        }
    }

    #[test]
    fn bigints_keep_their_order() {
        let values = [i128::MIN, -(1 << 80), -1, 0, 5, 1 << 70, i128::MAX];
        let encoded: Vec<f64> = values.iter().map(|&v| encode_i128(v)).collect();
        assert!(encoded.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(encode_i128(5), 5.0);
    }

    #[test]
    fn bytes_keep_lexicographic_order() {
        let mut words = [
            "",
            "a",
            "a\0",
            "ab",
            "abc",
            "b",
            "zz",
            "\u{e9}t\u{e9}",
            "\u{ff}",
            "apple",
            "apples",
        ];
        words.sort();
        let encoded: Vec<f64> = words.iter().map(|w| encode_bytes(w.as_bytes())).collect();
        assert!(encoded.windows(2).all(|w| w[0] <= w[1]), "{encoded:?}");
        assert!(encode_bytes(&[1, 2]) < encode_bytes(&[1, 3]));
        assert!(encode_bytes(b"a") < encode_bytes(b"a\0"));
        assert!(encode_bytes(b"abcdefgh") < encode_bytes(b"abcdefghij"));
        let long = "internationalization".as_bytes();
        assert_eq!(
            encode_bytes(long),
            encode_bytes(&long[..16]),
            "a long shared prefix ties"
        );
    }

    #[test]
    fn batch_matches_single_and_checks_offsets() {
        let data = b"applebananacherry";
        let mut out = [0.0; 3];
        encode_bytes_batch(data, &[0, 5, 11, 17], &mut out).unwrap();
        assert_eq!(
            out,
            [
                encode_bytes(b"apple"),
                encode_bytes(b"banana"),
                encode_bytes(b"cherry")
            ]
        );
        let mut none = [];
        encode_bytes_batch(data, &[3], &mut none).unwrap();
        let err = |offsets: &[u32], out: &mut [f64]| {
            encode_bytes_batch(data, offsets, out).unwrap_err().code()
        };
        assert_eq!(err(&[0, 5, 11], &mut out), "ERR_DLHT_INVALID_ARGUMENT");
        assert_eq!(err(&[0, 5, 4, 17], &mut out), "ERR_DLHT_INVALID_ARGUMENT");
        assert_eq!(err(&[0, 5, 11, 18], &mut out), "ERR_DLHT_INVALID_ARGUMENT");
        assert_eq!(err(&[], &mut []), "ERR_DLHT_INVALID_ARGUMENT");
    }

    #[test]
    fn validation_names_the_first_bad_key() {
        assert_eq!(validate_sorted(&[]), Err(Error::EmptyKeys));
        assert_eq!(validate_sorted(&[1.0, 1.0, 2.0]), Ok(()));
        assert_eq!(
            validate_sorted(&[1.0, 3.0, 2.0]),
            Err(Error::UnsortedKeys { index: 2, key: 2.0 })
        );
        assert!(matches!(
            validate_sorted(&[1.0, f64::INFINITY]),
            Err(Error::NonFiniteKey { index: 1, .. })
        ));
        assert!(matches!(
            validate_finite(&[f64::NAN]),
            Err(Error::NonFiniteKey { index: 0, .. })
        ));
    }
}

//! Training on user keys of both families: the byte keys' code is learned from the byte keys
//! themselves, every key is encoded by it, and the RMI is fitted to the codes and carries the code.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::key_code::KeyCode;
use crate::keys::validate_finite;
use crate::rmi::{Rmi, RmiConfig};

/// A key code holds no trie node of fewer sample keys than this: fewer keys resolve no better
/// (measured on 100,000 keys: 4 keys a node give 99.9–100 % distinct codes, 16 give 99.4–100 %)
/// but grow the code several times.
pub const MIN_KEYS_PER_NODE: usize = 16;
/// Largest key code [`learn_key_code`] makes (coarser nodes until it fits): it travels in every
/// model file and rollout.
pub const MAX_LEARNED_CODE_BYTES: usize = 512 * 1024;

/// The key code of a sample of byte keys (any order, duplicates allowed): nodes of at least
/// [`MIN_KEYS_PER_NODE`] keys, or of as many more as keep the code within
/// [`MAX_LEARNED_CODE_BYTES`].
pub fn learn_key_code(byte_keys: &[&[u8]]) -> Result<KeyCode> {
    let mut sorted = byte_keys.to_vec();
    sorted.sort_unstable();
    let mut min_keys = MIN_KEYS_PER_NODE.max(sorted.len() / 16_384);
    loop {
        let code = KeyCode::learn(&sorted, min_keys)?;
        if code.to_bytes().len() <= MAX_LEARNED_CODE_BYTES {
            return Ok(code);
        }
        min_keys *= 2;
    }
}

/// Trains a model on `numbers` (numeric keys, encoded already) and `byte_keys` (any order): with a
/// key code learned from the byte keys when there are any, else as [`Rmi::train`].
pub fn train_with_key_code(config: RmiConfig, numbers: &[f64], byte_keys: &[&[u8]]) -> Result<Rmi> {
    validate_finite(numbers)?;
    if numbers.is_empty() && byte_keys.is_empty() {
        return Err(Error::EmptyKeys);
    }
    let code = if byte_keys.is_empty() {
        None
    } else {
        Some(Arc::new(learn_key_code(byte_keys)?))
    };
    let mut keys = numbers.to_vec();
    if let Some(code) = &code {
        keys.extend(byte_keys.iter().map(|key| code.encode(key)));
    }
    keys.sort_unstable_by(f64::total_cmp);
    Rmi::train(config, &keys)?.with_key_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_keys_get_a_code_and_numbers_keep_theirs() {
        let words: Vec<String> = (0..3000)
            .map(|i| format!("tenant-{}/orders/{i}", i % 5))
            .collect();
        let byte_keys: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        let rmi = train_with_key_code(RmiConfig::default(), &[1.0, 2.0], &byte_keys).unwrap();
        assert!(rmi.key_code().is_some());
        assert_eq!(rmi.num_keys(), 3002);
        let mut sorted = words.clone();
        sorted.sort();
        let positions: Vec<u64> = sorted
            .iter()
            .map(|w| rmi.predict(rmi.encode_bytes(w.as_bytes())))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] <= w[1]));
        let numeric = train_with_key_code(RmiConfig::default(), &[3.0, 1.0], &[]).unwrap();
        assert!(numeric.key_code().is_none());
        assert_eq!(
            train_with_key_code(RmiConfig::default(), &[], &[]).unwrap_err(),
            Error::EmptyKeys
        );
    }
}

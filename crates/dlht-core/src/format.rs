//! The compact binary model file: magic, format version, configuration, root and leaves as flat
//! little-endian fields, then a CRC32 of everything before it. Loading re-validates every part.
//!
//! ```text
//! "DLHT"  u16 version  u8 trained  u32 branching  u8 model_type  u8 stage1_model_type  u64 hash_space
//! trained only:  u64 num_keys, f64 key range min, max
//!                root:   u8 type, u8 key scale, f64 key_min, key_max, c0..c3,
//!                        u32 cells, u32 leaf_starts               (branching times)
//!                leaves: u8 type, f64 key_lo, key_hi, c0..c3, position_lo, position_hi,
//!                        max_error, mean_error, u64 num_keys        (branching times)
//!                u32 key code length (0: none), key code bytes (see `KeyCode::to_bytes`)
//! u32 crc32
//! ```
//!
//! Older files are still read. Version 2 files (before key codes) have no key code: their byte
//! keys are encoded by the fixed text code. Version 1 files (before the root had cells) also had
//! a root polynomial that picked the leaf directly, which is a root with one cell per leaf.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::key_code::KeyCode;
use crate::model::{KeyScale, ModelType};
use crate::rmi::{Leaf, Rmi, RmiConfig, RootModel};

pub const FORMAT_VERSION: u16 = 3;

/// Largest key code a model file may hold.
pub const MAX_KEY_CODE_BYTES: usize = 1 << 24;

/// The oldest version [`deserialize`] reads.
pub const OLDEST_READABLE_VERSION: u16 = 1;

const MAGIC: &[u8; 4] = b"DLHT";
const HEADER_LEN: usize = 4 + 2 + 1 + 4 + 1 + 1 + 8;
const KEYS_LEN: usize = 3 * 8;
const ROOT_LEN_V1: usize = 2 + 6 * 8;
const CELLS_LEN: usize = 4;
const LEAF_START_LEN: usize = 4;
const LEAF_LEN: usize = 1 + 10 * 8 + 8;
const KEY_CODE_LEN: usize = 4;
const CRC_LEN: usize = 4;

/// Size of `serialize(rmi)`, without building it.
pub fn encoded_len(rmi: &Rmi) -> usize {
    let body = if rmi.is_trained() {
        KEYS_LEN
            + root_len(FORMAT_VERSION, rmi.leaves().len())
            + rmi.leaves().len() * LEAF_LEN
            + KEY_CODE_LEN
            + key_code_bytes(rmi).len()
    } else {
        0
    };
    HEADER_LEN + body + CRC_LEN
}

pub fn serialize(rmi: &Rmi) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(rmi));
    let config = rmi.config();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(u8::from(rmi.is_trained()));
    // validate() caps the branching factor at 10^6, so it fits.
    out.extend_from_slice(&(config.branching_factor as u32).to_le_bytes());
    out.push(model_type_byte(config.model_type));
    out.push(model_type_byte(config.stage1_model_type));
    out.extend_from_slice(&config.hash_space_size.to_le_bytes());
    if rmi.is_trained() {
        let put = |out: &mut Vec<u8>, values: &[f64]| {
            for value in values {
                out.extend_from_slice(&value.to_le_bytes());
            }
        };
        out.extend_from_slice(&rmi.num_keys().to_le_bytes());
        let (key_min, key_max) = rmi.key_range();
        put(&mut out, &[key_min, key_max]);
        let root = rmi.root();
        out.push(model_type_byte(root.model_type));
        out.push(match root.key_scale {
            KeyScale::Linear => 0,
            KeyScale::Log => 1,
        });
        put(&mut out, &[root.key_min, root.key_max]);
        put(&mut out, &root.coefficients);
        out.extend_from_slice(&root.cells.to_le_bytes());
        for start in &root.leaf_starts {
            out.extend_from_slice(&start.to_le_bytes());
        }
        for leaf in rmi.leaves() {
            out.push(model_type_byte(leaf.model_type));
            put(&mut out, &[leaf.key_lo, leaf.key_hi]);
            put(&mut out, &leaf.coefficients);
            put(
                &mut out,
                &[
                    leaf.position_lo,
                    leaf.position_hi,
                    leaf.max_error,
                    leaf.mean_error,
                ],
            );
            out.extend_from_slice(&leaf.num_keys.to_le_bytes());
        }
        let code = key_code_bytes(rmi);
        out.extend_from_slice(&(code.len() as u32).to_le_bytes());
        out.extend_from_slice(&code);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a model file. Damage (truncation, bad magic, bad checksum, invalid parts) is
/// [`Error::CorruptModel`]; a file of another format version is [`Error::UnsupportedFormatVersion`].
/// The version is read before the checksum, whose place a future version may change.
pub fn deserialize(bytes: &[u8]) -> Result<Rmi> {
    if bytes.len() < HEADER_LEN + CRC_LEN {
        return Err(corrupt(format!(
            "{} bytes is too short for a model file",
            bytes.len()
        )));
    }
    let mut reader = Reader { bytes, at: 0 };
    if reader.field::<4>()? != *MAGIC {
        return Err(corrupt("not a dlht model (bad magic)".into()));
    }
    let version = u16::from_le_bytes(reader.field()?);
    if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(Error::UnsupportedFormatVersion(version));
    }
    let (content, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    if crc32fast::hash(content).to_le_bytes() != crc {
        return Err(corrupt("checksum mismatch".into()));
    }
    let trained = reader.u8()?;
    let config = RmiConfig {
        branching_factor: u32::from_le_bytes(reader.field()?) as usize,
        model_type: reader.model_type()?,
        stage1_model_type: reader.model_type()?,
        hash_space_size: reader.u64()?,
    };
    config
        .validate()
        .map_err(|err| corrupt(format!("invalid configuration: {err}")))?;
    let expected = match trained {
        0 => HEADER_LEN + CRC_LEN,
        1 => {
            let fixed = HEADER_LEN
                + KEYS_LEN
                + root_len(version, config.branching_factor)
                + config.branching_factor * LEAF_LEN;
            fixed + key_code_len(bytes, version, fixed)? + CRC_LEN
        }
        other => return Err(corrupt(format!("invalid trained flag {other}"))),
    };
    // Checked before allocating leaves, so a forged branching factor cannot cost memory.
    if bytes.len() != expected {
        return Err(corrupt(format!(
            "{} bytes where the header implies {expected}",
            bytes.len()
        )));
    }
    if trained == 0 {
        return Rmi::untrained(config);
    }
    let num_keys = reader.u64()?;
    let key_range = (reader.f64()?, reader.f64()?);
    let mut root = RootModel {
        model_type: reader.model_type()?,
        key_scale: match reader.u8()? {
            0 => KeyScale::Linear,
            1 => KeyScale::Log,
            other => return Err(corrupt(format!("invalid key scale byte {other}"))),
        },
        key_min: reader.f64()?,
        key_max: reader.f64()?,
        coefficients: reader.f64s()?,
        // Version 1: one cell per leaf.
        cells: config.branching_factor as u32,
        leaf_starts: (0..config.branching_factor as u32).collect(),
    };
    if version >= 2 {
        root.cells = u32::from_le_bytes(reader.field()?);
        root.leaf_starts = (0..config.branching_factor)
            .map(|_| Ok(u32::from_le_bytes(reader.field()?)))
            .collect::<Result<Vec<_>>>()?;
    }
    let leaves = (0..config.branching_factor)
        .map(|_| {
            Ok(Leaf {
                model_type: reader.model_type()?,
                key_lo: reader.f64()?,
                key_hi: reader.f64()?,
                coefficients: reader.f64s()?,
                position_lo: reader.f64()?,
                position_hi: reader.f64()?,
                max_error: reader.f64()?,
                mean_error: reader.f64()?,
                num_keys: reader.u64()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let key_code = if version >= 3 {
        let len = u32::from_le_bytes(reader.field()?) as usize;
        let code = reader.bytes(len)?;
        (len > 0)
            .then(|| KeyCode::from_bytes(code).map(Arc::new))
            .transpose()?
    } else {
        None
    };
    Rmi::from_parts(config, root, leaves, num_keys, key_range)?.with_key_code(key_code)
}

/// The key code's bytes in a file; empty when the model has none.
fn key_code_bytes(rmi: &Rmi) -> Vec<u8> {
    rmi.key_code().map_or_else(Vec::new, |code| code.to_bytes())
}

/// Bytes of the key code section of a file of `version` whose fixed part ends at `fixed`.
fn key_code_len(bytes: &[u8], version: u16, fixed: usize) -> Result<usize> {
    if version < 3 {
        return Ok(0);
    }
    let len = bytes
        .get(fixed..fixed + KEY_CODE_LEN)
        .map(|field| u32::from_le_bytes(field.try_into().expect("4 bytes")) as usize)
        .ok_or_else(|| corrupt(format!("{} bytes is too short for its header", bytes.len())))?;
    if len > MAX_KEY_CODE_BYTES {
        return Err(corrupt(format!("a key code of {len} bytes")));
    }
    Ok(KEY_CODE_LEN + len)
}

/// Bytes of the root in a file of `version`.
fn root_len(version: u16, branching_factor: usize) -> usize {
    if version == 1 {
        ROOT_LEN_V1
    } else {
        ROOT_LEN_V1 + CELLS_LEN + branching_factor * LEAF_START_LEN
    }
}

fn corrupt(reason: String) -> Error {
    Error::CorruptModel(reason)
}

fn model_type_byte(model_type: ModelType) -> u8 {
    match model_type {
        ModelType::Linear => 0,
        ModelType::Cubic => 1,
    }
}

/// Little-endian cursor over the file; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn field<const N: usize>(&mut self) -> Result<[u8; N]> {
        let chunk = self
            .bytes
            .get(self.at..self.at + N)
            .and_then(|chunk| chunk.try_into().ok())
            .ok_or_else(|| corrupt(format!("truncated at byte {}", self.at)))?;
        self.at += N;
        Ok(chunk)
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8]> {
        let chunk = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or_else(|| corrupt(format!("truncated at byte {}", self.at)))?;
        self.at += n;
        Ok(chunk)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.field::<1>()?[0])
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.field()?))
    }

    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.field()?))
    }

    fn f64s(&mut self) -> Result<[f64; 4]> {
        Ok([self.f64()?, self.f64()?, self.f64()?, self.f64()?])
    }

    fn model_type(&mut self) -> Result<ModelType> {
        match self.u8()? {
            0 => Ok(ModelType::Linear),
            1 => Ok(ModelType::Cubic),
            other => Err(corrupt(format!("invalid model type byte {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trained() -> Rmi {
        let keys: Vec<f64> = (0..2000).map(|i| f64::from(i).ln_1p()).collect();
        let config = RmiConfig {
            branching_factor: 16,
            model_type: ModelType::Cubic,
            ..RmiConfig::default()
        };
        Rmi::train(config, &keys).unwrap()
    }

    #[test]
    fn round_trips_bit_exactly() {
        for rmi in [trained(), Rmi::untrained(RmiConfig::default()).unwrap()] {
            let bytes = serialize(&rmi);
            assert_eq!(bytes.len(), encoded_len(&rmi));
            let copy = deserialize(&bytes).unwrap();
            assert_eq!(copy, rmi);
            assert_eq!(serialize(&copy), bytes);
        }
    }

    #[test]
    fn layout_starts_with_magic_and_version() {
        let bytes = serialize(&trained());
        assert_eq!(&bytes[..4], b"DLHT");
        assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), FORMAT_VERSION);
        assert_eq!(
            bytes.len(),
            HEADER_LEN
                + KEYS_LEN
                + root_len(FORMAT_VERSION, 16)
                + 16 * LEAF_LEN
                + KEY_CODE_LEN
                + CRC_LEN
        );
    }

    #[test]
    fn damage_is_reported() {
        let bytes = serialize(&trained());
        let code = |b: &[u8]| deserialize(b).unwrap_err().code();
        assert_eq!(code(&[]), "ERR_DLHT_CORRUPT_MODEL");
        assert_eq!(code(&bytes[..bytes.len() - 9]), "ERR_DLHT_CORRUPT_MODEL");
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(code(&bad), "ERR_DLHT_CORRUPT_MODEL");
        let mut bad = bytes.clone();
        bad[bytes.len() / 2] ^= 0x40;
        assert_eq!(code(&bad), "ERR_DLHT_CORRUPT_MODEL");
        let mut future = bytes.clone();
        future[4] = 0xff;
        assert_eq!(
            deserialize(&future).unwrap_err(),
            Error::UnsupportedFormatVersion(0xff)
        );
    }

    /// Recomputes the CRC of a file whose content was edited.
    fn reseal(bytes: &mut [u8]) {
        let end = bytes.len() - CRC_LEN;
        let crc = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
    }

    /// `bytes` (a current file of a model without a key code) rewritten as format version 2.
    fn as_version_2(bytes: &[u8]) -> Vec<u8> {
        let code_at = bytes.len() - CRC_LEN - KEY_CODE_LEN;
        assert_eq!(
            bytes[code_at..code_at + KEY_CODE_LEN],
            [0; 4],
            "a model without a code"
        );
        let mut old = bytes[..code_at].to_vec();
        old.extend_from_slice(&[0; CRC_LEN]);
        old[4..6].copy_from_slice(&2u16.to_le_bytes());
        reseal(&mut old);
        old
    }

    /// `bytes` (a current file) rewritten as format version 1: no cells, CRC resealed.
    fn as_version_1(bytes: &[u8], branching_factor: usize) -> Vec<u8> {
        let bytes = as_version_2(bytes);
        let cells_at = HEADER_LEN + KEYS_LEN + ROOT_LEN_V1;
        let mut old = bytes[..cells_at].to_vec();
        old.extend_from_slice(&bytes[cells_at + root_len(2, branching_factor) - ROOT_LEN_V1..]);
        old[4..6].copy_from_slice(&1u16.to_le_bytes());
        reseal(&mut old);
        old
    }

    fn with_code() -> Rmi {
        let words: Vec<String> = (0..500).map(|i| format!("user:{:08}", i * 7)).collect();
        let sample: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        let code = Arc::new(KeyCode::learn(&sample, 4).unwrap());
        let keys: Vec<f64> = sample.iter().map(|k| code.encode(k)).collect();
        Rmi::train(RmiConfig::default(), &keys)
            .unwrap()
            .with_key_code(Some(code))
            .unwrap()
    }

    #[test]
    fn the_key_code_travels_in_the_file() {
        let rmi = with_code();
        let bytes = serialize(&rmi);
        assert_eq!(bytes.len(), encoded_len(&rmi));
        let copy = deserialize(&bytes).unwrap();
        assert_eq!(copy.key_code(), rmi.key_code());
        assert_eq!(
            copy.encode_bytes(b"user:00000042"),
            rmi.encode_bytes(b"user:00000042")
        );
        // A damaged code is found even under a valid checksum.
        let code_len = rmi.key_code().unwrap().to_bytes().len();
        let mut bad = bytes.clone();
        let last_code_byte = bytes.len() - CRC_LEN - 1;
        bad[last_code_byte] = 0xff;
        reseal(&mut bad);
        assert_eq!(
            deserialize(&bad).unwrap_err().code(),
            "ERR_DLHT_CORRUPT_MODEL"
        );
        // So is a code length that disagrees with the file's.
        let mut bad = bytes.clone();
        let len_at = bytes.len() - CRC_LEN - code_len - KEY_CODE_LEN;
        bad[len_at..len_at + 4].copy_from_slice(&(code_len as u32 + 1).to_le_bytes());
        reseal(&mut bad);
        assert_eq!(
            deserialize(&bad).unwrap_err().code(),
            "ERR_DLHT_CORRUPT_MODEL"
        );
        bad[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        reseal(&mut bad);
        assert_eq!(
            deserialize(&bad).unwrap_err().code(),
            "ERR_DLHT_CORRUPT_MODEL"
        );
    }

    #[test]
    fn version_2_files_load_without_a_key_code() {
        let rmi = trained();
        let old = as_version_2(&serialize(&rmi));
        assert_eq!(old.len(), serialize(&rmi).len() - KEY_CODE_LEN);
        let loaded = deserialize(&old).unwrap();
        assert_eq!(loaded, rmi);
        assert!(loaded.key_code().is_none());
    }

    #[test]
    fn version_1_files_load_with_one_cell_per_leaf() {
        // A version 1 root's polynomial picked the leaf itself: a root with one cell per leaf.
        let rmi = trained();
        let mut root = rmi.root().clone();
        root.cells = 16;
        root.leaf_starts = (0..16).collect();
        let v1 = Rmi::from_parts(
            *rmi.config(),
            root,
            rmi.leaves().to_vec(),
            rmi.num_keys(),
            rmi.key_range(),
        )
        .unwrap();
        let old = as_version_1(&serialize(&v1), 16);
        assert_eq!(old.len(), serialize(&v1).len() - 4 - 16 * 4 - KEY_CODE_LEN);
        let loaded = deserialize(&old).unwrap();
        assert_eq!(loaded, v1);
        // Saved again, it is a current file.
        assert_eq!(
            u16::from_le_bytes(serialize(&loaded)[4..6].try_into().unwrap()),
            FORMAT_VERSION
        );
    }

    #[test]
    fn unknown_versions_are_named() {
        let bytes = serialize(&trained());
        for version in [0u16, FORMAT_VERSION + 1] {
            let mut other = bytes.clone();
            other[4..6].copy_from_slice(&version.to_le_bytes());
            let err = deserialize(&other).unwrap_err();
            assert_eq!(err, Error::UnsupportedFormatVersion(version));
            assert_eq!(err.code(), "ERR_DLHT_UNSUPPORTED_FORMAT_VERSION");
        }
    }

    #[test]
    fn a_valid_checksum_does_not_excuse_invalid_parts() {
        // Forge a file whose checksum matches but whose first leaf has a negative slope.
        let mut bytes = serialize(&trained());
        let slope_at = HEADER_LEN + KEYS_LEN + root_len(FORMAT_VERSION, 16) + 1 + 2 * 8 + 8;
        bytes[slope_at..slope_at + 8].copy_from_slice(&(-1.0f64).to_le_bytes());
        let end = bytes.len() - CRC_LEN;
        let crc = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
        assert!(
            matches!(deserialize(&bytes), Err(Error::CorruptModel(reason)) if reason.contains("leaf 0"))
        );
        // Or whose root sends a leaf's cells before the previous leaf's.
        let mut bytes = serialize(&trained());
        let second_start = HEADER_LEN + KEYS_LEN + ROOT_LEN_V1 + CELLS_LEN + LEAF_START_LEN;
        bytes[second_start..second_start + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let end = bytes.len() - CRC_LEN;
        let crc = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
        assert!(
            matches!(deserialize(&bytes), Err(Error::CorruptModel(reason)) if reason.contains("leaf starts"))
        );
    }
}

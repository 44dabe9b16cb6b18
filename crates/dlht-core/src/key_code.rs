//! A byte-key code learned from a training sample, carried in the model: an order-preserving
//! arithmetic code whose symbol probabilities are the sample's. The fixed text code spends its 53
//! bits on the bytes keys share (`user:`, `https://`, a date); this one spends them where keys differ.
//!
//! The sample's keys form a trie, pruned to the nodes that at least `min_keys` sample keys pass
//! through. At a node, the next byte (or the key's end) narrows the key's interval by its share of
//! the sample keys there, mixed with a little of the fixed text code's distribution so that bytes
//! the sample never had there keep an interval too. A run of bytes every sample key of a node
//! shares costs ~0.001 bit a byte. Once a key leaves the trie, the fixed text code codes the rest
//! within the interval reached. So the code is the sample's CDF down to groups of `min_keys` keys,
//! and the text code's smooth order inside them.
//!
//! Sub-intervals are in symbol order (end mark first, then bytes 0..=255) at every step, so the code
//! keeps the bytes' order for every key, sampled or not.

use std::cmp::Ordering;

use crate::error::{Error, Result};
use crate::text_code::{code_after, cumulative, END, SYMBOLS, TOTAL_BITS};

/// Most nodes a code file may declare.
pub const MAX_NODES: usize = 1 << 20;
/// Longest run a node keeps, and how deep the trie goes: keys are coded past it by the text code.
pub const MAX_DEPTH: usize = 1024;
/// Weight of the fixed text code's distribution at a branching node, in sample keys: a node of
/// `n` keys gives the sample's counts `n / (n + 1)` of its interval, bytes it never saw the rest.
const PRIOR_KEYS: u128 = 1;
/// A run's byte weighs its node's keys this many times: leaving a run costs ~10 bits more than
/// leaving a branch, following it ~0.001 bit.
const RUN_WEIGHT: u64 = 1024;
/// No child node: the rest of the key is coded by the text code.
const NO_CHILD: u32 = u32::MAX;

/// A learned order-preserving code of byte keys (see the module doc). Immutable once built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyCode {
    /// The pruned trie, each node before its children; node 0 is the root (no nodes: the text code).
    nodes: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    /// Bytes every sample key through this node has next.
    run: Vec<u8>,
    /// The symbols sample keys have after the run, ascending (0 the end mark, `byte + 1` a byte).
    branches: Vec<Branch>,
    /// Sum of the branches' counts.
    total: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Branch {
    symbol: u16,
    count: u32,
    child: u32,
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn symbol_at(key: &[u8], at: usize) -> usize {
    key.get(at).map_or(END, |&byte| byte as usize + 1)
}

/// An interval being narrowed: `[low, low + width)` of `[0, 2^64)`.
struct Interval {
    low: u64,
    width: u128,
}

impl Interval {
    /// Narrows to the sub-interval of `symbol` under the node's counts with [`PRIOR_KEYS`] keys
    /// spread as the text code spreads them: `below` and `through` are the counts of the symbols
    /// before `symbol` and up to it, out of `total`. Returns false once the interval is empty.
    fn narrow(
        &mut self,
        previous: Option<u8>,
        symbol: usize,
        (below, through, total): (u64, u64, u64),
    ) -> bool {
        let scale = (total as u128 + PRIOR_KEYS) << TOTAL_BITS;
        let at = |count: u64, symbol: usize| {
            let mixed =
                ((count as u128) << TOTAL_BITS) + PRIOR_KEYS * cumulative(previous, symbol) as u128;
            // width <= 2^64, mixed <= scale < 2^59 (total < 2^42): no overflow.
            self.width * mixed / scale
        };
        let start = at(below, symbol);
        let end = at(through, symbol + 1);
        // start < width <= 2^64 - low, so low stays below 2^64.
        self.low += start as u64;
        self.width = end - start;
        self.width > 0
    }

    /// The interval's low end once `key[from..]` is coded by the text code inside it.
    fn finish(&self, key: &[u8], from: usize) -> f64 {
        let rest = code_after(from.checked_sub(1).map(|i| key[i]), &key[from..]);
        (self.low + ((self.width * rest as u128) >> 64) as u64) as f64
    }
}

impl KeyCode {
    /// Learns a code from a sample sorted ascending (duplicates allowed), keeping the trie nodes
    /// that at least `min_keys` (≥ 1) sample keys pass through.
    /// Errors: an unsorted sample, `min_keys` 0, or a trie of more than [`MAX_NODES`] nodes.
    pub fn learn(sorted_sample: &[&[u8]], min_keys: usize) -> Result<KeyCode> {
        if let Some(i) = sorted_sample.windows(2).position(|w| w[1] < w[0]) {
            return Err(Error::InvalidArgument(format!(
                "the key sample must be sorted ascending: key {} is smaller than the key before it",
                i + 1
            )));
        }
        if min_keys == 0 {
            return Err(Error::InvalidArgument(
                "a key code's nodes need at least 1 key".into(),
            ));
        }
        if sorted_sample.len() > u32::MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "a key sample has at most {} keys",
                u32::MAX
            )));
        }
        let mut code = KeyCode { nodes: Vec::new() };
        if sorted_sample.len() >= min_keys {
            code.build(sorted_sample, 0, min_keys);
        }
        if code.nodes.len() > MAX_NODES {
            return Err(Error::InvalidArgument(format!(
                "the key sample makes {} trie nodes, more than {MAX_NODES}: raise min_keys",
                code.nodes.len()
            )));
        }
        Ok(code)
    }

    /// Adds the node of `keys` (sorted, sharing their first `depth` bytes) and, first in order,
    /// its children; returns its index.
    fn build(&mut self, keys: &[&[u8]], depth: usize, min_keys: usize) -> u32 {
        let index = self.nodes.len();
        let shared = common_prefix(keys[0], keys[keys.len() - 1]).min(MAX_DEPTH);
        let branch_at = shared.max(depth);
        self.nodes.push(Node {
            run: keys[0][depth..branch_at].to_vec(),
            branches: Vec::new(),
            total: keys.len() as u64,
        });
        let mut from = 0;
        while from < keys.len() {
            let symbol = symbol_at(keys[from], branch_at);
            let to = from + keys[from..].partition_point(|key| symbol_at(key, branch_at) == symbol);
            let deep_enough = symbol != END && branch_at < MAX_DEPTH && to - from >= min_keys;
            let child = if deep_enough {
                self.build(&keys[from..to], branch_at + 1, min_keys)
            } else {
                NO_CHILD
            };
            self.nodes[index].branches.push(Branch {
                symbol: symbol as u16,
                count: (to - from).min(u32::MAX as usize) as u32,
                child,
            });
            from = to;
        }
        let node = &mut self.nodes[index];
        node.total = node.branches.iter().map(|b| b.count as u64).sum();
        index as u32
    }

    /// Number of trie nodes (0: the code is the fixed text code).
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The code of a key, in `[0, 2^64)`, non-decreasing as the key grows.
    pub fn encode(&self, key: &[u8]) -> f64 {
        let mut interval = Interval {
            low: 0,
            width: 1 << 64,
        };
        if self.nodes.is_empty() {
            return interval.finish(key, 0);
        }
        let mut node = &self.nodes[0];
        let mut at = 0;
        loop {
            for &expected in &node.run {
                let symbol = symbol_at(key, at);
                let expected = expected as usize + 1;
                let all = node.total * RUN_WEIGHT;
                let counts = match symbol.cmp(&expected) {
                    Ordering::Less => (0, 0, all),
                    Ordering::Equal => (0, all, all),
                    Ordering::Greater => (all, all, all),
                };
                let open = interval.narrow(previous(key, at), symbol, counts);
                at += 1;
                if symbol != expected || !open {
                    return self.stop(&interval, key, at, symbol);
                }
            }
            let symbol = symbol_at(key, at);
            let found = node
                .branches
                .partition_point(|b| (b.symbol as usize) < symbol);
            let below: u64 = node.branches[..found].iter().map(|b| b.count as u64).sum();
            let branch = node
                .branches
                .get(found)
                .filter(|b| b.symbol as usize == symbol);
            let through = below + branch.map_or(0, |b| b.count as u64);
            let counts = (below, through, node.total);
            let open = interval.narrow(previous(key, at), symbol, counts);
            at += 1;
            match branch {
                Some(b) if open && b.child != NO_CHILD => node = &self.nodes[b.child as usize],
                _ => return self.stop(&interval, key, at, symbol),
            }
        }
    }

    /// The code's bytes, in unsigned LEB128 varints: the node count, then per node its run length
    /// and run, its branch count and per branch the symbol, the count and the child's distance
    /// ahead (0: none).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, self.nodes.len() as u64);
        for (index, node) in self.nodes.iter().enumerate() {
            put_varint(&mut out, node.run.len() as u64);
            out.extend_from_slice(&node.run);
            put_varint(&mut out, node.branches.len() as u64);
            for branch in &node.branches {
                put_varint(&mut out, branch.symbol as u64);
                put_varint(&mut out, branch.count as u64);
                let ahead = if branch.child == NO_CHILD {
                    0
                } else {
                    branch.child as usize - index
                };
                put_varint(&mut out, ahead as u64);
            }
        }
        out
    }

    /// Reads [`KeyCode::to_bytes`] output. Anything a code never holds is [`Error::CorruptModel`]:
    /// too many nodes, a run past [`MAX_DEPTH`], no branches, symbols out of order or past the
    /// end mark, a zero count or a total past `u32::MAX`, a child that is not a later node (so
    /// coding always ends) or follows the end mark, unused bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<KeyCode> {
        let mut reader = Reader { bytes, at: 0 };
        let count = reader.varint()? as usize;
        // Every node takes at least 2 bytes: a forged count cannot cost memory.
        if count > MAX_NODES || count > bytes.len() / 2 {
            return Err(corrupt(format!("{count} nodes in {} bytes", bytes.len())));
        }
        let mut nodes = Vec::with_capacity(count);
        for index in 0..count {
            let run_len = reader.varint()? as usize;
            if run_len > MAX_DEPTH {
                return Err(corrupt(format!(
                    "node {index} has a run of {run_len} bytes"
                )));
            }
            let run = reader.take(run_len)?.to_vec();
            let branch_count = reader.varint()? as usize;
            if branch_count == 0 || branch_count > SYMBOLS {
                return Err(corrupt(format!("node {index} has {branch_count} branches")));
            }
            let mut branches: Vec<Branch> = Vec::with_capacity(branch_count);
            for _ in 0..branch_count {
                let (symbol, count_here, ahead) =
                    (reader.varint()?, reader.varint()?, reader.varint()?);
                let ordered = branches
                    .last()
                    .is_none_or(|last| (last.symbol as u64) < symbol);
                let child_ok =
                    ahead == 0 || (symbol != END as u64 && ahead < (count - index) as u64);
                if !ordered
                    || symbol >= SYMBOLS as u64
                    || count_here == 0
                    || count_here > u32::MAX as u64
                    || !child_ok
                {
                    return Err(corrupt(format!(
                        "node {index} has an invalid branch (symbol {symbol}, {count_here} keys, child {ahead} ahead)"
                    )));
                }
                branches.push(Branch {
                    symbol: symbol as u16,
                    count: count_here as u32,
                    child: if ahead == 0 {
                        NO_CHILD
                    } else {
                        (index as u64 + ahead) as u32
                    },
                });
            }
            let total: u64 = branches.iter().map(|b| b.count as u64).sum();
            if total > u32::MAX as u64 {
                return Err(corrupt(format!("node {index} counts {total} keys")));
            }
            nodes.push(Node {
                run,
                branches,
                total,
            });
        }
        if reader.at != bytes.len() {
            return Err(corrupt(format!(
                "{} bytes after the nodes",
                bytes.len() - reader.at
            )));
        }
        Ok(KeyCode { nodes })
    }

    /// The code once `symbol` (just coded, before `key[at..]`) leaves the trie.
    fn stop(&self, interval: &Interval, key: &[u8], at: usize, symbol: usize) -> f64 {
        if symbol == END || interval.width == 0 {
            interval.low as f64
        } else {
            interval.finish(key, at)
        }
    }
}

fn previous(key: &[u8], at: usize) -> Option<u8> {
    at.checked_sub(1).map(|i| key[i])
}

fn corrupt(reason: String) -> Error {
    Error::CorruptModel(format!("key code: {reason}"))
}

/// Little-endian cursor over a code's bytes; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let chunk = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or_else(|| corrupt(format!("truncated at byte {}", self.at)))?;
        self.at += n;
        Ok(chunk)
    }

    /// An unsigned LEB128 number of at most 5 bytes (the code's numbers fit 32 bits).
    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt(format!(
            "a number longer than 5 bytes ends at byte {}",
            self.at
        )))
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(keys: &[&str], min_keys: usize) -> KeyCode {
        let mut sample: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        sample.sort();
        KeyCode::learn(&sample, min_keys).unwrap()
    }

    fn ascending(code: &KeyCode, keys: &mut [&[u8]]) -> Vec<f64> {
        keys.sort();
        let encoded: Vec<f64> = keys.iter().map(|k| code.encode(k)).collect();
        assert!(encoded.windows(2).all(|w| w[0] < w[1]), "{encoded:?}");
        encoded
    }

    #[test]
    fn shared_runs_become_one_node() {
        let code = learned(&["user:0001", "user:0002", "user:0103", "user:0104"], 2);
        assert_eq!(code.nodes[0].run, b"user:0");
        assert_eq!(code.nodes[0].branches.len(), 2);
        assert_eq!(code.nodes(), 3);
    }

    #[test]
    fn resolves_keys_past_a_long_shared_prefix() {
        let urls: Vec<String> = (0..2000)
            .map(|i| format!("https://host{}.example.org/items/{}", i % 7, i * 7919))
            .collect();
        let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
        let code = learned(&refs, 16);
        let mut keys: Vec<&[u8]> = urls.iter().map(|k| k.as_bytes()).collect();
        ascending(&code, &mut keys);
        // The text code alone ties them all: 26 bytes are shared.
        assert_eq!(code_after(None, keys[0]), code_after(None, keys[1999]));
    }

    #[test]
    fn unsampled_keys_keep_their_order() {
        let code = learned(&["b", "bb", "bb", "c", "d", "dz", "dzz"], 2);
        let mut keys: Vec<&[u8]> = vec![
            b"",
            b"\0",
            b"a",
            b"b",
            b"b\0",
            b"ba",
            b"bb",
            b"bba",
            b"bc",
            b"c",
            b"cz",
            b"d",
            b"dy",
            b"dz",
            b"dz\0",
            b"dzz",
            b"dzzz",
            b"e",
            b"\xff\xff",
        ];
        let encoded = ascending(&code, &mut keys);
        assert_eq!(encoded[0], 0.0);
    }

    #[test]
    fn without_nodes_it_is_the_text_code() {
        for code in [learned(&[], 1), learned(&["a", "b"], 3)] {
            assert_eq!(code.nodes(), 0);
            assert_eq!(
                code.encode(b"counter"),
                crate::text_code::encode(b"counter")
            );
        }
    }

    #[test]
    fn bytes_round_trip_and_damage_is_an_error() {
        let code = learned(
            &["alpha", "alps", "beta", "bet", "gamma", "game", "gamut"],
            2,
        );
        let bytes = code.to_bytes();
        assert_eq!(KeyCode::from_bytes(&bytes).unwrap(), code);
        let corrupt = |bytes: &[u8]| KeyCode::from_bytes(bytes).unwrap_err().code();
        assert_eq!(corrupt(&bytes[..bytes.len() - 1]), "ERR_DLHT_CORRUPT_MODEL");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(corrupt(&longer), "ERR_DLHT_CORRUPT_MODEL");
        assert_eq!(corrupt(&[0xff, 0xff, 0xff, 0x7f]), "ERR_DLHT_CORRUPT_MODEL");
        // The root's first branch made to point past the last node.
        let mut past = bytes.clone();
        let first_child = 1 + 1 + code.nodes[0].run.len() + 1 + 2;
        assert_eq!(past[first_child], 1);
        past[first_child] = code.nodes() as u8;
        assert_eq!(corrupt(&past), "ERR_DLHT_CORRUPT_MODEL");
    }

    #[test]
    fn learning_checks_its_input() {
        let error = |sample: &[&[u8]], min_keys| KeyCode::learn(sample, min_keys).unwrap_err();
        assert!(matches!(error(&[b"b", b"a"], 2), Error::InvalidArgument(_)));
        assert!(matches!(error(&[b"a"], 0), Error::InvalidArgument(_)));
    }
}

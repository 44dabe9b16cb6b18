//! An order-preserving arithmetic code that packs byte keys (mostly text) into the 53 bits an f64
//! keeps. Keeping the raw first 8 bytes resolves only ~6.6 of them, so words that share their first
//! 7 letters (496 `counter…` words in an English word list) land on one ring position; this code
//! resolves about 12 letters of English words, 13 digits of a number and at least 4 bytes of
//! anything.
//!
//! A key is coded as an interval of `[0, 2^64)`: each byte, then an end mark, narrows the interval
//! to the sub-interval of that symbol, and the key encodes as the interval's low end. Sub-intervals
//! are laid out in symbol order (end mark first, then bytes 0..=255), so the code keeps the bytes'
//! lexicographic order; coding any prefix-conditioned distribution keeps it too. The distribution
//! here is fixed (not learned, so every node and every model version encode alike): the next byte's
//! class is predicted from the previous byte's class, and letters within their class by their
//! frequency in English text.

/// Sub-interval widths in each context sum to this (a power of two, so scaling is a shift).
pub(crate) const TOTAL_BITS: u32 = 16;
const TOTAL: u64 = 1 << TOTAL_BITS;
/// The narrowest sub-interval, 2^-12 of its interval: no byte costs more than 12 bits, so any key
/// resolves at least its first 4 bytes (for this, typical text pays ~0.1 bit per letter).
const FLOOR: u64 = 16;
/// The end mark, then bytes 0..=255 as symbols 1..=256.
pub(crate) const SYMBOLS: usize = 257;
pub(crate) const END: usize = 0;

/// Byte classes; the previous byte's class is the context of the next one.
const START: usize = 0;
const LOWER: usize = 1;
const UPPER: usize = 2;
const DIGIT: usize = 3;
const PUNCT: usize = 4;
const OTHER: usize = 5;
const CLASSES: usize = 6;

const fn class_of(byte: u8) -> usize {
    match byte {
        b'a'..=b'z' => LOWER,
        b'A'..=b'Z' => UPPER,
        b'0'..=b'9' => DIGIT,
        b' '..=b'~' => PUNCT,
        _ => OTHER,
    }
}

/// Weight of the end mark and of each byte class (in class order LOWER..OTHER), per context.
/// Text stays in its class: lowercase follows lowercase, digits follow digits, UTF-8 continues.
const CONTEXT_WEIGHTS: [[u64; CLASSES]; CLASSES] = [
    // end, lower, upper, digit, punct, other
    [2, 80, 40, 40, 20, 18],   // START
    [10, 176, 3, 3, 6, 2],     // LOWER
    [12, 90, 60, 12, 16, 10],  // UPPER
    [20, 16, 8, 130, 18, 8],   // DIGIT
    [8, 80, 30, 50, 20, 12],   // PUNCT
    [10, 30, 10, 10, 10, 130], // OTHER
];

/// Letter frequencies in English text, per mille, a to z (rare letters rounded up to 1).
const LETTER_WEIGHTS: [u64; 26] = [
    82, 15, 28, 43, 127, 22, 20, 61, 70, 2, 8, 40, 24, 67, 75, 19, 1, 60, 63, 91, 28, 10, 24, 2,
    20, 1,
];

/// Separators common in keys (`user:42`, `a/b`, `2024-01-01`, `first last`) weigh three others.
const fn within_class_weight(byte: u8) -> u64 {
    match byte {
        b'a'..=b'z' => LETTER_WEIGHTS[(byte - b'a') as usize],
        b'A'..=b'Z' => LETTER_WEIGHTS[(byte - b'A') as usize],
        b' ' | b'-' | b'_' | b'.' | b'/' | b':' => 3,
        _ => 1,
    }
}

/// `CUMULATIVE[context][symbol]` is where the symbol's sub-interval starts, in units of
/// `1 / TOTAL`; `CUMULATIVE[context][SYMBOLS]` is `TOTAL`. Every symbol gets at least `FLOOR`.
static CUMULATIVE: [[u32; SYMBOLS + 1]; CLASSES] = cumulative_tables();

const fn cumulative_tables() -> [[u32; SYMBOLS + 1]; CLASSES] {
    let mut class_totals = [0u64; CLASSES];
    let mut byte = 0;
    while byte < 256 {
        class_totals[class_of(byte as u8)] += within_class_weight(byte as u8);
        byte += 1;
    }
    let mut tables = [[0u32; SYMBOLS + 1]; CLASSES];
    let mut context = 0;
    while context < CLASSES {
        let weights = &CONTEXT_WEIGHTS[context];
        let mut context_total = 0;
        let mut i = 0;
        while i < CLASSES {
            context_total += weights[i];
            i += 1;
        }
        // Each symbol gets the floor plus its share of the rest, rounded down; the rounding
        // remainder goes to the widest symbol so that the widths sum to TOTAL exactly.
        let shared = TOTAL - FLOOR * SYMBOLS as u64;
        let mut widths = [FLOOR; SYMBOLS];
        widths[END] += shared * weights[END] / context_total;
        let mut byte = 0;
        while byte < 256 {
            let class = class_of(byte as u8);
            widths[byte + 1] += shared * weights[class] * within_class_weight(byte as u8)
                / (context_total * class_totals[class]);
            byte += 1;
        }
        let mut sum = 0;
        let mut widest = 0;
        let mut symbol = 0;
        while symbol < SYMBOLS {
            sum += widths[symbol];
            if widths[symbol] > widths[widest] {
                widest = symbol;
            }
            symbol += 1;
        }
        assert!(sum <= TOTAL, "a context's widths exceed the total");
        widths[widest] += TOTAL - sum;
        let mut start = 0;
        let mut symbol = 0;
        while symbol < SYMBOLS {
            tables[context][symbol] = start as u32;
            start += widths[symbol];
            symbol += 1;
        }
        tables[context][SYMBOLS] = start as u32;
        context += 1;
    }
    tables
}

/// Where `symbol` (0 the end mark, `byte + 1` a byte) starts in the context of the byte before
/// it (`None`: the key's first symbol), in units of `2^-TOTAL_BITS`; symbol 257 is the end.
pub(crate) fn cumulative(previous: Option<u8>, symbol: usize) -> u64 {
    CUMULATIVE[previous.map_or(START, class_of)][symbol] as u64
}

/// The low end of the key's interval in `[0, 2^64)`, as a double (rounding keeps the order).
/// Coding stops at the end of the key or when the interval is empty (after ~15 bytes of text).
pub fn encode(bytes: &[u8]) -> f64 {
    code_after(None, bytes) as f64
}

/// The low end of the interval of `bytes` coded as the continuation of a key whose previous byte
/// is `previous` (its class is the first context), as an integer of `[0, 2^64)`. Monotone
/// non-decreasing in `bytes` for a fixed `previous`, and 0 only for the empty key.
pub fn code_after(previous: Option<u8>, bytes: &[u8]) -> u64 {
    let mut low: u64 = 0;
    let mut width: u128 = 1 << 64;
    let mut context = previous.map_or(START, class_of);
    let mut rest = bytes.iter();
    loop {
        let next = rest.next();
        let symbol = next.map_or(END, |&byte| byte as usize + 1);
        let slots = &CUMULATIVE[context];
        let start = (width * slots[symbol] as u128) >> TOTAL_BITS;
        let end = (width * slots[symbol + 1] as u128) >> TOTAL_BITS;
        // start < width <= 2^64 - low, so low stays below 2^64.
        low += start as u64;
        width = end - start;
        match next {
            Some(&byte) if width > 0 => context = class_of(byte),
            _ => return low,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_context_partitions_the_interval() {
        for table in &CUMULATIVE {
            assert_eq!(table[0], 0);
            assert_eq!(table[SYMBOLS] as u64, TOTAL);
            assert!(
                table.windows(2).all(|w| w[1] - w[0] >= FLOOR as u32),
                "a slot below the floor"
            );
        }
    }

    #[test]
    fn a_prefix_sorts_before_its_extensions() {
        assert!(encode(b"") < encode(b"\0"));
        assert!(encode(b"a") < encode(b"a\0"));
        assert!(encode(b"counter") < encode(b"countera"));
        assert_eq!(encode(b""), 0.0);
    }

    #[test]
    fn resolves_long_words_and_numbers() {
        // Differ in their 12th letter, 13th digit, 11th character: the raw first 8 bytes tie.
        assert!(encode(b"counteracting") < encode(b"counteractive"));
        assert!(encode(b"1000000000001") < encode(b"1000000000002"));
        assert!(encode(b"user:000001") < encode(b"user:000002"));
        // The rarest bytes cost 12 bits each: the first 4 still resolve.
        assert!(encode(b"Zq\0\x01") < encode(b"Zq\0\x02"));
    }

    #[test]
    fn long_keys_stop_when_the_interval_is_empty() {
        let long = vec![b'z'; 1 << 20];
        let mut longer = long.clone();
        longer.push(b'z');
        assert_eq!(encode(&long), encode(&longer));
    }
}

//! perfd's deterministic body: one 64 KiB pseudo-random block repeated, so
//! that every download of n bytes is the same bytes (compressors on the
//! path gain nothing, and the checksum can be announced before the body).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The header carrying the body's CRC-32C as eight hex digits.
pub const CHECKSUM_HEADER: &str = "x-weir-crc32c";

/// Length of the repeated block.
pub const BLOCK_LEN: usize = 64 * 1024;

/// The block every body repeats.
pub fn block() -> &'static [u8] {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    BLOCK.get_or_init(|| {
        // xorshift64*: fixed seed, so every perfd serves the same bytes.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut out = Vec::with_capacity(BLOCK_LEN);
        while out.len() < BLOCK_LEN {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        out
    })
}

/// The bytes of the body from `offset`, at most `len` of them, without
/// crossing the end of a block.
pub fn slice_at(offset: u64, len: usize) -> &'static [u8] {
    let block = block();
    let start = (offset % BLOCK_LEN as u64) as usize;
    let end = start + len.min(BLOCK_LEN - start);
    &block[start..end]
}

/// The CRC-32C of an n-byte body. Computed in O(log n) (the CRCs of whole
/// blocks combined by doubling, then the partial block appended), which
/// still costs up to a millisecond, so the sizes asked for most recently
/// are remembered: a schedule asks for the same few sizes all day.
pub fn checksum(len: u64) -> u32 {
    static CACHE: OnceLock<Mutex<HashMap<u64, u32>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(&crc) = cache.lock().ok().as_ref().and_then(|c| c.get(&len)) {
        return crc;
    }
    let crc = compute_checksum(len);
    if let Ok(mut c) = cache.lock() {
        if c.len() >= 256 {
            c.clear();
        }
        c.insert(len, crc);
    }
    crc
}

fn compute_checksum(len: u64) -> u32 {
    let block = block();
    let mut crc = 0u32;
    let mut power = crc32c::crc32c(block);
    let mut power_len = BLOCK_LEN;
    let mut blocks = len / BLOCK_LEN as u64;
    while blocks > 0 {
        if blocks & 1 == 1 {
            crc = crc32c::crc32c_combine(crc, power, power_len);
        }
        blocks >>= 1;
        if blocks > 0 {
            power = crc32c::crc32c_combine(power, power, power_len);
            power_len *= 2;
        }
    }
    let tail = (len % BLOCK_LEN as u64) as usize;
    crc32c::crc32c_append(crc, &block[..tail])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_the_bytes() {
        for len in [
            0u64,
            1,
            100,
            BLOCK_LEN as u64,
            BLOCK_LEN as u64 * 3 + 17,
            BLOCK_LEN as u64 * 8,
        ] {
            let mut body = Vec::new();
            while (body.len() as u64) < len {
                body.extend_from_slice(slice_at(
                    body.len() as u64,
                    (len as usize - body.len()).min(5000),
                ));
            }
            assert_eq!(compute_checksum(len), crc32c::crc32c(&body), "len {len}");
            assert_eq!(checksum(len), crc32c::crc32c(&body), "len {len}");
        }
    }
}

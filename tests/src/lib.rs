//! Shared pieces of the cross-process tests: the message format that peers exchange (also
//! written and checked by the Python tests) and the checks on it. The tests in `tests/` spawn `gos-bus-peer` processes that use this.

pub mod peer;

/// Size of a test message.
pub const MESSAGE_LEN: usize = 64;
/// Sequence value that marks the end of a producer's stream.
pub const END: u64 = u64::MAX;

/// CRC-32 (IEEE 802.3, as zlib's `crc32`, so Python checks it at C speed) of `bytes`.
pub fn checksum(bytes: &[u8]) -> u64 {
    crc32fast::hash(bytes) as u64
}

/// Fills `buf` (at least 32 bytes) with message `seq` of producer `producer`:
/// `[producer u64 | seq u64 | filler ... | checksum u64 of everything before it]`.
pub fn encode(buf: &mut [u8], producer: u64, seq: u64) {
    let n = buf.len();
    buf[0..8].copy_from_slice(&producer.to_le_bytes());
    buf[8..16].copy_from_slice(&seq.to_le_bytes());
    let mut x = producer.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seq;
    for chunk in buf[16..n - 8].chunks_mut(8) {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    let c = checksum(&buf[..n - 8]);
    buf[n - 8..].copy_from_slice(&c.to_le_bytes());
}

/// Checks a message and returns `(producer, seq)`, or what is wrong with it.
pub fn decode(buf: &[u8]) -> Result<(u64, u64), String> {
    let n = buf.len();
    if n < 32 {
        return Err(format!("message of {n} bytes is too short"));
    }
    let word = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
    let stored = word(n - 8);
    let actual = checksum(&buf[..n - 8]);
    if stored != actual {
        return Err(format!(
            "checksum mismatch for producer {} seq {}: stored {stored:#x}, computed {actual:#x}",
            word(0),
            word(8)
        ));
    }
    Ok((word(0), word(8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_zlib_crc32() {
        assert_eq!(checksum(b"123456789"), 0xCBF4_3926);
        assert_eq!(checksum(b""), 0);
    }

    #[test]
    fn round_trip_and_corruption_detected() {
        let mut b = [0u8; MESSAGE_LEN];
        encode(&mut b, 3, 77);
        assert_eq!(decode(&b).unwrap(), (3, 77));
        b[20] ^= 1;
        assert!(decode(&b).unwrap_err().contains("checksum mismatch"));
    }
}

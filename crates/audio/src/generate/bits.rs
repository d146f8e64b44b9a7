//! A most-significant-bit-first bit writer, the bit order of FLAC, MPEG audio and AAC
//! bitstreams, plus the two FLAC checksums that cover those bits.

/// Accumulates bits into bytes, high bit first.
#[derive(Debug, Default)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    /// Bits already used in the last byte (0 = byte aligned).
    used: u32,
}

impl BitWriter {
    pub(crate) fn new() -> Self {
        BitWriter::default()
    }

    /// Appends the low `bits` bits of `value`.
    pub(crate) fn put(&mut self, value: u64, bits: u32) {
        for i in (0..bits).rev() {
            let bit = ((value >> i) & 1) as u8;
            if self.used == 0 {
                self.bytes.push(0);
            }
            if let Some(last) = self.bytes.last_mut() {
                *last |= bit << (7 - self.used);
            }
            self.used = (self.used + 1) % 8;
        }
    }

    /// Pads with zero bits to the next byte boundary.
    pub(crate) fn align(&mut self) {
        self.used = 0;
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn extend_aligned(&mut self, data: &[u8]) {
        self.align();
        self.bytes.extend_from_slice(data);
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// FLAC frame-header CRC-8: polynomial x^8 + x^2 + x + 1, initial value 0.
pub(crate) fn crc8(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |mut crc, &byte| {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 { (crc << 1) ^ 0x07 } else { crc << 1 };
        }
        crc
    })
}

/// FLAC frame CRC-16: polynomial x^16 + x^15 + x^2 + 1, initial value 0.
pub(crate) fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |mut crc, &byte| {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
        }
        crc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_pack_high_first() {
        let mut w = BitWriter::new();
        w.put(0b101, 3);
        w.put(0x1F, 5);
        w.put(1, 1);
        w.align();
        w.put(0xAB, 8);
        assert_eq!(w.into_bytes(), vec![0b1011_1111, 0b1000_0000, 0xAB]);
    }

    #[test]
    fn checksums_match_catalogue_check_values() {
        // CRC-8 (poly 0x07) and CRC-16/UMTS (poly 0x8005, init 0) check values.
        assert_eq!(crc8(b"123456789"), 0xF4);
        assert_eq!(crc16(b"123456789"), 0xFEE8);
    }
}

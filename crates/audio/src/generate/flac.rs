//! FLAC written by hand (the format is specified in RFC 9639): a STREAMINFO block, then
//! fixed-size frames whose single mono subframe is CONSTANT when every sample of the block is
//! equal and VERBATIM otherwise. No prediction, so files are as large as WAV, but each frame
//! carries the real header CRC-8 and frame CRC-16 that decoders check.

use super::bits::{BitWriter, crc8, crc16};

const BLOCK: usize = 4096;

pub(super) fn flac(samples: &[i16], rate: u32) -> Vec<u8> {
    // Readers (Symphonia among them) refuse a stream without frames.
    let samples = if samples.is_empty() { &[0][..] } else { samples };
    let mut out = b"fLaC".to_vec();
    out.extend_from_slice(&streaminfo(samples.len() as u64, rate));
    for (number, block) in samples.chunks(BLOCK).enumerate() {
        out.extend_from_slice(&frame(number as u64, block, rate));
    }
    out
}

fn streaminfo(total: u64, rate: u32) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.put(1, 1); // last metadata block
    w.put(0, 7); // STREAMINFO
    w.put(34, 24);
    w.put(BLOCK as u64, 16); // min block size (the last block may be shorter)
    w.put(BLOCK as u64, 16); // max block size
    w.put(0, 24); // min frame size: unknown
    w.put(0, 24); // max frame size: unknown
    w.put(u64::from(rate), 20);
    w.put(0, 3); // channels - 1
    w.put(15, 5); // bits per sample - 1
    w.put(total, 36);
    w.put(0, 64); // MD5 of the samples: zero means "not computed"
    w.put(0, 64);
    w.into_bytes()
}

/// Sample-rate code for the frame header, and the extra bits it needs after the header.
fn rate_code(rate: u32) -> (u64, Option<(u64, u32)>) {
    match rate {
        88_200 => (0b0011, None),
        176_400 => (0b0001, None),
        192_000 => (0b0010, None),
        8_000 => (0b0100, None),
        16_000 => (0b0101, None),
        22_050 => (0b0110, None),
        24_000 => (0b0111, None),
        32_000 => (0b1000, None),
        44_100 => (0b1001, None),
        48_000 => (0b1010, None),
        96_000 => (0b1011, None),
        r if r % 1000 == 0 && r / 1000 <= 255 => (0b1100, Some((u64::from(r / 1000), 8))),
        r if r <= 0xFFFF => (0b1101, Some((u64::from(r), 16))),
        r if r % 10 == 0 && r / 10 <= 0xFFFF => (0b1110, Some((u64::from(r / 10), 16))),
        _ => (0b0000, None), // take it from STREAMINFO
    }
}

/// The frame number in FLAC's UTF-8-like variable-length code.
fn put_coded_number(w: &mut BitWriter, n: u64) {
    if n < 0x80 {
        w.put(n, 8);
        return;
    }
    // Payload bits per length: 2 bytes hold 11 bits, each further byte 5 more.
    let len = (2..=7u32).find(|&len| n < 1u64 << (5 * len + 1)).unwrap_or(7);
    let lead_bits = 7 - len; // payload bits in the first byte
    let mask = !(0xFFu64 >> len) & 0xFF;
    w.put(mask | (n >> (6 * (len - 1))) & ((1 << lead_bits) - 1), 8);
    for i in (0..len - 1).rev() {
        w.put(0x80 | ((n >> (6 * i)) & 0x3F), 8);
    }
}

fn frame(number: u64, block: &[i16], rate: u32) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.put(0b11_1111_1111_1110, 14); // sync
    w.put(0, 1); // reserved
    w.put(0, 1); // fixed block size
    let full = block.len() == BLOCK;
    w.put(if full { 0b1100 } else { 0b0111 }, 4); // 4096, or 16-bit (size - 1) at the end
    let (code, rate_bits) = rate_code(rate);
    w.put(code, 4);
    w.put(0, 4); // mono
    w.put(0b100, 3); // 16 bits per sample
    w.put(0, 1); // reserved
    put_coded_number(&mut w, number);
    if !full {
        w.put(block.len() as u64 - 1, 16);
    }
    if let Some((value, bits)) = rate_bits {
        w.put(value, bits);
    }
    let header_crc = crc8(w.bytes());
    w.put(u64::from(header_crc), 8);

    let constant = block.first().filter(|first| block.iter().all(|s| s == *first));
    w.put(0, 1); // zero padding bit
    match constant {
        Some(&value) => {
            w.put(0b000000, 6);
            w.put(0, 1); // no wasted bits
            w.put(u64::from(value as u16), 16);
        }
        None => {
            w.put(0b000001, 6);
            w.put(0, 1);
            for &sample in block {
                w.put(u64::from(sample as u16), 16);
            }
        }
    }
    w.align();
    let frame_crc = crc16(w.bytes());
    w.extend_aligned(&frame_crc.to_be_bytes());
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coded(n: u64) -> Vec<u8> {
        let mut w = BitWriter::new();
        put_coded_number(&mut w, n);
        w.into_bytes()
    }

    #[test]
    fn frame_numbers_use_the_utf8_style_code() {
        assert_eq!(coded(0x41), vec![0x41]);
        assert_eq!(coded(0x80), vec![0xC2, 0x80]);
        assert_eq!(coded(0x7FF), vec![0xDF, 0xBF]);
        assert_eq!(coded(0x800), vec![0xE0, 0xA0, 0x80]);
        assert_eq!(coded(0x10000), vec![0xF0, 0x90, 0x80, 0x80]);
    }

    #[test]
    fn equal_samples_become_a_constant_subframe() {
        let silent = frame(0, &[0; 100], 48_000);
        let tone = frame(0, &[1, 2, 3], 48_000);
        // Header: 2 sync bytes, 2 code bytes, 1-byte number, 16-bit size, CRC-8 = 8 bytes.
        assert_eq!(silent.len(), 8 + 3 + 2);
        assert_eq!(tone.len(), 8 + 1 + 6 + 2);
        assert_eq!(crc16(&silent), 0, "a frame followed by its CRC-16 checks to zero");
    }
}

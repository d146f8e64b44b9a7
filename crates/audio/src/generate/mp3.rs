//! Silent MPEG audio Layer III, one mono frame after another at the lowest bit rate. Each
//! frame is a valid header, side information of all zeros (no Huffman data, no main data
//! reservoir) and zero padding: every decoder turns that into digital silence.

use std::time::Duration;

/// MPEG-1 rates (1152 samples a frame, 32 kbit/s) then MPEG-2 rates (576 samples, 8 kbit/s).
pub(super) const SAMPLE_RATES: [u32; 6] = [32_000, 44_100, 48_000, 16_000, 22_050, 24_000];

pub(super) fn silence(duration: Duration, rate: u32) -> Vec<u8> {
    let mpeg1 = rate >= 32_000;
    let (version_bits, samples_per_frame, kbps, side_info) =
        if mpeg1 { (0b11, 1152, 32, 17) } else { (0b10, 576, 8, 9) };
    let rate_index: u8 = match rate {
        44_100 | 22_050 => 0,
        48_000 | 24_000 => 1,
        _ => 2,
    };
    let coefficient = if mpeg1 { 144 } else { 72 };
    let frame_len = (coefficient * kbps * 1000 / rate) as usize;
    let header = [
        0xFF,
        0xE0 | (version_bits << 3) | (0b01 << 1) | 1, // Layer III, no CRC
        (1 << 4) | (rate_index << 2),                 // bit-rate index 1, no padding
        0b11 << 6,                                    // mono
    ];
    let mut frame = vec![0u8; frame_len.max(4 + side_info)];
    frame[..4].copy_from_slice(&header);
    let count = super::frames(duration, rate).div_ceil(samples_per_frame).max(1);
    let mut out = Vec::with_capacity(frame.len() * count as usize);
    for _ in 0..count {
        out.extend_from_slice(&frame);
    }
    out
}

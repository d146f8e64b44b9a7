//! Silent AAC-LC in ADTS framing. Each 1024-sample frame is a 7-byte ADTS header (MPEG-4, no
//! CRC) and a 4-byte raw data block: one single-channel element with a long window and
//! `max_sfb = 0`, so it codes no spectral lines at all, then the END element.

use std::time::Duration;

use super::bits::BitWriter;

/// The ADTS sampling-frequency table; the index of a rate is its position.
pub(super) const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350,
];

fn silent_block() -> Vec<u8> {
    let mut w = BitWriter::new();
    w.put(0, 3); // ID_SCE
    w.put(0, 4); // element instance tag
    w.put(100, 8); // global gain (irrelevant without spectral data)
    w.put(0, 1); // ics_reserved_bit
    w.put(0, 2); // ONLY_LONG_SEQUENCE
    w.put(0, 1); // sine window
    w.put(0, 6); // max_sfb: no scale-factor bands coded
    w.put(0, 1); // predictor_data_present
    w.put(0, 1); // pulse_data_present
    w.put(0, 1); // tns_data_present
    w.put(0, 1); // gain_control_data_present
    w.put(0b111, 3); // ID_END
    w.align();
    w.into_bytes()
}

fn adts_header(rate_index: u8, frame_len: usize) -> [u8; 7] {
    let len = frame_len as u32;
    let fullness = 0x7FFu32; // variable bit rate
    [
        0xFF,
        0xF1,                                  // sync, MPEG-4, layer 0, no CRC
        (1 << 6) | (rate_index << 2),          // AAC LC (object type 2 - 1), rate, private 0, channel config MSB
        (1 << 6) | ((len >> 11) & 0x03) as u8, // channel config 1 (mono), flags 0, length high bits
        ((len >> 3) & 0xFF) as u8,
        (((len & 0x07) << 5) | (fullness >> 6)) as u8,
        (((fullness & 0x3F) << 2) as u8), // one raw data block
    ]
}

pub(super) fn silence(duration: Duration, rate: u32) -> Vec<u8> {
    let rate_index = SAMPLE_RATES.iter().position(|&r| r == rate).unwrap_or(3) as u8;
    let block = silent_block();
    let mut frame = adts_header(rate_index, 7 + block.len()).to_vec();
    frame.extend_from_slice(&block);
    let count = super::frames(duration, rate).div_ceil(1024).max(1);
    let mut out = Vec::with_capacity(frame.len() * count as usize);
    for _ in 0..count {
        out.extend_from_slice(&frame);
    }
    out
}

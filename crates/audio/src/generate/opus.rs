//! Silent Opus in Ogg (RFC 7845). Headers first (OpusHead on its own first page, OpusTags on
//! the second), then 20 ms packets of three bytes each: TOC 0xF8 (configuration 31 = CELT
//! fullband 20 ms, mono, one frame) and the two-byte range-coded payload 0xFF 0xFE whose first
//! decoded symbol, the CELT silence flag (RFC 6716 §4.3), is 1. One-byte packets would not do:
//! a decoder treats an empty frame as lost and runs concealment.
//!
//! The last page's granule position is exactly pre-skip + the requested samples at 48 kHz;
//! the surplus of the last packet is trimmed by the end-of-stream rule, so the stream plays
//! for exactly the duration asked.

use std::time::Duration;

use crate::ogg::{BOS, EOS, PageWriter};

/// Input rates Opus encoders accept; the stream itself is always coded at 48 kHz.
pub(super) const SAMPLE_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

/// libopus's usual pre-skip: 6.5 ms at 48 kHz.
pub(super) const PRE_SKIP: u16 = 312;
const PACKET: [u8; 3] = [0xF8, 0xFF, 0xFE];
const PACKET_SAMPLES: u64 = 960;
/// One second of packets per page.
const PACKETS_PER_PAGE: usize = 50;
/// "OneF": any serial is valid; a fixed one keeps output reproducible.
const SERIAL: u32 = 0x4F6E_6546;

pub(super) fn silence(duration: Duration, input_rate: u32) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(1); // channels
    head.extend_from_slice(&PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&input_rate.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // mapping family: mono/stereo, no table

    let vendor = b"OneFlow";
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    tags.extend_from_slice(vendor);
    tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments

    let mut writer = PageWriter::new(SERIAL);
    writer.page(BOS, 0, &[&head]);
    writer.page(0, 0, &[&tags]);

    let end_granule = u64::from(PRE_SKIP) + super::frames(duration, 48_000);
    let packets = end_granule.div_ceil(PACKET_SAMPLES).max(1) as usize;
    let mut written = 0usize;
    while written < packets {
        let on_page = PACKETS_PER_PAGE.min(packets - written);
        written += on_page;
        let last = written == packets;
        let granule = if last {
            end_granule
        } else {
            written as u64 * PACKET_SAMPLES
        };
        let page: Vec<&[u8]> = std::iter::repeat_n(&PACKET[..], on_page).collect();
        writer.page(if last { EOS } else { 0 }, granule, &page);
    }
    writer.finish()
}

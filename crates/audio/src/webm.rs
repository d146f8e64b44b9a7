//! Just enough WebM (EBML/Matroska) reading to bill a browser recording. Symphonia is built
//! here without its Matroska reader, and WebM audio is almost always Opus, which it cannot
//! decode anyway.
//!
//! The duration is measured from the blocks themselves: the end of the last audio block
//! (cluster timecode + block timecode + the block's own length) minus the track's codec delay.
//! The segment's declared `Duration` is not trusted, and `MediaRecorder` files do not have
//! one. An Opus block's length comes from its packets' TOC bytes (RFC 6716 §3.1); for other
//! codecs a `BlockDuration` is used when present, else the declared duration if it is later,
//! else the last block's start (short by at most one packet). Elements of unknown size (live
//! recordings) end where the next cluster or top-level element begins.

use std::time::Duration;

const EBML_HEADER: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMECODE_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const CODEC_DELAY: u32 = 0x56AA;
const AUDIO: u32 = 0xE1;
const SAMPLING_FREQUENCY: u32 = 0xB5;
const CHANNELS: u32 = 0x9F;
const CLUSTER: u32 = 0x1F43_B675;
const CLUSTER_TIMECODE: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const BLOCK_DURATION: u32 = 0x9B;
/// Top-level elements that end a cluster of unknown size.
const SEGMENT_CHILDREN: [u32; 8] = [
    CLUSTER,
    INFO,
    TRACKS,
    0x114D_9B74,
    0x1C53_BB6B,
    0x1254_C367,
    0x1043_A770,
    0x1941_A469,
];

/// The audio codec of a WebM file's audio track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WebmCodec {
    Opus,
    Vorbis,
    Other(String),
}

/// What the walk found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WebmInfo {
    pub codec: WebmCodec,
    pub sample_rate: Option<u32>,
    pub channels: Option<u16>,
    pub duration: Duration,
}

#[derive(Debug, Default)]
struct AudioTrack {
    number: Option<u64>,
    is_audio: bool,
    codec_id: String,
    codec_delay_ns: u64,
    sample_rate: Option<f64>,
    channels: Option<u64>,
}

/// A parsed element header: id, where its body starts and ends (clamped to the data).
#[derive(Debug, Clone, Copy)]
struct Element {
    id: u32,
    body: usize,
    end: usize,
    unknown_size: bool,
}

/// Reads an element header at `pos`, bounded by `limit`. `None` when the bytes end or are not
/// a valid header.
fn element(data: &[u8], pos: usize, limit: usize) -> Option<Element> {
    let first = *data.get(pos)?;
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 || pos + id_len > limit {
        return None;
    }
    let id = data
        .get(pos..pos + id_len)?
        .iter()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    let (size, size_len) = vint(data, pos + id_len)?;
    let body = pos + id_len + size_len;
    if body > limit {
        return None;
    }
    let unknown_size = size == (1u64 << (7 * size_len)) - 1;
    let end = if unknown_size {
        limit
    } else {
        usize::try_from(size)
            .ok()
            .and_then(|s| body.checked_add(s))
            .map_or(limit, |e| e.min(limit))
    };
    Some(Element {
        id,
        body,
        end,
        unknown_size,
    })
}

/// An EBML variable-length integer with its marker bit removed, and its length in bytes.
fn vint(data: &[u8], pos: usize) -> Option<(u64, usize)> {
    let first = *data.get(pos)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let bytes = data.get(pos..pos + len)?;
    let mask = if len == 8 { 0 } else { 0xFFu8 >> len };
    let value = bytes[1..]
        .iter()
        .fold(u64::from(first & mask), |acc, &b| (acc << 8) | u64::from(b));
    Some((value, len))
}

fn uint(body: &[u8]) -> Option<u64> {
    (body.len() <= 8).then(|| body.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

fn float(body: &[u8]) -> Option<f64> {
    match body.len() {
        4 => Some(f64::from(f32::from_be_bytes([body[0], body[1], body[2], body[3]]))),
        8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(body);
            Some(f64::from_be_bytes(b))
        }
        _ => None,
    }
}

/// Samples at 48 kHz in one Opus packet, from its TOC byte and frame count (RFC 6716 §3.1).
pub(crate) fn opus_packet_samples(packet: &[u8]) -> Option<u64> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 0b11 {
        0 => 1,
        1 | 2 => 2,
        _ => u64::from(*packet.get(1)? & 0x3F),
    };
    Some(frame * frames)
}

/// Splits a block's payload (after track number, timecode and flags) into its frames.
fn laced_frames(flags: u8, payload: &[u8]) -> Option<Vec<&[u8]>> {
    let lacing = (flags >> 1) & 0b11;
    if lacing == 0 {
        return Some(vec![payload]);
    }
    let count = usize::from(*payload.first()?) + 1;
    let mut pos = 1;
    let mut sizes = Vec::with_capacity(count);
    match lacing {
        0b01 => {
            for _ in 0..count - 1 {
                let mut size = 0usize;
                loop {
                    let b = *payload.get(pos)?;
                    pos += 1;
                    size += usize::from(b);
                    if b != 255 {
                        break;
                    }
                }
                sizes.push(size);
            }
        }
        0b11 => {
            let (first, len) = vint(payload, pos)?;
            pos += len;
            let mut size = i64::try_from(first).ok()?;
            sizes.push(usize::try_from(size).ok()?);
            for _ in 1..count - 1 {
                let (raw, len) = vint(payload, pos)?;
                pos += len;
                let bias = (1i64 << (7 * len - 1)) - 1;
                size = size.checked_add(i64::try_from(raw).ok()? - bias)?;
                sizes.push(usize::try_from(size).ok()?);
            }
        }
        _ => {
            let each = payload.len().checked_sub(1)? / count;
            sizes.extend(std::iter::repeat_n(each, count - 1));
        }
    }
    let mut frames = Vec::with_capacity(count);
    for size in sizes {
        frames.push(payload.get(pos..pos + size)?);
        pos += size;
    }
    frames.push(payload.get(pos..)?);
    Some(frames)
}

/// Walks a WebM file. Errors are reasons for [`crate::AudioError::Corrupt`].
pub(crate) fn inspect(data: &[u8]) -> Result<WebmInfo, &'static str> {
    let header = element(data, 0, data.len()).ok_or("missing EBML header")?;
    if header.id != EBML_HEADER || header.unknown_size {
        return Err("missing EBML header");
    }
    let segment = element(data, header.end, data.len()).ok_or("missing segment")?;
    if segment.id != SEGMENT {
        return Err("missing segment");
    }

    let mut scale_ns: u64 = 1_000_000;
    let mut declared: Option<f64> = None;
    let mut track: Option<AudioTrack> = None;
    let mut walk = Walk::default();

    let mut pos = segment.body;
    while let Some(child) = element(data, pos, segment.end) {
        match child.id {
            INFO => {
                for_children(data, child, |e, body| match e {
                    TIMECODE_SCALE => scale_ns = uint(body).filter(|&s| s > 0).unwrap_or(scale_ns),
                    DURATION => declared = float(body).filter(|d| d.is_finite() && *d > 0.0),
                    _ => {}
                });
            }
            TRACKS if track.is_none() => track = first_audio_track(data, child),
            CLUSTER => {
                let Some(audio) = track.as_ref() else {
                    return Err("cluster before track list");
                };
                walk.scale_ns = scale_ns;
                let end = walk.cluster(data, child, audio);
                pos = end;
                continue;
            }
            _ => {}
        }
        if child.end <= pos {
            break;
        }
        pos = child.end;
    }

    let audio = track.ok_or("no audio track")?;
    let codec = match audio.codec_id.as_str() {
        "A_OPUS" => WebmCodec::Opus,
        "A_VORBIS" => WebmCodec::Vorbis,
        other => WebmCodec::Other(other.to_owned()),
    };
    if walk.blocks == 0 {
        return Err("no audio blocks");
    }
    let mut end_ns = walk.end_ns;
    if codec != WebmCodec::Opus {
        let declared_ns = declared.map_or(0.0, |d| d * scale_ns as f64);
        if declared_ns.is_finite() && declared_ns > end_ns as f64 && declared_ns < u64::MAX as f64 {
            end_ns = declared_ns as u64;
        }
    }
    let duration_ns = end_ns.saturating_sub(audio.codec_delay_ns);
    Ok(WebmInfo {
        codec,
        sample_rate: audio
            .sample_rate
            .filter(|r| r.is_finite() && *r >= 1.0 && *r < 1e7)
            .map(|r| r as u32),
        channels: audio.channels.and_then(|c| u16::try_from(c).ok()),
        duration: Duration::from_nanos(duration_ns),
    })
}

/// Calls `f(id, body)` for each child of a known-size master element.
fn for_children<'a>(data: &'a [u8], parent: Element, mut f: impl FnMut(u32, &'a [u8])) {
    let mut pos = parent.body;
    while let Some(child) = element(data, pos, parent.end) {
        if let Some(body) = data.get(child.body..child.end) {
            f(child.id, body);
        }
        if child.end <= pos {
            break;
        }
        pos = child.end;
    }
}

fn first_audio_track(data: &[u8], tracks: Element) -> Option<AudioTrack> {
    let mut found = None;
    let mut pos = tracks.body;
    while let Some(entry) = element(data, pos, tracks.end) {
        if entry.id == TRACK_ENTRY && found.is_none() {
            let mut t = AudioTrack::default();
            for_children(data, entry, |id, body| match id {
                TRACK_NUMBER => t.number = uint(body),
                TRACK_TYPE => t.is_audio |= uint(body) == Some(2),
                CODEC_ID => t.codec_id = String::from_utf8_lossy(body).trim_end_matches('\0').to_owned(),
                CODEC_DELAY => t.codec_delay_ns = uint(body).unwrap_or(0),
                AUDIO => {
                    let audio = Element {
                        id: AUDIO,
                        body: 0,
                        end: body.len(),
                        unknown_size: false,
                    };
                    for_children(body, audio, |id, value| match id {
                        SAMPLING_FREQUENCY => t.sample_rate = float(value),
                        CHANNELS => t.channels = uint(value),
                        _ => {}
                    });
                }
                _ => {}
            });
            t.is_audio |= t.codec_id.starts_with("A_");
            if t.is_audio && t.number.is_some() {
                found = Some(t);
            }
        }
        if entry.end <= pos {
            break;
        }
        pos = entry.end;
    }
    found
}

/// Running state over the clusters.
#[derive(Debug, Default)]
struct Walk {
    /// Nanoseconds per timecode tick (the segment's TimecodeScale).
    scale_ns: u64,
    blocks: u64,
    end_ns: u64,
}

impl Walk {
    /// Reads one cluster and returns where the next top-level element starts.
    fn cluster(&mut self, data: &[u8], cluster: Element, track: &AudioTrack) -> usize {
        let mut timecode: u64 = 0;
        let mut pos = cluster.body;
        while let Some(child) = element(data, pos, cluster.end) {
            if cluster.unknown_size && SEGMENT_CHILDREN.contains(&child.id) {
                return pos;
            }
            let body = data.get(child.body..child.end).unwrap_or(&[]);
            match child.id {
                CLUSTER_TIMECODE => timecode = uint(body).unwrap_or(0),
                SIMPLE_BLOCK => self.block(body, timecode, None, track),
                BLOCK_GROUP => {
                    let mut block = None;
                    let mut duration = None;
                    for_children(data, child, |id, value| match id {
                        BLOCK => block = Some(value),
                        BLOCK_DURATION => duration = uint(value),
                        _ => {}
                    });
                    if let Some(block) = block {
                        self.block(block, timecode, duration, track);
                    }
                }
                _ => {}
            }
            if child.end <= pos {
                break;
            }
            pos = child.end;
        }
        cluster.end.max(pos)
    }

    fn block(&mut self, body: &[u8], cluster_tc: u64, block_duration: Option<u64>, track: &AudioTrack) {
        let Some((number, len)) = vint(body, 0) else { return };
        if Some(number) != track.number {
            return;
        }
        let Some(header) = body.get(len..len + 3) else { return };
        let relative = i64::from(i16::from_be_bytes([header[0], header[1]]));
        let flags = header[2];
        let Some(start_tc) = i64::try_from(cluster_tc).ok().and_then(|c| c.checked_add(relative)) else {
            return;
        };
        let Ok(start_tc) = u64::try_from(start_tc) else { return };
        let scale = self.scale_ns;
        let start_ns = start_tc.saturating_mul(scale);
        let own_ns = match block_duration {
            Some(d) => d.saturating_mul(scale),
            None if track.codec_id == "A_OPUS" => laced_frames(flags, body.get(len + 3..).unwrap_or(&[]))
                .map(|frames| frames.iter().filter_map(|f| opus_packet_samples(f)).sum::<u64>())
                .map_or(0, |samples| samples.saturating_mul(1_000_000_000) / 48_000),
            None => 0,
        };
        self.blocks += 1;
        self.end_ns = self.end_ns.max(start_ns.saturating_add(own_ns));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_toc_durations_follow_rfc_6716() {
        assert_eq!(opus_packet_samples(&[0xF8, 0xFF, 0xFE]), Some(960)); // CELT FB 20 ms, 1 frame
        assert_eq!(opus_packet_samples(&[0x08 | 0x01]), Some(1920)); // SILK NB 20 ms, 2 frames
        assert_eq!(opus_packet_samples(&[(3 << 3) | 0x03, 3]), Some(3 * 2880)); // SILK 60 ms x3
        assert_eq!(opus_packet_samples(&[(16 << 3) | 0x03]), None); // code 3 needs a count byte
        assert_eq!(opus_packet_samples(&[]), None);
    }

    #[test]
    fn vints_decode_and_flag_unknown_sizes() {
        assert_eq!(vint(&[0x81], 0), Some((1, 1)));
        assert_eq!(vint(&[0x40, 0x02], 0), Some((2, 2)));
        assert_eq!(
            vint(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], 0),
            Some(((1 << 56) - 1, 8))
        );
        assert_eq!(vint(&[0x00], 0), None);
        let unknown = [0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        let e = element(&unknown, 0, unknown.len()).unwrap();
        assert!(e.unknown_size);
        assert_eq!(e.end, unknown.len());
    }

    fn el(id: u32, body: &[u8], known_size: bool) -> Vec<u8> {
        let mut out: Vec<u8> = id.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        out.push(0x01); // 8-byte size
        if known_size {
            out.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
        } else {
            out.extend_from_slice(&[0xFF; 7]);
        }
        out.extend_from_slice(body);
        out
    }

    fn uint_el(id: u32, value: u64) -> Vec<u8> {
        el(id, &value.to_be_bytes(), true)
    }

    fn simple_block(timecode: i16, lacing: u8, payload: &[u8]) -> Vec<u8> {
        let mut body = vec![0x81];
        body.extend_from_slice(&timecode.to_be_bytes());
        body.push(0x80 | lacing);
        body.extend_from_slice(payload);
        el(SIMPLE_BLOCK, &body, true)
    }

    /// A WebM file with 80 ms of Opus blocks (one plain, one Xiph-laced pair, one in a
    /// BlockGroup), a 6.5 ms codec delay and a lying declared duration.
    fn webm(known_sizes: bool) -> Vec<u8> {
        const PACKET: [u8; 3] = [0xF8, 0xFF, 0xFE];
        let mut file = el(EBML_HEADER, &el(0x4282, b"webm", true), true);
        let mut info = uint_el(TIMECODE_SCALE, 1_000_000);
        info.extend(el(DURATION, &99_999.0f64.to_be_bytes(), true));
        let mut entry = uint_el(TRACK_NUMBER, 1);
        entry.extend(uint_el(TRACK_TYPE, 2));
        entry.extend(el(CODEC_ID, b"A_OPUS", true));
        entry.extend(uint_el(CODEC_DELAY, 6_500_000));
        let mut audio = el(SAMPLING_FREQUENCY, &48_000.0f64.to_be_bytes(), true);
        audio.extend(uint_el(CHANNELS, 1));
        entry.extend(el(AUDIO, &audio, true));
        let mut segment = el(INFO, &info, true);
        segment.extend(el(TRACKS, &el(TRACK_ENTRY, &entry, true), true));

        let mut first = uint_el(CLUSTER_TIMECODE, 0);
        first.extend(simple_block(0, 0, &PACKET));
        let mut laced = vec![1, 3]; // two frames, the first 3 bytes long
        laced.extend_from_slice(&PACKET);
        laced.extend_from_slice(&PACKET);
        first.extend(simple_block(20, 0b010, &laced));
        segment.extend(el(CLUSTER, &first, known_sizes));

        let mut second = uint_el(CLUSTER_TIMECODE, 60);
        let mut block = vec![0x81, 0, 0, 0];
        block.extend_from_slice(&PACKET);
        let mut group = el(BLOCK, &block, true);
        group.extend(uint_el(BLOCK_DURATION, 20));
        second.extend(el(BLOCK_GROUP, &group, true));
        segment.extend(el(CLUSTER, &second, known_sizes));
        segment.extend(el(0x1C53_BB6B, &[], true)); // Cues after the clusters end the last one
        file.extend(el(SEGMENT, &segment, known_sizes));
        file
    }

    #[test]
    fn measures_blocks_not_the_declared_duration() {
        for known in [true, false] {
            let info = inspect(&webm(known)).unwrap();
            assert_eq!(info.codec, WebmCodec::Opus);
            assert_eq!(info.sample_rate, Some(48_000));
            assert_eq!(info.channels, Some(1));
            assert_eq!(info.duration, Duration::from_micros(73_500), "known sizes: {known}");
        }
    }

    #[test]
    fn structure_errors_are_named() {
        assert_eq!(inspect(b"not webm"), Err("missing EBML header"));
        let header_only = el(EBML_HEADER, &[], true);
        assert_eq!(inspect(&header_only), Err("missing segment"));
        let mut no_blocks = header_only;
        no_blocks.extend(el(
            SEGMENT,
            &el(TRACKS, &el(TRACK_ENTRY, &uint_el(TRACK_NUMBER, 1), true), true),
            true,
        ));
        assert_eq!(inspect(&no_blocks), Err("no audio track"));
    }

    #[test]
    fn lacing_splits_frames() {
        // Xiph lacing: 3 frames of sizes 2, 1 and the rest (2).
        let xiph = [2, 2, 1, 0xA, 0xB, 0xC, 0xD, 0xE];
        let frames = laced_frames(0b010, &xiph).unwrap();
        assert_eq!(frames, vec![&[0xA, 0xB][..], &[0xC][..], &[0xD, 0xE][..]]);
        // Fixed lacing: 2 frames of 2 bytes.
        let fixed = [1, 1, 2, 3, 4];
        assert_eq!(laced_frames(0b100, &fixed).unwrap(), vec![&[1, 2][..], &[3, 4][..]]);
        // EBML lacing: 3 frames, first 1 byte, then +1 (size 2), last the rest.
        let ebml = [2, 0x81, 0xC0, 9, 8, 8, 7];
        assert_eq!(
            laced_frames(0b110, &ebml).unwrap(),
            vec![&[9][..], &[8, 8][..], &[7][..]]
        );
        assert_eq!(laced_frames(0b010, &[5, 1]), None);
    }
}

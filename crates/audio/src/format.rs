//! Which audio format a request names and which format a file really is. Uploads are judged by
//! their first bytes, never by their file name or declared content type, so a renamed text file
//! is refused before it costs a provider call, and a renamed audio file still works.

use std::fmt;

/// An audio format OneFlow produces (text-to-speech output) or accepts (transcription upload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    /// MPEG-1/2 Layer III.
    Mp3,
    /// Opus in an Ogg container (RFC 7845).
    Opus,
    /// AAC in ADTS framing, the form OpenAI returns for `aac`.
    Aac,
    /// FLAC in its native container.
    Flac,
    /// RIFF/WAVE.
    Wav,
    /// Headerless signed 16-bit little-endian mono at 24 kHz: OpenAI's `pcm`.
    Pcm,
    /// Ogg with a codec other than Opus (Vorbis, FLAC, Speex).
    Ogg,
    /// WebM (the Matroska subset browsers record into).
    Webm,
    /// ISO base media file (MP4) whose brand is not an audio-only one.
    Mp4,
    /// ISO base media file with an `M4A ` (or `M4B `/`M4P `) brand.
    M4a,
    /// MPEG-1/2 Layer I or II audio (`.mpeg`, `.mpga`, `.mp2`).
    Mpeg,
}

impl AudioFormat {
    /// Every format, in declaration order.
    pub const ALL: [AudioFormat; 11] = [
        AudioFormat::Mp3,
        AudioFormat::Opus,
        AudioFormat::Aac,
        AudioFormat::Flac,
        AudioFormat::Wav,
        AudioFormat::Pcm,
        AudioFormat::Ogg,
        AudioFormat::Webm,
        AudioFormat::Mp4,
        AudioFormat::M4a,
        AudioFormat::Mpeg,
    ];

    /// The short lowercase name, as OpenAI spells `response_format` for the formats it has.
    pub fn name(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Opus => "opus",
            AudioFormat::Aac => "aac",
            AudioFormat::Flac => "flac",
            AudioFormat::Wav => "wav",
            AudioFormat::Pcm => "pcm",
            AudioFormat::Ogg => "ogg",
            AudioFormat::Webm => "webm",
            AudioFormat::Mp4 => "mp4",
            AudioFormat::M4a => "m4a",
            AudioFormat::Mpeg => "mpeg",
        }
    }

    /// The `Content-Type` to answer with. Opus carries the `codecs` parameter so a browser can
    /// tell it from Vorbis without downloading it; `pcm` has no registered type for
    /// little-endian samples (`audio/L16` is big-endian), so it is `audio/pcm` as OpenAI sends.
    pub fn content_type(self) -> &'static str {
        match self {
            AudioFormat::Mp3 | AudioFormat::Mpeg => "audio/mpeg",
            AudioFormat::Opus => "audio/ogg; codecs=opus",
            AudioFormat::Aac => "audio/aac",
            AudioFormat::Flac => "audio/flac",
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Pcm => "audio/pcm",
            AudioFormat::Ogg => "audio/ogg",
            AudioFormat::Webm => "audio/webm",
            AudioFormat::Mp4 | AudioFormat::M4a => "audio/mp4",
        }
    }

    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Opus => "opus",
            AudioFormat::Aac => "aac",
            AudioFormat::Flac => "flac",
            AudioFormat::Wav => "wav",
            AudioFormat::Pcm => "pcm",
            AudioFormat::Ogg => "ogg",
            AudioFormat::Webm => "webm",
            AudioFormat::Mp4 => "mp4",
            AudioFormat::M4a => "m4a",
            AudioFormat::Mpeg => "mpga",
        }
    }

    /// Parses a text-to-speech `response_format`: `mp3`, `opus`, `aac`, `flac`, `wav` or `pcm`,
    /// exactly as OpenAI spells them. Anything else is `None`.
    pub fn from_openai_name(name: &str) -> Option<AudioFormat> {
        match name {
            "mp3" => Some(AudioFormat::Mp3),
            "opus" => Some(AudioFormat::Opus),
            "aac" => Some(AudioFormat::Aac),
            "flac" => Some(AudioFormat::Flac),
            "wav" => Some(AudioFormat::Wav),
            "pcm" => Some(AudioFormat::Pcm),
            _ => None,
        }
    }

    /// Maps an upload's file extension (case-insensitive, with or without the dot) to the
    /// format it usually holds. Only a hint: [`sniff`] decides.
    pub fn from_extension(ext: &str) -> Option<AudioFormat> {
        let ext = ext.trim_start_matches('.').to_ascii_lowercase();
        match ext.as_str() {
            "mp3" => Some(AudioFormat::Mp3),
            "opus" => Some(AudioFormat::Opus),
            "aac" => Some(AudioFormat::Aac),
            "flac" => Some(AudioFormat::Flac),
            "wav" | "wave" => Some(AudioFormat::Wav),
            "pcm" => Some(AudioFormat::Pcm),
            "ogg" | "oga" => Some(AudioFormat::Ogg),
            "webm" => Some(AudioFormat::Webm),
            "mp4" => Some(AudioFormat::Mp4),
            "m4a" => Some(AudioFormat::M4a),
            "mpeg" | "mpga" | "mp2" => Some(AudioFormat::Mpeg),
            _ => None,
        }
    }

    /// Whether OpenAI's speech endpoint can return this format.
    pub fn is_speech_output(self) -> bool {
        match self {
            AudioFormat::Mp3
            | AudioFormat::Opus
            | AudioFormat::Aac
            | AudioFormat::Flac
            | AudioFormat::Wav
            | AudioFormat::Pcm => true,
            AudioFormat::Ogg | AudioFormat::Webm | AudioFormat::Mp4 | AudioFormat::M4a | AudioFormat::Mpeg => false,
        }
    }

    /// Whether OpenAI's transcription and translation endpoints accept this format as an upload
    /// (flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, webm; Ogg Opus is an `ogg`).
    pub fn is_transcription_input(self) -> bool {
        match self {
            AudioFormat::Mp3
            | AudioFormat::Opus
            | AudioFormat::Flac
            | AudioFormat::Wav
            | AudioFormat::Ogg
            | AudioFormat::Webm
            | AudioFormat::Mp4
            | AudioFormat::M4a
            | AudioFormat::Mpeg => true,
            AudioFormat::Aac | AudioFormat::Pcm => false,
        }
    }
}

impl fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many ID3v2 tags in a row [`sniff`] skips before giving up: real files have one.
const MAX_ID3_TAGS: usize = 4;

/// Length of the ID3v2 tags at the start of `bytes` (0 when there are none).
pub(crate) fn id3_prefix_len(bytes: &[u8]) -> usize {
    let mut total = 0;
    for _ in 0..MAX_ID3_TAGS {
        match bytes
            .get(total..)
            .filter(|rest| rest.starts_with(b"ID3"))
            .and_then(id3_len)
        {
            Some(len) => total += len,
            None => break,
        }
    }
    total.min(bytes.len())
}

/// Identifies an audio file from its first bytes. `None` when nothing matches: raw PCM has no
/// signature and is never sniffed. MPEG audio and ADTS, whose sync words are short, must be
/// followed by a second valid frame header when the buffer is long enough to hold one.
pub fn sniff(bytes: &[u8]) -> Option<AudioFormat> {
    let tagged = bytes.starts_with(b"ID3");
    // An ID3 tag heads MP3s in practice, so a tag with nothing (or only padding) after it is
    // taken for one; what follows the tag wins otherwise (FLAC and AAC files carry tags too).
    sniff_untagged(&bytes[id3_prefix_len(bytes)..]).or(tagged.then_some(AudioFormat::Mp3))
}

fn sniff_untagged(b: &[u8]) -> Option<AudioFormat> {
    if b.len() < 4 {
        return None;
    }
    if b.starts_with(b"fLaC") {
        return Some(AudioFormat::Flac);
    }
    if b.len() >= 12 && b.starts_with(b"RIFF") && &b[8..12] == b"WAVE" {
        return Some(AudioFormat::Wav);
    }
    if b.starts_with(b"OggS") {
        return sniff_ogg(b);
    }
    if b.len() >= 12 && &b[4..8] == b"ftyp" {
        return match &b[8..12] {
            b"M4A " | b"M4B " | b"M4P " => Some(AudioFormat::M4a),
            _ => Some(AudioFormat::Mp4),
        };
    }
    if b.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return sniff_ebml(b);
    }
    if let Some(adts) = AdtsHeader::parse(b) {
        return confirm_next(b, adts.frame_len, |next| AdtsHeader::parse(next).is_some()).then_some(AudioFormat::Aac);
    }
    if let Some(mpeg) = MpegHeader::parse(b) {
        let same_stream = |next: &[u8]| MpegHeader::parse(next).is_some_and(|n| n.layer == mpeg.layer);
        if confirm_next(b, mpeg.frame_len, same_stream) {
            return Some(if mpeg.layer == 3 {
                AudioFormat::Mp3
            } else {
                AudioFormat::Mpeg
            });
        }
    }
    None
}

/// True when the buffer ends before the next frame (nothing to contradict the first header)
/// or when the next frame's header is valid.
fn confirm_next(b: &[u8], frame_len: usize, valid: impl Fn(&[u8]) -> bool) -> bool {
    match b.get(frame_len..) {
        Some(next) if next.len() >= 4 => valid(next),
        _ => true,
    }
}

fn sniff_ogg(b: &[u8]) -> Option<AudioFormat> {
    let segments = usize::from(*b.get(26)?);
    let first_packet = b.get(27 + segments..)?;
    if first_packet.starts_with(b"OpusHead") {
        Some(AudioFormat::Opus)
    } else {
        Some(AudioFormat::Ogg)
    }
}

/// Reads the EBML header's DocType; only `webm` counts (Matroska audio is not an upload OpenAI
/// accepts).
fn sniff_ebml(b: &[u8]) -> Option<AudioFormat> {
    let window = &b[..b.len().min(64)];
    let at = window.windows(2).position(|w| w == [0x42, 0x82])?;
    let size_byte = *window.get(at + 2)?;
    // DocType sizes are one-byte vints (0x80 | len) in every real file.
    if size_byte & 0x80 == 0 {
        return None;
    }
    let len = usize::from(size_byte & 0x7F);
    let doc_type = window.get(at + 3..at + 3 + len)?;
    (doc_type == b"webm").then_some(AudioFormat::Webm)
}

/// Length of an ID3v2 tag (header, body and optional footer), from its syncsafe size.
fn id3_len(b: &[u8]) -> Option<usize> {
    let header = b.get(..10)?;
    let flags = header[5];
    let mut size = 0usize;
    for &byte in &header[6..10] {
        if byte & 0x80 != 0 {
            return None;
        }
        size = (size << 7) | usize::from(byte);
    }
    let footer = if flags & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

/// The fields of an MPEG audio frame header this crate needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MpegHeader {
    /// 1, 2 or 3.
    pub layer: u8,
    pub sample_rate: u32,
    /// Whole frame, header included.
    pub frame_len: usize,
}

impl MpegHeader {
    /// Bit rates in kbit/s by [version is MPEG-1][layer - 1][index]; index 0 (free format) and
    /// 15 (forbidden) are refused before lookup.
    const BITRATES: [[[u32; 15]; 3]; 2] = [
        [
            [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
            [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
            [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
        ],
        [
            [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
            [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
            [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
        ],
    ];

    pub(crate) fn parse(b: &[u8]) -> Option<MpegHeader> {
        let h = b.get(..4)?;
        if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
            return None;
        }
        let version = (h[1] >> 3) & 0b11; // 00 = 2.5, 01 = reserved, 10 = 2, 11 = 1
        let layer = match (h[1] >> 1) & 0b11 {
            0b01 => 3,
            0b10 => 2,
            0b11 => 1,
            _ => return None,
        };
        let bitrate_index = usize::from(h[2] >> 4);
        let rate_index = (h[2] >> 2) & 0b11;
        if version == 0b01 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
            return None;
        }
        let base_rate = [44_100, 48_000, 32_000][usize::from(rate_index)];
        let sample_rate = match version {
            0b11 => base_rate,
            0b10 => base_rate / 2,
            _ => base_rate / 4,
        };
        let mpeg1 = version == 0b11;
        let bitrate = Self::BITRATES[usize::from(mpeg1)][usize::from(layer - 1)][bitrate_index] * 1000;
        let padding = u32::from((h[2] >> 1) & 1);
        let frame_len = match (layer, mpeg1) {
            (1, _) => (12 * bitrate / sample_rate + padding) * 4,
            (3, false) => 72 * bitrate / sample_rate + padding,
            _ => 144 * bitrate / sample_rate + padding,
        };
        Some(MpegHeader {
            layer,
            sample_rate,
            frame_len: usize::try_from(frame_len).ok()?,
        })
    }
}

/// The fields of an ADTS header this crate needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdtsHeader {
    pub frame_len: usize,
    pub sample_rate: u32,
    /// 0 when the channel layout is carried in the stream instead.
    pub channels: u16,
    /// Raw data blocks in the frame, 1024 samples each.
    pub blocks: u8,
}

impl AdtsHeader {
    pub(crate) fn parse(b: &[u8]) -> Option<AdtsHeader> {
        let h = b.get(..7)?;
        // 12-bit sync, then ID, then layer which is always 00 in ADTS.
        if h[0] != 0xFF || h[1] & 0xF6 != 0xF0 {
            return None;
        }
        const RATES: [u32; 13] = [
            96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350,
        ];
        let sample_rate = *RATES.get(usize::from((h[2] >> 2) & 0x0F))?;
        let channels = match ((h[2] & 0x01) << 2) | (h[3] >> 6) {
            7 => 8,
            c => u16::from(c),
        };
        let frame_len = (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        let header_len = if h[1] & 0x01 == 0 { 9 } else { 7 };
        let blocks = (h[6] & 0x03) + 1;
        (frame_len >= header_len).then_some(AdtsHeader {
            frame_len,
            sample_rate,
            channels,
            blocks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_names_round_trip_and_refuse_upload_only_formats() {
        for format in AudioFormat::ALL {
            let parsed = AudioFormat::from_openai_name(format.name());
            assert_eq!(parsed.is_some(), format.is_speech_output(), "{format}");
            if let Some(parsed) = parsed {
                assert_eq!(parsed, format);
            }
        }
        assert_eq!(AudioFormat::from_openai_name("MP3"), None);
        assert_eq!(AudioFormat::from_openai_name("webm"), None);
    }

    #[test]
    fn extensions_map_back() {
        for format in AudioFormat::ALL {
            assert_eq!(AudioFormat::from_extension(format.extension()), Some(format));
        }
        assert_eq!(AudioFormat::from_extension(".MPGA"), Some(AudioFormat::Mpeg));
        assert_eq!(AudioFormat::from_extension("txt"), None);
    }

    #[test]
    fn openai_upload_list_is_exactly_the_documented_one() {
        let accepted: Vec<_> = ["flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm"]
            .iter()
            .filter_map(|e| AudioFormat::from_extension(e))
            .collect();
        assert_eq!(accepted.len(), 9);
        assert!(accepted.iter().all(|f| f.is_transcription_input()));
        assert!(!AudioFormat::Pcm.is_transcription_input());
    }

    #[test]
    fn sniffs_containers_by_magic() {
        assert_eq!(sniff(b"fLaC\0\0\0\x22"), Some(AudioFormat::Flac));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), Some(AudioFormat::Wav));
        assert_eq!(sniff(b"RIFF\x24\0\0\0AVI LIST"), None);
        assert_eq!(sniff(b"\0\0\0\x20ftypM4A \0\0\0\0"), Some(AudioFormat::M4a));
        assert_eq!(sniff(b"\0\0\0\x20ftypisom\0\0\0\0"), Some(AudioFormat::Mp4));
        let webm = [
            0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0x82, 0x84, b'w', b'e', b'b', b'm',
        ];
        assert_eq!(sniff(&webm), Some(AudioFormat::Webm));
        let mut mkv = webm.to_vec();
        mkv.truncate(11);
        mkv.extend_from_slice(&[0x88, b'm', b'a', b't', b'r', b'o', b's', b'k', b'a']);
        assert_eq!(sniff(&mkv), None);
        assert_eq!(sniff(b"hello world, this is text"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn sniffs_ogg_codec_from_first_packet() {
        let mut page = b"OggS\0\x02".to_vec();
        page.extend_from_slice(&[0; 20]);
        page.push(1); // one segment
        page.push(19);
        let mut opus = page.clone();
        opus.extend_from_slice(b"OpusHead\x01\x01");
        assert_eq!(sniff(&opus), Some(AudioFormat::Opus));
        let mut vorbis = page;
        vorbis.extend_from_slice(b"\x01vorbis\0\0");
        assert_eq!(sniff(&vorbis), Some(AudioFormat::Ogg));
    }

    #[test]
    fn mpeg_frames_need_a_valid_successor() {
        // MPEG-1 Layer III, 128 kbit/s, 44.1 kHz: 417-byte frames.
        let header = [0xFF, 0xFB, 0x90, 0xC4];
        let parsed = MpegHeader::parse(&header).map(|h| (h.layer, h.sample_rate, h.frame_len));
        assert_eq!(parsed, Some((3, 44_100, 417)));
        let mut two = header.to_vec();
        two.resize(417, 0);
        two.extend_from_slice(&header);
        assert_eq!(sniff(&two), Some(AudioFormat::Mp3));
        let mut broken = header.to_vec();
        broken.resize(421, 0x55);
        assert_eq!(sniff(&broken), None);
        // Layer II sniffs as MPEG audio, not MP3.
        assert_eq!(sniff(&[0xFF, 0xFD, 0x90, 0xC4]), Some(AudioFormat::Mpeg));
    }

    #[test]
    fn id3_tag_is_skipped_to_find_the_real_format() {
        let mut tagged = b"ID3\x04\0\0\0\0\0\x04".to_vec();
        tagged.extend_from_slice(&[0; 4]);
        tagged.extend_from_slice(b"fLaC\0\0\0\x22");
        assert_eq!(sniff(&tagged), Some(AudioFormat::Flac));
        let mut mp3 = b"ID3\x04\0\0\0\0\0\x00".to_vec();
        mp3.extend_from_slice(&[0xFF, 0xFB, 0x90, 0xC4]);
        assert_eq!(sniff(&mp3), Some(AudioFormat::Mp3));
    }

    #[test]
    fn adts_is_not_mistaken_for_mpeg_audio() {
        // MPEG-4 AAC LC, 24 kHz, mono, 13-byte frame.
        let frame = [0xFF, 0xF1, 0x58, 0x40, 0x01, 0xBF, 0xFC, 0, 0, 0, 0, 0, 0];
        let header = AdtsHeader::parse(&frame).unwrap();
        assert_eq!(
            (header.frame_len, header.sample_rate, header.channels, header.blocks),
            (13, 24_000, 1, 1)
        );
        assert_eq!(sniff(&frame), Some(AudioFormat::Aac));
    }
}

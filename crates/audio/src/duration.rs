//! How long an uploaded file plays, read from its bytes. Speech-to-text is billed per second
//! of audio, so this number is money: it is measured from what the file contains (its packets
//! or pages), not from what its header claims, and it never panics on hostile input.
//!
//! - MP3, MPEG audio, FLAC, WAV, MP4/M4A: Symphonia demuxes the file (no decoding)
//!   and the packets' durations are summed. This is exact for VBR MP3 without a Xing header,
//!   and a header that lies about its length changes nothing. Encoder delay and padding (a
//!   few dozen milliseconds) count as audio, as they do for the providers.
//! - ADTS AAC: its frames are counted here (Symphonia's reader only follows MPEG-4 frames
//!   without CRC).
//! - Ogg (Opus, Vorbis, FLAC, Speex): the last page's granule position, per logical stream,
//!   summed over chained streams; Opus subtracts its pre-skip and any start offset.
//! - WAV with PCM, float or G.711 samples: data bytes / block size / rate, read here because
//!   streaming writers leave the chunk sizes at 0 or 0xFFFFFFFF, which Symphonia refuses; a
//!   size larger than the file counts only the bytes present. Other WAV codecs go to Symphonia.
//! - WebM: see the `webm` module; the end of the last audio block.
//! - Raw PCM (only with a hint, it has no signature): byte length / 2 / 24 000.
//!
//! A file cut short is measured up to the cut, not refused: the provider transcribes what is
//! there. A file whose structure is wrong from the start is [`AudioError::Corrupt`].

use std::io::{Cursor, ErrorKind};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use bytes::Bytes;
use symphonia::core::codecs::{self, CodecType};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::error::AudioError;
use crate::format::{AdtsHeader, AudioFormat, id3_prefix_len, sniff};
use crate::ogg::{self, PageError};
use crate::webm::{self, WebmCodec};

/// OpenAI's `pcm`: signed 16-bit little-endian, mono, 24 kHz.
pub const PCM_SAMPLE_RATE: u32 = 24_000;

/// The codec inside the container, as far as a provider needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// MPEG Layer III.
    Mp3,
    /// MPEG Layer I or II.
    MpegLayer12,
    /// AAC (any profile).
    Aac,
    /// FLAC.
    Flac,
    /// Opus.
    Opus,
    /// Vorbis.
    Vorbis,
    /// Speex.
    Speex,
    /// Signed 16-bit linear PCM.
    Linear16,
    /// G.711 mu-law.
    Mulaw,
    /// G.711 A-law.
    Alaw,
    /// Linear PCM of another width or float.
    OtherPcm,
    /// Apple Lossless.
    Alac,
    /// Anything else the container declares.
    Other,
}

/// What [`inspect`] learns about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioInfo {
    /// The container, from the bytes.
    pub format: AudioFormat,
    /// The codec in it.
    pub codec: Codec,
    /// How long it plays.
    pub duration: Duration,
    /// Sample rate in Hz as the file declares it (for Opus, the encoder's input rate when the
    /// header gives one, else 48 000).
    pub sample_rate: Option<u32>,
    /// Channel count, when declared.
    pub channels: Option<u16>,
}

/// The playing time of `audio`. See [`inspect`], which this wraps, for the errors.
pub fn duration(audio: impl Into<Bytes>, hint: Option<AudioFormat>) -> Result<Duration, AudioError> {
    inspect(audio, hint).map(|info| info.duration)
}

/// Identifies `audio` by its bytes and measures it.
///
/// The `hint` (from a file name or the request) is ignored, with one exception: raw PCM has
/// no signature and any bytes are valid PCM (quiet samples such as `FF FF` even look like an
/// MPEG sync word), so `Some(AudioFormat::Pcm)` is trusted as is.
///
/// # Errors
///
/// [`AudioError::Unrecognized`] when the bytes are no known format, [`AudioError::Corrupt`]
/// when they break their format's structure from the start, [`AudioError::Unsupported`] for
/// an Ogg codec without a known header.
pub fn inspect(audio: impl Into<Bytes>, hint: Option<AudioFormat>) -> Result<AudioInfo, AudioError> {
    let audio = audio.into();
    let format = match (hint, sniff(&audio)) {
        (Some(AudioFormat::Pcm), _) => AudioFormat::Pcm,
        (_, Some(found)) => found,
        (_, None) => return Err(AudioError::Unrecognized),
    };
    match format {
        AudioFormat::Pcm => pcm(&audio),
        AudioFormat::Opus | AudioFormat::Ogg => ogg_info(&audio, format),
        AudioFormat::Webm => webm_info(&audio),
        AudioFormat::Wav if let Some(info) = wav_info(&audio) => info,
        AudioFormat::Aac => adts_info(&audio),
        AudioFormat::Mp3
        | AudioFormat::Mpeg
        | AudioFormat::Flac
        | AudioFormat::Wav
        | AudioFormat::Mp4
        | AudioFormat::M4a => {
            // Symphonia is a large parser fed untrusted bytes; a panic inside it must become
            // a refused upload, not a dead worker.
            catch_unwind(AssertUnwindSafe(|| with_symphonia(audio, format)))
                .unwrap_or_else(|_| Err(AudioError::corrupt(format, "the file could not be parsed")))
        }
    }
}

fn pcm(audio: &[u8]) -> Result<AudioInfo, AudioError> {
    if !audio.len().is_multiple_of(2) {
        return Err(AudioError::corrupt(
            AudioFormat::Pcm,
            "16-bit samples need an even number of bytes",
        ));
    }
    let samples = (audio.len() / 2) as u64;
    Ok(AudioInfo {
        format: AudioFormat::Pcm,
        codec: Codec::Linear16,
        duration: frames_to_duration(samples, 1, PCM_SAMPLE_RATE),
        sample_rate: Some(PCM_SAMPLE_RATE),
        channels: Some(1),
    })
}

/// Measures a WAV file whose samples have a fixed size. `None` hands compressed WAV codecs
/// (ADPCM, MP3-in-WAV) to Symphonia.
fn wav_info(audio: &[u8]) -> Option<Result<AudioInfo, AudioError>> {
    let corrupt = |reason: &str| Some(Err(AudioError::corrupt(AudioFormat::Wav, reason)));
    let le16 = |b: &[u8], at: usize| b.get(at..at + 2).map(|v| u16::from_le_bytes([v[0], v[1]]));
    let le32 = |b: &[u8], at: usize| b.get(at..at + 4).map(|v| u32::from_le_bytes([v[0], v[1], v[2], v[3]]));
    // (codec, channels, rate, block_align)
    let mut fmt: Option<(Codec, u16, u32, u16)> = None;
    let mut pos = 12usize;
    while let (Some(id), Some(size)) = (audio.get(pos..pos + 4), le32(audio, pos + 4)) {
        let body = pos + 8;
        let available = audio.len().saturating_sub(body);
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        match id {
            b"fmt " => {
                let chunk = audio.get(body..body + size.min(available))?;
                let (Some(mut tag), Some(channels), Some(rate), Some(align), Some(bits)) = (
                    le16(chunk, 0),
                    le16(chunk, 2),
                    le32(chunk, 4),
                    le16(chunk, 12),
                    le16(chunk, 14),
                ) else {
                    return corrupt("fmt chunk is too short");
                };
                if tag == 0xFFFE {
                    // WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID.
                    tag = le16(chunk, 24).unwrap_or(0);
                }
                let codec = match (tag, bits) {
                    (1, 16) => Codec::Linear16,
                    (1 | 3, _) => Codec::OtherPcm,
                    (6, _) => Codec::Alaw,
                    (7, _) => Codec::Mulaw,
                    _ => return None,
                };
                if rate == 0 || align == 0 {
                    return corrupt("fmt chunk declares no sample rate or block size");
                }
                fmt = Some((codec, channels, rate, align));
            }
            b"data" => {
                let Some((codec, channels, rate, align)) = fmt else {
                    return corrupt("data chunk before fmt chunk");
                };
                let bytes = if size == 0 || size == u32::MAX as usize {
                    available
                } else {
                    size.min(available)
                };
                return Some(Ok(AudioInfo {
                    format: AudioFormat::Wav,
                    codec,
                    duration: frames_to_duration((bytes / usize::from(align)) as u64, 1, rate),
                    sample_rate: Some(rate),
                    channels: Some(channels),
                }));
            }
            _ => {}
        }
        pos = body.saturating_add(size).saturating_add(size % 2);
    }
    if fmt.is_some() {
        corrupt("no data chunk")
    } else {
        corrupt("no fmt chunk")
    }
}

/// Counts ADTS frames: 1024 samples per raw data block. Done here rather than in Symphonia,
/// whose reader only follows MPEG-4 frames without CRC.
fn adts_info(audio: &[u8]) -> Result<AudioInfo, AudioError> {
    let mut pos = id3_prefix_len(audio);
    let first =
        AdtsHeader::parse(&audio[pos..]).ok_or_else(|| AudioError::corrupt(AudioFormat::Aac, "no ADTS header"))?;
    let mut samples = 0u64;
    // A frame cut off by the end of the file, or junk after the last frame, ends the count.
    while let Some(header) = audio.get(pos..).and_then(AdtsHeader::parse) {
        if header.sample_rate != first.sample_rate || pos + header.frame_len > audio.len() {
            break;
        }
        samples += 1024 * u64::from(header.blocks);
        pos += header.frame_len;
    }
    Ok(AudioInfo {
        format: AudioFormat::Aac,
        codec: Codec::Aac,
        duration: frames_to_duration(samples, 1, first.sample_rate),
        sample_rate: Some(first.sample_rate),
        channels: Some(first.channels).filter(|&c| c > 0),
    })
}

fn frames_to_duration(frames: u64, numer: u32, denom: u32) -> Duration {
    if denom == 0 {
        return Duration::ZERO;
    }
    let nanos = u128::from(frames) * u128::from(numer) * 1_000_000_000 / u128::from(denom);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The linear PCM layouts WAV and MP4 files use besides signed 16-bit little-endian.
const OTHER_PCM: [CodecType; 12] = [
    codecs::CODEC_TYPE_PCM_U8,
    codecs::CODEC_TYPE_PCM_S8,
    codecs::CODEC_TYPE_PCM_S16BE,
    codecs::CODEC_TYPE_PCM_S24LE,
    codecs::CODEC_TYPE_PCM_S24BE,
    codecs::CODEC_TYPE_PCM_S32LE,
    codecs::CODEC_TYPE_PCM_S32BE,
    codecs::CODEC_TYPE_PCM_F32LE,
    codecs::CODEC_TYPE_PCM_F32BE,
    codecs::CODEC_TYPE_PCM_F64LE,
    codecs::CODEC_TYPE_PCM_F64BE,
    codecs::CODEC_TYPE_PCM_U16LE,
];

fn codec_of(codec: CodecType) -> Codec {
    match codec {
        codecs::CODEC_TYPE_MP3 => Codec::Mp3,
        codecs::CODEC_TYPE_MP1 | codecs::CODEC_TYPE_MP2 => Codec::MpegLayer12,
        codecs::CODEC_TYPE_AAC => Codec::Aac,
        codecs::CODEC_TYPE_FLAC => Codec::Flac,
        codecs::CODEC_TYPE_OPUS => Codec::Opus,
        codecs::CODEC_TYPE_VORBIS => Codec::Vorbis,
        codecs::CODEC_TYPE_SPEEX => Codec::Speex,
        codecs::CODEC_TYPE_PCM_S16LE => Codec::Linear16,
        codecs::CODEC_TYPE_PCM_MULAW => Codec::Mulaw,
        codecs::CODEC_TYPE_PCM_ALAW => Codec::Alaw,
        codecs::CODEC_TYPE_ALAC => Codec::Alac,
        c if OTHER_PCM.contains(&c) => Codec::OtherPcm,
        _ => Codec::Other,
    }
}

fn symphonia_reason(err: &SymphoniaError) -> String {
    match err {
        SymphoniaError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof => "the file ends inside its header".into(),
        SymphoniaError::IoError(_) => "the file could not be read".into(),
        SymphoniaError::DecodeError(msg) => format!("malformed stream ({msg})"),
        SymphoniaError::Unsupported(msg) => format!("unsupported feature ({msg})"),
        SymphoniaError::LimitError(msg) => format!("exceeds a safety limit ({msg})"),
        SymphoniaError::SeekError(_) | SymphoniaError::ResetRequired => "malformed stream".into(),
    }
}

fn with_symphonia(audio: Bytes, format: AudioFormat) -> Result<AudioInfo, AudioError> {
    let source = MediaSourceStream::new(Box::new(Cursor::new(audio)), MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    hint.with_extension(format.extension());
    // Gapless mode is off on purpose: Symphonia then trims MP3 packets to the header's frame
    // count, which for a VBR file without a Xing tag is only a guess from the first bit rate.
    let options = FormatOptions::default();
    let probed = symphonia::default::get_probe()
        .format(&hint, source, &options, &MetadataOptions::default())
        .map_err(|e| AudioError::corrupt(format, symphonia_reason(&e)))?;
    let mut reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != codecs::CODEC_TYPE_NULL && t.codec_params.sample_rate.is_some())
        .ok_or_else(|| AudioError::corrupt(format, "no audio track"))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let sample_rate = params.sample_rate.unwrap_or(0);
    let (numer, denom) = match params.time_base {
        Some(tb) if tb.denom > 0 => (tb.numer, tb.denom),
        _ => (1, sample_rate),
    };

    let mut ticks: u64 = 0;
    let mut packets: u64 = 0;
    loop {
        match reader.next_packet() {
            Ok(packet) if packet.track_id() == track_id => {
                ticks = ticks.saturating_add(packet.dur());
                packets += 1;
            }
            Ok(_) => {}
            Err(SymphoniaError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => break,
            // Damage after good packets is a cut or trailing junk: bill what played.
            Err(_) if packets > 0 => break,
            Err(e) => return Err(AudioError::corrupt(format, symphonia_reason(&e))),
        }
    }
    if packets == 0 && params.n_frames.unwrap_or(0) > 0 {
        return Err(AudioError::corrupt(
            format,
            "the header promises audio but the file holds none",
        ));
    }
    Ok(AudioInfo {
        format,
        codec: codec_of(params.codec),
        duration: frames_to_duration(ticks, numer, denom),
        sample_rate: params.sample_rate,
        channels: params.channels.and_then(|c| u16::try_from(c.count()).ok()),
    })
}

/// The identification header of one Ogg logical stream.
#[derive(Debug, Clone, Copy)]
struct OggStream {
    serial: u32,
    codec: Codec,
    /// Granule units per second.
    granule_rate: u32,
    pre_skip: u64,
    sample_rate: Option<u32>,
    channels: Option<u16>,
    /// Granule position where the audio starts (non-zero for streams cut from a live one).
    start: Option<u64>,
    last_granule: u64,
    /// An end-of-stream page was seen; a new stream may follow (a chain).
    ended: bool,
}

impl OggStream {
    fn from_first_packet(serial: u32, packet: &[u8], format: AudioFormat) -> Result<OggStream, AudioError> {
        let le16 = |at: usize| packet.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let le32 = |at: usize| {
            packet
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let base = OggStream {
            serial,
            codec: Codec::Other,
            granule_rate: 0,
            pre_skip: 0,
            sample_rate: None,
            channels: None,
            start: None,
            last_granule: 0,
            ended: false,
        };
        if packet.starts_with(b"OpusHead") {
            let bad = || AudioError::corrupt(format, "OpusHead is too short or of an unknown version");
            let version = *packet.get(8).ok_or_else(bad)?;
            if packet.len() < 19 || version & 0xF0 != 0 {
                return Err(bad());
            }
            let input_rate = le32(12).unwrap_or(0);
            return Ok(OggStream {
                codec: Codec::Opus,
                granule_rate: 48_000,
                pre_skip: u64::from(le16(10).unwrap_or(0)),
                sample_rate: Some(if input_rate == 0 { 48_000 } else { input_rate }),
                channels: Some(u16::from(packet[9])),
                ..base
            });
        }
        let (codec, rate, channels) = if packet.starts_with(b"\x01vorbis") {
            (Codec::Vorbis, le32(12), packet.get(11).map(|&c| u16::from(c)))
        } else if packet.starts_with(b"\x7FFLAC") {
            // Mapping header (9 bytes), "fLaC", block header (4), then STREAMINFO.
            let info = packet.get(17..).unwrap_or(&[]);
            let rate = info
                .get(10..13)
                .map(|b| (u32::from(b[0]) << 12) | (u32::from(b[1]) << 4) | (u32::from(b[2]) >> 4));
            let channels = info.get(12).map(|b| u16::from((b >> 1) & 0x07) + 1);
            (Codec::Flac, rate, channels)
        } else if packet.starts_with(b"Speex   ") {
            (Codec::Speex, le32(36), le32(48).and_then(|c| u16::try_from(c).ok()))
        } else {
            return Err(AudioError::Unsupported {
                format,
                by: "duration measurement (unknown Ogg codec)",
            });
        };
        let rate = rate
            .filter(|&r| r > 0)
            .ok_or_else(|| AudioError::corrupt(format, "stream header has no sample rate"))?;
        Ok(OggStream {
            codec,
            granule_rate: rate,
            sample_rate: Some(rate),
            channels,
            ..base
        })
    }

    fn duration(&self) -> Duration {
        let start = self.start.unwrap_or(0);
        let samples = self.last_granule.saturating_sub(start).saturating_sub(self.pre_skip);
        frames_to_duration(samples, 1, self.granule_rate)
    }
}

/// What to do with a page, given the stream being measured.
enum OggStep {
    /// A page of the measured stream.
    Measure,
    /// A page of another, multiplexed stream: only the first one is measured.
    Skip,
    /// The first page of a stream: the file's first, or the next link of a chain.
    Start,
}

fn ogg_info(audio: &[u8], format: AudioFormat) -> Result<AudioInfo, AudioError> {
    let mut pos = 0usize;
    let mut current: Option<OggStream> = None;
    let mut first: Option<OggStream> = None;
    let mut total = Duration::ZERO;
    while pos < audio.len() {
        let (page, len) = match ogg::parse_page(&audio[pos..]) {
            Ok(parsed) => parsed,
            Err(PageError::Truncated) if current.is_some() => break,
            Err(PageError::Truncated) => {
                return Err(AudioError::corrupt(format, "the file ends inside its first page"));
            }
            Err(PageError::Invalid(reason)) => return Err(AudioError::corrupt(format, reason)),
        };
        pos += len;
        let starts_stream = page.header_type & ogg::BOS != 0;
        let step = match current.as_ref() {
            None => OggStep::Start,
            // Chain links should have fresh serials, but concatenated files often repeat one.
            Some(stream) if starts_stream && stream.ended => OggStep::Start,
            Some(stream) if page.serial == stream.serial => OggStep::Measure,
            Some(_) => OggStep::Skip,
        };
        match step {
            OggStep::Skip => {}
            OggStep::Measure => {
                if let Some(stream) = current.as_mut() {
                    stream.ended |= page.header_type & ogg::EOS != 0;
                    if page.granule != u64::MAX {
                        if stream.start.is_none() && stream.codec == Codec::Opus && page.granule > 0 {
                            let on_page: u64 = page
                                .segments()
                                .filter(|(_, complete)| *complete)
                                .filter_map(|(packet, _)| webm::opus_packet_samples(packet))
                                .sum();
                            stream.start = Some(page.granule.saturating_sub(on_page));
                        }
                        stream.last_granule = stream.last_granule.max(page.granule);
                    }
                }
            }
            OggStep::Start => {
                if !starts_stream {
                    return Err(AudioError::corrupt(
                        format,
                        "stream does not start with a beginning-of-stream page",
                    ));
                }
                if let Some(previous) = current.take() {
                    total += previous.duration();
                }
                let (packet, _) = page
                    .segments()
                    .next()
                    .ok_or_else(|| AudioError::corrupt(format, "empty first page"))?;
                let stream = OggStream::from_first_packet(page.serial, packet, format)?;
                first.get_or_insert(stream);
                current = Some(stream);
            }
        }
    }
    let stream = first.ok_or_else(|| AudioError::corrupt(format, "no Ogg pages"))?;
    if let Some(last) = current {
        total += last.duration();
    }
    Ok(AudioInfo {
        format,
        codec: stream.codec,
        duration: total,
        sample_rate: stream.sample_rate,
        channels: stream.channels,
    })
}

fn webm_info(audio: &[u8]) -> Result<AudioInfo, AudioError> {
    let info = webm::inspect(audio).map_err(|reason| AudioError::corrupt(AudioFormat::Webm, reason))?;
    Ok(AudioInfo {
        format: AudioFormat::Webm,
        codec: match info.codec {
            WebmCodec::Opus => Codec::Opus,
            WebmCodec::Vorbis => Codec::Vorbis,
            WebmCodec::Other(_) => Codec::Other,
        },
        duration: info.duration,
        sample_rate: info.sample_rate,
        channels: info.channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::synthesize;

    #[test]
    fn adts_frames_with_crc_and_a_cut_last_frame_are_counted() {
        // MPEG-2 AAC LC, 16 kHz, mono, with CRC (9-byte header), 2 raw blocks per frame.
        let mut frame = vec![0xFF, 0xF8, 0x60, 0x40, 0x02, 0x1F, 0xFD];
        frame.extend_from_slice(&[0; 2]); // CRC
        frame.extend_from_slice(&[0; 7]); // 16 bytes in all
        assert_eq!(
            AdtsHeader::parse(&frame).map(|h| (h.frame_len, h.blocks)),
            Some((16, 2))
        );
        let mut stream: Vec<u8> = frame.iter().copied().cycle().take(16 * 5).collect();
        stream.extend_from_slice(&frame[..10]); // a cut sixth frame
        let info = inspect(stream, None).unwrap();
        assert_eq!(info.format, AudioFormat::Aac);
        assert_eq!(info.sample_rate, Some(16_000));
        assert_eq!(info.duration, Duration::from_millis(640)); // 5 frames x 2048 samples
    }

    #[test]
    fn chained_ogg_streams_add_up() {
        let first = synthesize(AudioFormat::Opus, Duration::from_millis(1500), 48_000).unwrap();
        let second = synthesize(AudioFormat::Opus, Duration::from_millis(700), 48_000).unwrap();
        let chained = [first.clone(), second].concat();
        assert_eq!(inspect(chained, None).unwrap().duration, Duration::from_millis(2200));
        // A second stream multiplexed with the first (its BOS before the first's EOS) is skipped.
        let (head, head_len) = ogg::parse_page(&first).unwrap();
        let mut other = ogg::PageWriter::new(99);
        other.page(ogg::BOS, 0, &[head.body]);
        other.page(ogg::EOS, 48_000 * 9, &[&[0xF8, 0xFF, 0xFE]]);
        let other = other.finish();
        let grouped = [&first[..head_len], &other, &first[head_len..]].concat();
        assert_eq!(inspect(grouped, None).unwrap().duration, Duration::from_millis(1500));
    }

    #[test]
    fn streaming_wav_sizes_count_the_bytes_present() {
        let wav = synthesize(AudioFormat::Wav, Duration::from_millis(500), 8_000).unwrap();
        for size in [0u32, u32::MAX] {
            let mut streamed = wav.clone();
            streamed[4..8].copy_from_slice(&size.to_le_bytes());
            streamed[40..44].copy_from_slice(&size.to_le_bytes());
            let info = inspect(streamed, None).unwrap();
            assert_eq!(
                (info.codec, info.duration),
                (Codec::Linear16, Duration::from_millis(500))
            );
        }
        let mut float = wav;
        float[20..22].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(inspect(float, None).unwrap().codec, Codec::OtherPcm);
    }

    #[test]
    fn broken_headers_are_corrupt_with_a_reason() {
        let mut wav = synthesize(AudioFormat::Wav, Duration::from_millis(10), 8_000).unwrap();
        wav[12..16].copy_from_slice(b"junk");
        let err = inspect(wav, None).unwrap_err();
        assert!(
            matches!(
                err,
                AudioError::Corrupt {
                    format: AudioFormat::Wav,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("data chunk before fmt chunk"), "{err}");
        let flac = b"fLaC\0\0\0\x22".to_vec();
        assert!(matches!(
            inspect(flac, None),
            Err(AudioError::Corrupt {
                format: AudioFormat::Flac,
                ..
            })
        ));
        assert!(matches!(
            inspect(vec![1, 2, 3], Some(AudioFormat::Pcm)),
            Err(AudioError::Corrupt { .. })
        ));
    }
}

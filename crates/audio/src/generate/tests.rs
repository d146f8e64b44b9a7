//! Every generated format must decode and measure back to the length asked for.

use std::time::Duration;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::*;
use crate::duration::inspect;
use crate::format::sniff;
use crate::ogg;

/// Decodes every packet with Symphonia's decoders; returns (frames, peak amplitude).
fn decode_all(bytes: Vec<u8>) -> (u64, f32) {
    let source = MediaSourceStream::new(Box::new(std::io::Cursor::new(bytes)), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .expect("probe");
    let mut reader = probed.format;
    let track = reader.default_track().expect("track").clone();
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions { verify: true })
        .expect("decoder");
    let (mut frames, mut peak) = (0u64, 0f32);
    loop {
        let packet = match reader.next_packet() {
            Ok(p) => p,
            Err(symphonia::core::errors::Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("demux error: {e}"),
        };
        let decoded = decoder.decode(&packet).unwrap_or_else(|e| panic!("decode error: {e}"));
        frames += decoded.frames() as u64;
        let mut samples = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
        samples.copy_interleaved_ref(decoded);
        peak = samples.samples().iter().fold(peak, |p, s| p.max(s.abs()));
    }
    // FLAC verification (MD5 is zero, so only CRCs) happens in finalize.
    let _ = decoder.finalize();
    (frames, peak)
}

fn assert_close(actual: Duration, wanted: Duration, tolerance: Duration) {
    let diff = actual.abs_diff(wanted);
    assert!(
        diff <= tolerance,
        "measured {actual:?}, asked {wanted:?}, tolerance {tolerance:?}"
    );
}

#[test]
fn wav_decodes_to_a_tone_of_the_asked_length() {
    let wanted = Duration::from_millis(1500);
    let bytes = synthesize(AudioFormat::Wav, wanted, 16_000).unwrap();
    assert_eq!(sniff(&bytes), Some(AudioFormat::Wav));
    assert_eq!(bytes.len(), 44 + 24_000 * 2);
    let info = inspect(bytes.clone(), None).unwrap();
    assert_eq!(info.duration, wanted);
    assert_eq!(info.sample_rate, Some(16_000));
    let (frames, peak) = decode_all(bytes);
    assert_eq!(frames, 24_000);
    assert!((0.09..0.11).contains(&peak), "peak {peak}");
}

#[test]
fn pcm_is_24khz_headerless_and_measurable_only_with_a_hint() {
    let bytes = synthesize(AudioFormat::Pcm, Duration::from_millis(250), 24_000).unwrap();
    assert_eq!(bytes.len(), 6000 * 2);
    assert_eq!(sniff(&bytes), None);
    assert_eq!(
        inspect(bytes.clone(), Some(AudioFormat::Pcm)).unwrap().duration,
        Duration::from_millis(250)
    );
    assert!(matches!(inspect(bytes, None), Err(AudioError::Unrecognized)));
    assert!(matches!(
        synthesize(AudioFormat::Pcm, Duration::from_secs(1), 16_000),
        Err(AudioError::Invalid {
            field: "sample_rate",
            ..
        })
    ));
}

#[test]
fn flac_passes_symphonia_crc_checks_and_decodes_the_tone() {
    for rate in [44_100, 24_000, 11_025, 22_000] {
        let wanted = Duration::from_millis(2100);
        let bytes = synthesize(AudioFormat::Flac, wanted, rate).unwrap();
        assert_eq!(sniff(&bytes), Some(AudioFormat::Flac));
        let info = inspect(bytes.clone(), None).unwrap();
        assert_close(info.duration, wanted, Duration::from_micros(100));
        assert_eq!(info.sample_rate, Some(rate));
        let (frames, peak) = decode_all(bytes);
        assert_eq!(frames, (u64::from(rate) * 21 + 5) / 10, "rate {rate}");
        assert!((0.09..0.11).contains(&peak), "peak {peak}");
    }
}

#[test]
fn flac_constant_subframes_decode_to_silence() {
    let bytes = flac::flac(&[0; 10_000], 8_000);
    let (frames, peak) = decode_all(bytes);
    assert_eq!(frames, 10_000);
    assert_eq!(peak, 0.0);
}

#[test]
fn mp3_decodes_to_silence_at_mpeg1_and_mpeg2_rates() {
    for rate in mp3::SAMPLE_RATES {
        let wanted = Duration::from_millis(3000);
        let bytes = synthesize(AudioFormat::Mp3, wanted, rate).unwrap();
        assert_eq!(sniff(&bytes), Some(AudioFormat::Mp3), "rate {rate}");
        let per_frame = if rate >= 32_000 { 1152 } else { 576 };
        let info = inspect(bytes.clone(), None).unwrap();
        assert_eq!(info.sample_rate, Some(rate));
        assert_close(
            info.duration,
            wanted,
            Duration::from_secs_f64(f64::from(per_frame) / f64::from(rate)),
        );
        let (frames, peak) = decode_all(bytes);
        assert!(frames >= u64::from(rate) * 3, "rate {rate}: {frames} frames");
        assert_eq!(peak, 0.0);
    }
}

#[test]
fn aac_adts_decodes_to_silence() {
    for rate in [24_000, 44_100, 48_000, 8_000] {
        let wanted = Duration::from_millis(1000);
        let bytes = synthesize(AudioFormat::Aac, wanted, rate).unwrap();
        assert_eq!(sniff(&bytes), Some(AudioFormat::Aac));
        let info = inspect(bytes.clone(), None).unwrap();
        assert_close(info.duration, wanted, Duration::from_secs_f64(1024.0 / f64::from(rate)));
        let (frames, peak) = decode_all(bytes);
        assert_eq!(frames, u64::from(rate).div_ceil(1024) * 1024);
        assert_eq!(peak, 0.0);
    }
}

#[test]
fn opus_pages_have_valid_checksums_and_exact_granules() {
    let wanted = Duration::from_millis(2345);
    let bytes = synthesize(AudioFormat::Opus, wanted, 24_000).unwrap();
    assert_eq!(sniff(&bytes), Some(AudioFormat::Opus));
    let mut pos = 0;
    let mut pages = Vec::new();
    while pos < bytes.len() {
        let (page, len) = ogg::parse_page(&bytes[pos..]).expect("valid page with a correct CRC");
        pages.push((page.header_type, page.granule, page.segments().count()));
        pos += len;
    }
    assert_eq!(pages[0], (ogg::BOS, 0, 1));
    assert_eq!(pages[1], (0, 0, 1));
    let last = pages.last().unwrap();
    assert_eq!(last.0, ogg::EOS);
    assert_eq!(last.1, u64::from(opus::PRE_SKIP) + 2345 * 48);
    let info = inspect(bytes, None).unwrap();
    assert_eq!(info.duration, wanted);
    assert_eq!(info.sample_rate, Some(24_000));
}

#[test]
fn zero_length_audio_is_still_a_valid_file() {
    for format in [AudioFormat::Wav, AudioFormat::Opus] {
        let bytes = synthesize(format, Duration::ZERO, 48_000).unwrap();
        assert_eq!(inspect(bytes, None).unwrap().duration, Duration::ZERO, "{format}");
    }
    // FLAC readers need a frame, so "nothing" is one silent sample.
    let flac = synthesize(AudioFormat::Flac, Duration::ZERO, 48_000).unwrap();
    assert_eq!(
        inspect(flac.clone(), None).unwrap().duration,
        Duration::from_nanos(20_833)
    );
    assert_eq!(decode_all(flac), (1, 0.0));
}

#[test]
fn refuses_upload_only_formats_bad_rates_and_huge_durations() {
    assert!(matches!(
        synthesize(AudioFormat::Webm, Duration::from_secs(1), 48_000),
        Err(AudioError::Unsupported {
            format: AudioFormat::Webm,
            ..
        })
    ));
    assert!(matches!(
        synthesize(AudioFormat::Mp3, Duration::from_secs(1), 96_000),
        Err(AudioError::Invalid {
            field: "sample_rate",
            ..
        })
    ));
    assert!(matches!(
        synthesize(AudioFormat::Wav, MAX_SYNTHESIS + Duration::from_secs(1), 8_000),
        Err(AudioError::Invalid { field: "duration", .. })
    ));
}

#[test]
fn speech_duration_scales_with_length_and_speed() {
    assert_eq!(speech_duration(150, 1.0), Duration::from_secs(10));
    assert_eq!(speech_duration(150, 2.0), Duration::from_secs(5));
    assert_eq!(speech_duration(150, 100.0), speech_duration(150, 4.0));
    assert_eq!(speech_duration(150, f32::NAN), Duration::from_secs(10));
    assert_eq!(speech_duration(0, 1.0), Duration::ZERO);
}

//! Generated audio in the shapes Google and Polly answer that
//! `oneflow_audio::generate` does not write itself: headerless 16-bit PCM at
//! any rate (the generator's `pcm` is OpenAI's 24 kHz only) and G.711 μ-law
//! / A-law in a WAV container (Google's `MULAW` and `ALAW`). Both start from
//! the generator's WAV tone, so they carry the same audible 440 Hz signal.

use std::time::Duration;

use oneflow_audio::AudioError;
use oneflow_audio::AudioFormat;
use oneflow_audio::generate::{sample_rates, synthesize};

/// Which G.711 companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Law {
    Mu,
    A,
}

/// `duration` of mono signed 16-bit little-endian samples at `rate`, no header.
pub(crate) fn raw_pcm(duration: Duration, rate: u32) -> Result<Vec<u8>, AudioError> {
    let wav = synthesize(AudioFormat::Wav, duration, rate)?;
    Ok(wav_data(&wav).to_vec())
}

/// `duration` of G.711 audio at `rate` in a WAV file (format tag 7 for
/// μ-law, 6 for A-law, 8 bits a sample).
pub(crate) fn g711_wav(duration: Duration, rate: u32, law: Law) -> Result<Vec<u8>, AudioError> {
    let pcm = raw_pcm(duration, rate)?;
    let samples: Vec<u8> = pcm
        .chunks_exact(2)
        .map(|pair| {
            let sample = i16::from_le_bytes([pair[0], pair[1]]);
            match law {
                Law::Mu => mulaw(sample),
                Law::A => alaw(sample),
            }
        })
        .collect();
    let data_len = u32::try_from(samples.len()).unwrap_or(u32::MAX - 36);
    let tag: u16 = match law {
        Law::Mu => 7,
        Law::A => 6,
    };
    let mut out = Vec::with_capacity(44 + samples.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes()); // one byte a sample
    out.extend_from_slice(&1u16.to_le_bytes()); // block align
    out.extend_from_slice(&8u16.to_le_bytes()); // bits a sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&samples);
    Ok(out)
}

/// The sample rate the generator can write `format` at that is closest to
/// `wanted` (`wanted` itself when it can); WAV and FLAC take any rate.
pub(crate) fn closest_rate(format: AudioFormat, wanted: u32) -> u32 {
    let rates = sample_rates(format);
    if rates.is_empty() || rates.contains(&wanted) {
        return wanted;
    }
    rates
        .iter()
        .copied()
        .min_by_key(|rate| rate.abs_diff(wanted))
        .unwrap_or(wanted)
}

/// The samples of a WAV file: the body of its `data` chunk (or nothing).
fn wav_data(wav: &[u8]) -> &[u8] {
    let mut pos = 12;
    while let (Some(id), Some(size)) = (wav.get(pos..pos + 4), wav.get(pos + 4..pos + 8)) {
        let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
        let body = pos + 8;
        if id == b"data" {
            return &wav[body..(body + size).min(wav.len())];
        }
        pos = body + size + (size & 1);
    }
    &[]
}

/// G.711 μ-law of one sample.
fn mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let sign: u8 = if sample < 0 { 0x80 } else { 0 };
    let magnitude = i32::from(sample).abs().min(CLIP) + BIAS;
    let mut exponent = 7u8;
    let mut mask = 0x4000;
    while exponent > 0 && magnitude & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = ((magnitude >> (exponent + 3)) & 0x0F) as u8;
    !(sign | (exponent << 4) | mantissa)
}

/// G.711 A-law of one sample.
fn alaw(sample: i16) -> u8 {
    const SEGMENT_ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut value = i32::from(sample) >> 3;
    let mask: u8 = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    let Some(segment) = SEGMENT_ENDS.iter().position(|end| value <= *end) else {
        return 0x7F ^ mask;
    };
    let shift = if segment < 2 { 1 } else { segment };
    let code = ((segment as u8) << 4) | ((value >> shift) & 0x0F) as u8;
    code ^ mask
}

#[cfg(test)]
mod tests {
    use oneflow_audio::{Codec, inspect};

    use super::*;

    #[test]
    fn raw_pcm_and_g711_wav_measure_back() {
        let half = Duration::from_millis(500);
        let pcm = raw_pcm(half, 8_000).unwrap();
        assert_eq!(pcm.len(), 8_000);
        for (law, codec) in [(Law::Mu, Codec::Mulaw), (Law::A, Codec::Alaw)] {
            let wav = g711_wav(half, 8_000, law).unwrap();
            let info = inspect(wav, None).unwrap();
            assert_eq!(info.codec, codec);
            assert_eq!(info.duration, half);
            assert_eq!(info.sample_rate, Some(8_000));
        }
    }

    #[test]
    fn companding_known_values() {
        assert_eq!(mulaw(0), 0xFF);
        assert_eq!(mulaw(-1), 0x7F);
        assert_eq!(mulaw(i16::MAX), 0x80);
        assert_eq!(mulaw(i16::MIN), 0x00);
        assert_eq!(alaw(0), 0xD5);
        assert_eq!(alaw(i16::MAX), 0xAA);
        assert_eq!(alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn closest_rates() {
        assert_eq!(closest_rate(AudioFormat::Mp3, 8_000), 16_000);
        assert_eq!(closest_rate(AudioFormat::Mp3, 22_050), 22_050);
        assert_eq!(closest_rate(AudioFormat::Opus, 44_100), 48_000);
        assert_eq!(closest_rate(AudioFormat::Wav, 11_025), 11_025);
    }
}

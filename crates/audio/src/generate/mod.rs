//! Real, playable audio of a chosen length, written without an encoder library, for the mock
//! provider and for tests. A mock that returned a few random bytes would let a broken
//! `Content-Type`, a wrong duration or a player that chokes go unnoticed; these files decode in
//! Symphonia and ffmpeg, and [`crate::inspect`] measures them back to the length asked for
//! (to within one codec frame).
//!
//! The lossless formats (WAV, PCM, FLAC) carry a quiet 440 Hz tone so a listener hears that
//! audio arrived; the lossy ones (MP3, AAC, Opus) carry digital silence, which each codec can
//! express in a few constant bytes per frame without a psychoacoustic encoder.

mod aac;
mod bits;
mod flac;
mod mp3;
mod opus;
mod wav;

use std::time::Duration;

use crate::error::AudioError;
use crate::format::AudioFormat;

/// The longest audio [`synthesize`] writes. Four thousand characters of speech take about
/// five minutes; the cap keeps a mock from allocating hundreds of megabytes on a typo.
pub const MAX_SYNTHESIS: Duration = Duration::from_secs(600);

/// Characters spoken per second at speed 1.0: about 150 words a minute.
const CHARS_PER_SECOND: f64 = 15.0;

/// How long a voice takes to read `text_chars` characters at `speed` (OpenAI's 0.25–4.0;
/// values outside are clamped), rounded to the millisecond. Lets the mock answer a speech
/// request with audio of a believable length.
pub fn speech_duration(text_chars: usize, speed: f32) -> Duration {
    let speed = if speed.is_finite() {
        f64::from(speed).clamp(0.25, 4.0)
    } else {
        1.0
    };
    let seconds = text_chars as f64 / (CHARS_PER_SECOND * speed);
    Duration::from_millis((seconds * 1000.0).round() as u64)
}

/// The sample rates each generated format accepts. WAV and FLAC take any rate in
/// 8 000..=192 000 Hz and are not listed here.
pub fn sample_rates(format: AudioFormat) -> &'static [u32] {
    match format {
        AudioFormat::Mp3 => &mp3::SAMPLE_RATES,
        AudioFormat::Aac => &aac::SAMPLE_RATES,
        AudioFormat::Opus => &opus::SAMPLE_RATES,
        AudioFormat::Pcm => &[crate::duration::PCM_SAMPLE_RATE],
        AudioFormat::Wav
        | AudioFormat::Flac
        | AudioFormat::Ogg
        | AudioFormat::Webm
        | AudioFormat::Mp4
        | AudioFormat::M4a
        | AudioFormat::Mpeg => &[],
    }
}

/// Writes `duration` of mono audio at `sample_rate` Hz in `format`.
///
/// Supports the six text-to-speech formats. `pcm` is OpenAI's headerless 24 kHz stream, so it
/// only takes 24 000; MP3, AAC and Opus take the rates in [`sample_rates`]. Opus always codes
/// at 48 kHz and records `sample_rate` as the input rate in its header.
///
/// # Errors
///
/// [`AudioError::Unsupported`] for the upload-only formats (Ogg Vorbis, WebM, MP4, M4A, MPEG
/// Layer I/II), [`AudioError::Invalid`] for a rate the format cannot carry or a duration over
/// [`MAX_SYNTHESIS`].
pub fn synthesize(format: AudioFormat, duration: Duration, sample_rate: u32) -> Result<Vec<u8>, AudioError> {
    if duration > MAX_SYNTHESIS {
        return Err(AudioError::invalid(
            "duration",
            format!("at most {} s of audio is generated", MAX_SYNTHESIS.as_secs()),
        ));
    }
    let allowed = sample_rates(format);
    let rate_ok = match format {
        AudioFormat::Wav | AudioFormat::Flac => (8_000..=192_000).contains(&sample_rate),
        _ => allowed.contains(&sample_rate),
    };
    if format.is_speech_output() && !rate_ok {
        return Err(AudioError::invalid(
            "sample_rate",
            format!("{format} cannot be generated at {sample_rate} Hz"),
        ));
    }
    match format {
        AudioFormat::Wav => Ok(wav::wav(&tone(duration, sample_rate), sample_rate)),
        AudioFormat::Pcm => Ok(wav::pcm(&tone(duration, sample_rate))),
        AudioFormat::Flac => Ok(flac::flac(&tone(duration, sample_rate), sample_rate)),
        AudioFormat::Mp3 => Ok(mp3::silence(duration, sample_rate)),
        AudioFormat::Aac => Ok(aac::silence(duration, sample_rate)),
        AudioFormat::Opus => Ok(opus::silence(duration, sample_rate)),
        AudioFormat::Ogg | AudioFormat::Webm | AudioFormat::Mp4 | AudioFormat::M4a | AudioFormat::Mpeg => {
            Err(AudioError::Unsupported {
                format,
                by: "the audio generator",
            })
        }
    }
}

/// Number of sample frames in `duration` at `rate`, rounded to the nearest.
fn frames(duration: Duration, rate: u32) -> u64 {
    let nanos = duration.as_nanos() * u128::from(rate);
    u64::try_from((nanos + 500_000_000) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// A 440 Hz sine at about -20 dBFS.
fn tone(duration: Duration, rate: u32) -> Vec<i16> {
    let n = frames(duration, rate);
    let step = std::f64::consts::TAU * 440.0 / f64::from(rate);
    (0..n)
        .map(|i| ((i as f64 * step).sin() * 3277.0).round() as i16)
        .collect()
}

#[cfg(test)]
mod tests;

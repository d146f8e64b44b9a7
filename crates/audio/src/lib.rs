//! Audio plumbing for OneFlow's `/v1/audio/speech`, `/v1/audio/transcriptions` and
//! `/v1/audio/translations`, free of I/O: the gateway, router and mock provider call these
//! functions with bytes they already hold and send what comes back.
//!
//! - [`format`](mod@format): which format a request names and which format a file is ([`sniff`]).
//! - [`duration`](mod@duration): how long an upload plays ([`inspect`], [`duration()`]); speech-to-text is
//!   billed on it.
//! - [`generate`]: real audio files of any length for the mock provider and tests.
//! - [`openai`]: the OpenAI request shapes, validated.
//! - [`transcript`]: one transcript type and the five OpenAI renderings of it.
//! - [`voices`]: OpenAI voice names → provider voices, overridable by configuration.
//! - [`google`]: service-account OAuth, Text-to-Speech and Speech-to-Text translation.
//! - [`language`]: language codes and names between OpenAI and providers.
//!
//! # Decisions
//!
//! **Bytes decide the format.** An upload's file name and content type are hints at most.
//! [`sniff`] reads magic numbers (ID3 tags are skipped to the audio behind them; MPEG and ADTS
//! sync words must be followed by a second valid frame header). A hint is used only for raw
//! PCM, which has no signature; a hint that contradicts the bytes is ignored. Bytes that match
//! nothing are [`AudioError::Unrecognized`], not `Corrupt`.
//!
//! **Duration is measured, not read from headers.** Symphonia demuxes (without decoding) MP3,
//! MPEG audio, FLAC and MP4/M4A and the packet durations are summed, so VBR MP3 without
//! a Xing tag is exact and a header that lies changes nothing. Symphonia's gapless mode is
//! off, because it trims to the header's (possibly guessed) frame count; encoder delay and
//! padding therefore count, a few dozen milliseconds. Ogg is measured by its last granule
//! position (Opus minus pre-skip and start offset; chained streams summed); WebM by the end of
//! its last audio block, durations taken from the Opus TOC bytes, minus `CodecDelay` (the
//! declared `Duration` is not trusted, and browser recordings have none); WAV with fixed-size
//! samples by its data bytes, which also handles streaming writers' 0/0xFFFFFFFF sizes; ADTS
//! by counting its frames. A file
//! cut short is measured up to the cut; one broken from the start is
//! [`AudioError::Corrupt`]. Symphonia runs inside `catch_unwind`: a parser panic on hostile
//! bytes becomes `Corrupt`, not a dead worker.
//!
//! **Generated audio is real.** WAV, PCM and FLAC carry a 440 Hz tone; FLAC is written by hand
//! with VERBATIM (or CONSTANT) subframes and real CRC-8/CRC-16. MP3 frames are headers plus
//! zeroed side information; AAC frames are ADTS headers plus a 4-byte raw data block coding no
//! spectral lines; Opus packets are the 3-byte CELT silence frame `F8 FF FE` in Ogg pages with
//! correct CRCs and an exact final granule. Symphonia decodes all but Opus (it has no Opus
//! decoder); ffmpeg decodes all six (checked by a test when ffmpeg is installed).
//!
//! **Google.** The service-account JWT is signed with `jsonwebtoken` (RS256, `kid` from the
//! key file, one-hour life) and exchanged with a form-encoded `jwt-bearer` grant;
//! [`google::auth::TokenCache`] is only the refresh policy (5 minutes early by default), with
//! the clock passed in. Text-to-Speech uses v1: `pcm` is `LINEAR16` at 24 kHz with the WAV
//! header removed by walking its chunks, and `aac`/`flac` are refused. Speech-to-Text uses
//! synchronous `speech:recognize` (audio up to one minute), v1 except MP3, which goes to
//! `v1p1beta1` where it has always been accepted. See each module for the field mapping.
//!
//! **Secrets.** Private keys are parsed at load and not kept as text; keys, assertions and
//! access tokens have hand-written `Debug` that redacts them, and no error message quotes
//! them. The `Authorization` value is marked sensitive.
//!
//! **Errors.** One [`AudioError`]; [`AudioError::is_client_error`] tells the gateway 400 from
//! 5xx, and [`AudioError::is_retryable`] is always false here (nothing in this crate does I/O).

pub mod duration;
mod error;
pub mod format;
pub mod generate;
pub mod google;
pub mod language;
mod ogg;
pub mod openai;
pub mod transcript;
pub mod voices;
mod webm;

pub use duration::{AudioInfo, Codec, duration, inspect};
pub use error::AudioError;
pub use format::{AudioFormat, sniff};
pub use openai::{SpeechRequest, Task, TranscriptFormat, TranscriptionRequest, Voice};
pub use transcript::{Rendered, Segment, Transcript, Word};
pub use voices::VoiceMap;

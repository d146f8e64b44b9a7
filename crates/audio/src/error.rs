//! The one error type of the crate. Audio arrives from clients and from providers, so every
//! failure says whose fault it is ([`AudioError::is_client_error`]) and never carries a
//! secret: messages name fields, formats and providers, not keys or tokens.

use crate::format::AudioFormat;

/// Everything that can go wrong while inspecting, generating or translating audio.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The bytes match no audio format this crate knows, and no hint was given.
    #[error("the file is not audio in a supported format (flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav or webm)")]
    Unrecognized,
    /// The format is known but this operation (or this provider) cannot handle it.
    #[error("{format} audio is not supported by {by}")]
    Unsupported {
        /// The format that was asked for or found.
        format: AudioFormat,
        /// Who cannot handle it: an operation ("duration measurement") or a provider
        /// ("Google Cloud Text-to-Speech").
        by: &'static str,
    },
    /// The bytes claim a format but break its rules (truncated header, bad structure).
    #[error("corrupt {format} audio: {reason}")]
    Corrupt {
        /// The format the bytes were read as.
        format: AudioFormat,
        /// What was wrong, in words a client can act on.
        reason: String,
    },
    /// A request field is missing or out of range.
    #[error("invalid `{field}`: {message}")]
    Invalid {
        /// The field, in the OpenAI request's spelling.
        field: &'static str,
        /// Why it was refused.
        message: String,
    },
    /// Credentials could not be read or used. The message never contains key material.
    #[error("credentials: {0}")]
    Credentials(String),
    /// A provider answered with something that is not what its documentation promises.
    #[error("unexpected response from {provider}: {message}")]
    Upstream {
        /// The provider, e.g. "Google Cloud Speech-to-Text".
        provider: &'static str,
        /// What was wrong with the response.
        message: String,
    },
}

impl AudioError {
    /// True when the caller sent something wrong (a 400 for the client), false when the fault
    /// lies with configuration or a provider (a 5xx).
    pub fn is_client_error(&self) -> bool {
        match self {
            AudioError::Unrecognized
            | AudioError::Unsupported { .. }
            | AudioError::Corrupt { .. }
            | AudioError::Invalid { .. } => true,
            AudioError::Credentials(_) | AudioError::Upstream { .. } => false,
        }
    }

    /// Whether repeating the same call could succeed. Nothing in this crate does I/O, so a
    /// repeat gives the same answer: always false. Kept as a method so callers decide
    /// retries through the error, as everywhere else in OneFlow.
    pub fn is_retryable(&self) -> bool {
        match self {
            AudioError::Unrecognized
            | AudioError::Unsupported { .. }
            | AudioError::Corrupt { .. }
            | AudioError::Invalid { .. }
            | AudioError::Credentials(_)
            | AudioError::Upstream { .. } => false,
        }
    }

    pub(crate) fn corrupt(format: AudioFormat, reason: impl Into<String>) -> Self {
        AudioError::Corrupt {
            format,
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AudioError::Invalid {
            field,
            message: message.into(),
        }
    }
}

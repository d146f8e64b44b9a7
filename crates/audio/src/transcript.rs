//! One provider-neutral transcript and the five OpenAI renderings of it (`json`, `text`,
//! `srt`, `vtt`, `verbose_json`). Every speech-to-text adapter fills a [`Transcript`]; none of
//! them formats subtitles itself, so timestamps and escaping are right once for all.
//!
//! Fields Whisper has and other providers lack are filled so clients that read them keep
//! working: `seek` 0, `tokens` empty, `temperature` the request's, `avg_logprob` the natural
//! log of the provider's confidence (0 when it gives none), `compression_ratio` 1 and
//! `no_speech_prob` 0. `json` and `verbose_json` carry `usage` as
//! `{"type": "duration", "seconds": …}` with the billed seconds rounded up, as OpenAI does.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::language;
use crate::openai::{Granularities, Task, TranscriptFormat};

/// A word with its timing.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// The word as recognised.
    pub word: String,
    /// Start, from the beginning of the audio.
    pub start: Duration,
    /// End, from the beginning of the audio.
    pub end: Duration,
}

/// A stretch of speech with its timing.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Start, from the beginning of the audio.
    pub start: Duration,
    /// End, from the beginning of the audio.
    pub end: Duration,
    /// The text, without leading or trailing whitespace.
    pub text: String,
    /// The provider's confidence in 0..=1, when it gives one.
    pub confidence: Option<f32>,
}

/// A finished transcription or translation.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// Which endpoint asked.
    pub task: Task,
    /// Language of the text: an ISO 639-1 code or a BCP-47 tag (`en`, `en-US`).
    pub language: String,
    /// Length of the audio (billed duration).
    pub duration: Duration,
    /// The whole text.
    pub text: String,
    /// Timed segments; may be empty when the provider gives none.
    pub segments: Vec<Segment>,
    /// Timed words; may be empty.
    pub words: Vec<Word>,
}

/// A rendered response body and its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The `Content-Type` header value.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Transcript {
    /// Renders the transcript as OpenAI would answer `format`. `granularities` selects
    /// `segments` and `words` in `verbose_json`; `temperature` is echoed into segments.
    pub fn render(&self, format: TranscriptFormat, granularities: Granularities, temperature: f32) -> Rendered {
        match format {
            TranscriptFormat::Json => Rendered {
                content_type: "application/json",
                body: json!({"text": self.text, "usage": self.usage()}).to_string(),
            },
            TranscriptFormat::Text => Rendered {
                content_type: "text/plain; charset=utf-8",
                body: format!("{}\n", self.text),
            },
            TranscriptFormat::Srt => Rendered {
                content_type: "application/x-subrip",
                body: self.srt(),
            },
            TranscriptFormat::Vtt => Rendered {
                content_type: "text/vtt; charset=utf-8",
                body: self.vtt(),
            },
            TranscriptFormat::VerboseJson => Rendered {
                content_type: "application/json",
                body: self.verbose_json(granularities, temperature).to_string(),
            },
        }
    }

    /// The billed whole seconds: the duration rounded up.
    pub fn billed_seconds(&self) -> u64 {
        self.duration.as_secs() + u64::from(self.duration.subsec_nanos() > 0)
    }

    fn usage(&self) -> Value {
        json!({"type": "duration", "seconds": self.billed_seconds()})
    }

    /// The segments to show; when the provider gave none, the whole text as one.
    fn timed_segments(&self) -> Vec<Segment> {
        if !self.segments.is_empty() || self.text.trim().is_empty() {
            return self.segments.clone();
        }
        vec![Segment {
            start: Duration::ZERO,
            end: self.duration,
            text: self.text.trim().to_owned(),
            confidence: None,
        }]
    }

    fn srt(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.timed_segments().iter().enumerate() {
            let _ = write!(
                out,
                "{}\n{} --> {}\n{}\n\n",
                i + 1,
                timestamp(s.start, ','),
                timestamp(s.end, ','),
                cue_text(&s.text)
            );
        }
        out
    }

    fn vtt(&self) -> String {
        let mut out = String::from("WEBVTT\n\n");
        for s in self.timed_segments() {
            let text = cue_text(&s.text)
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            let _ = write!(
                out,
                "{} --> {}\n{}\n\n",
                timestamp(s.start, '.'),
                timestamp(s.end, '.'),
                text
            );
        }
        out
    }

    fn verbose_json(&self, granularities: Granularities, temperature: f32) -> Value {
        let language = match self.task {
            Task::Translate => "english".to_owned(),
            Task::Transcribe => {
                language::name(&self.language).map_or_else(|| self.language.to_lowercase(), str::to_owned)
            }
        };
        let mut body = json!({
            "task": self.task.as_str(),
            "language": language,
            "duration": seconds(self.duration),
            "text": self.text,
        });
        if granularities.segment {
            let segments: Vec<Value> = self
                .timed_segments()
                .iter()
                .enumerate()
                .map(|(id, s)| {
                    json!({
                        "id": id,
                        "seek": 0,
                        "start": seconds(s.start),
                        "end": seconds(s.end),
                        // Whisper starts each segment's text with a space.
                        "text": format!(" {}", s.text),
                        "tokens": [],
                        "temperature": temperature,
                        "avg_logprob": s.confidence.filter(|c| *c > 0.0).map_or(0.0, |c| f64::from(c).ln()),
                        "compression_ratio": 1.0,
                        "no_speech_prob": 0.0,
                    })
                })
                .collect();
            body["segments"] = Value::Array(segments);
        }
        if granularities.word {
            let words: Vec<Value> = self
                .words
                .iter()
                .map(|w| json!({"word": w.word, "start": seconds(w.start), "end": seconds(w.end)}))
                .collect();
            body["words"] = Value::Array(words);
        }
        body["usage"] = self.usage();
        body
    }
}

/// Seconds as a JSON number, to the millisecond.
fn seconds(d: Duration) -> f64 {
    (d.as_millis() as f64) / 1000.0
}

/// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT).
fn timestamp(d: Duration, separator: char) -> String {
    let ms = d.as_millis();
    format!(
        "{:02}:{:02}:{:02}{separator}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Cue text on one line: a blank line would end the cue, and `-->` would start a new one.
fn cue_text(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("-->", "->")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transcript {
        Transcript {
            task: Task::Transcribe,
            language: "en-US".into(),
            duration: Duration::from_millis(3_725_400),
            text: "Hello world. Bye <now> & then".into(),
            segments: vec![
                Segment {
                    start: Duration::ZERO,
                    end: Duration::from_millis(1500),
                    text: "Hello world.".into(),
                    confidence: Some(0.5),
                },
                Segment {
                    start: Duration::from_millis(3_723_000),
                    end: Duration::from_millis(3_725_400),
                    text: "Bye <now>\n\n& then".into(),
                    confidence: None,
                },
            ],
            words: vec![Word {
                word: "Hello".into(),
                start: Duration::ZERO,
                end: Duration::from_millis(400),
            }],
        }
    }

    const ALL: Granularities = Granularities {
        segment: true,
        word: true,
    };

    #[test]
    fn srt_numbers_cues_and_uses_commas() {
        let srt = sample().render(TranscriptFormat::Srt, ALL, 0.0).body;
        assert_eq!(
            srt,
            "1\n00:00:00,000 --> 00:00:01,500\nHello world.\n\n2\n01:02:03,000 --> 01:02:05,400\nBye <now> & then\n\n"
        );
    }

    #[test]
    fn vtt_has_a_header_dots_and_escapes_markup() {
        let vtt = sample().render(TranscriptFormat::Vtt, ALL, 0.0).body;
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello world.\n\n"));
        assert!(vtt.ends_with("01:02:03.000 --> 01:02:05.400\nBye &lt;now&gt; &amp; then\n\n"));
    }

    #[test]
    fn json_and_text_carry_the_text_and_billed_seconds() {
        let t = sample();
        let json: Value = serde_json::from_str(&t.render(TranscriptFormat::Json, ALL, 0.0).body).unwrap();
        assert_eq!(json["text"], "Hello world. Bye <now> & then");
        assert_eq!(json["usage"], json!({"type": "duration", "seconds": 3726}));
        let text = t.render(TranscriptFormat::Text, ALL, 0.0);
        assert_eq!(text.body, "Hello world. Bye <now> & then\n");
        assert!(text.content_type.starts_with("text/plain"));
    }

    #[test]
    fn verbose_json_follows_openai_shape() {
        let v: Value = serde_json::from_str(&sample().render(TranscriptFormat::VerboseJson, ALL, 0.3).body).unwrap();
        assert_eq!(v["task"], "transcribe");
        assert_eq!(v["language"], "english");
        assert_eq!(v["duration"], 3725.4);
        let s0 = &v["segments"][0];
        for key in [
            "id",
            "seek",
            "start",
            "end",
            "text",
            "tokens",
            "temperature",
            "avg_logprob",
            "compression_ratio",
            "no_speech_prob",
        ] {
            assert!(!s0[key].is_null(), "segment lacks {key}");
        }
        assert_eq!(s0["text"], " Hello world.");
        assert!((s0["avg_logprob"].as_f64().unwrap() - 0.5f64.ln()).abs() < 1e-6);
        assert!((s0["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6);
        assert_eq!(v["words"][0], json!({"word": "Hello", "start": 0.0, "end": 0.4}));

        let only_segments = Granularities::default();
        let v: Value =
            serde_json::from_str(&sample().render(TranscriptFormat::VerboseJson, only_segments, 0.0).body).unwrap();
        assert!(v.get("words").is_none());
        let only_words = Granularities {
            segment: false,
            word: true,
        };
        let v: Value =
            serde_json::from_str(&sample().render(TranscriptFormat::VerboseJson, only_words, 0.0).body).unwrap();
        assert!(v.get("segments").is_none());
    }

    #[test]
    fn translation_is_always_english_and_untimed_text_becomes_one_segment() {
        let t = Transcript {
            task: Task::Translate,
            language: "de".into(),
            duration: Duration::from_secs(2),
            text: "Good morning".into(),
            segments: vec![],
            words: vec![],
        };
        let v: Value = serde_json::from_str(&t.render(TranscriptFormat::VerboseJson, ALL, 0.0).body).unwrap();
        assert_eq!(v["language"], "english");
        assert_eq!(v["task"], "translate");
        assert_eq!(
            t.render(TranscriptFormat::Srt, ALL, 0.0).body,
            "1\n00:00:00,000 --> 00:00:02,000\nGood morning\n\n"
        );
        let silent = Transcript {
            text: String::new(),
            ..t
        };
        assert_eq!(silent.render(TranscriptFormat::Vtt, ALL, 0.0).body, "WEBVTT\n\n");
    }
}

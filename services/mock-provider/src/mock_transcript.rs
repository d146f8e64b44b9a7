//! The transcript the mock makes up for an upload.
//!
//! The mock recognises no speech, yet the gateway's speech-to-text path needs
//! answers whose text a test can predict and whose timings are consistent
//! with the audio: subtitles must start at zero, never overlap and end at
//! the file's measured length, and billing reads that length. So the text is
//! chosen by the test (`x-mock-transcript`, else the request's `prompt`) or
//! is a fixed sentence naming the measured duration, and the timings are
//! spread over the duration: one segment per sentence and one word per
//! whitespace-separated token, each lasting in proportion to its characters.

use std::time::Duration;

use oneflow_audio::{Segment, Task, Transcript, Word};

/// Characters that end a sentence when followed by whitespace or the end.
const SENTENCE_ENDS: [char; 3] = ['.', '!', '?'];

/// The sentence answered when nothing scripts the text: deterministic, in
/// English (translations always answer English) and naming the duration so
/// a test sees the upload was measured.
pub(crate) fn default_text(task: Task, duration: Duration) -> String {
    let what = match task {
        Task::Transcribe => "transcription",
        Task::Translate => "English translation",
    };
    format!(
        "This is a mock {what} of {} seconds of audio. The OneFlow mock provider does not recognise speech.",
        seconds_text(duration)
    )
}

/// Builds the timed transcript of `text` spoken over `duration`.
pub(crate) fn transcript(task: Task, language: &str, duration: Duration, text: String) -> Transcript {
    let sentences = sentences(&text);
    let spans = spread(Duration::ZERO, duration, sentences.iter().map(|s| s.chars().count()));
    let mut segments = Vec::with_capacity(sentences.len());
    let mut words = Vec::new();
    for (sentence, (start, end)) in sentences.iter().zip(spans) {
        let tokens: Vec<&str> = sentence.split_whitespace().collect();
        let word_spans = spread(start, end, tokens.iter().map(|t| t.chars().count()));
        for (token, (start, end)) in tokens.iter().zip(word_spans) {
            let word = token.trim_matches(|c: char| c.is_ascii_punctuation() && c != '\'');
            if !word.is_empty() {
                words.push(Word {
                    word: word.to_owned(),
                    start,
                    end,
                });
            }
        }
        segments.push(Segment {
            start,
            end,
            text: (*sentence).to_owned(),
            confidence: None,
        });
    }
    let language = match task {
        Task::Transcribe => language.to_owned(),
        Task::Translate => "en".to_owned(),
    };
    Transcript {
        task,
        language,
        duration,
        text,
        segments,
        words,
    }
}

/// The sentences of `text`, trimmed, without empty ones.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        let at_break = chars.peek().is_none_or(|(_, next)| next.is_whitespace());
        if SENTENCE_ENDS.contains(&c) && at_break {
            let end = index + c.len_utf8();
            out.push(&text[start..end]);
            start = end;
        }
    }
    out.push(&text[start..]);
    out.into_iter().map(str::trim).filter(|s| !s.is_empty()).collect()
}

/// Cuts `start..end` into consecutive spans, one per weight, each as long as
/// its share of the total weight; the last ends exactly at `end`. Integer
/// nanoseconds, so the spans tile the interval without gaps or rounding drift.
fn spread(start: Duration, end: Duration, weights: impl Iterator<Item = usize>) -> Vec<(Duration, Duration)> {
    let weights: Vec<u128> = weights.map(|w| w.max(1) as u128).collect();
    let total: u128 = weights.iter().sum();
    let length = end.saturating_sub(start).as_nanos();
    let at = |before: u128| {
        let offset = length * before / total.max(1);
        start + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX))
    };
    let mut before = 0;
    weights
        .iter()
        .map(|weight| {
            let span = (at(before), at(before + weight));
            before += weight;
            span
        })
        .collect()
}

/// Seconds to the millisecond, without trailing zeros: `2.5`, `0.733`, `10`.
fn seconds_text(duration: Duration) -> String {
    let millis = duration.as_millis();
    let text = format!("{}.{:03}", millis / 1000, millis % 1000);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_on_terminal_punctuation_only() {
        assert_eq!(
            sentences("Hello there. How are you?  Fine!Really... ok 3.5 times"),
            ["Hello there.", "How are you?", "Fine!Really...", "ok 3.5 times"]
        );
        assert_eq!(sentences("  "), Vec::<&str>::new());
        assert_eq!(sentences("One."), ["One."]);
    }

    #[test]
    fn spans_tile_the_interval() {
        let spans = spread(Duration::from_secs(1), Duration::from_secs(4), [1, 2, 0].into_iter());
        assert_eq!(
            spans,
            [
                (Duration::from_secs(1), Duration::from_millis(1750)),
                (Duration::from_millis(1750), Duration::from_millis(3250)),
                (Duration::from_millis(3250), Duration::from_secs(4)),
            ]
        );
        assert!(spread(Duration::ZERO, Duration::ZERO, std::iter::empty()).is_empty());
    }

    #[test]
    fn transcript_segments_cover_the_duration_by_sentence() {
        let duration = Duration::from_millis(2500);
        let text = default_text(Task::Transcribe, duration);
        assert!(text.contains("2.5 seconds"), "{text}");
        let t = transcript(Task::Transcribe, "de", duration, text.clone());
        assert_eq!(t.text, text);
        assert_eq!(t.language, "de");
        assert_eq!(t.segments.len(), 2);
        assert_eq!(t.segments[0].start, Duration::ZERO);
        assert_eq!(t.segments[0].end, t.segments[1].start);
        assert_eq!(t.segments[1].end, duration);
        assert_eq!(
            t.segments[0].text,
            "This is a mock transcription of 2.5 seconds of audio."
        );
        assert_eq!(t.words.first().map(|w| w.word.as_str()), Some("This"));
        assert_eq!(
            t.words.last().map(|w| (w.word.as_str(), w.end)),
            Some(("speech", duration))
        );
        assert!(t.words.windows(2).all(|pair| pair[0].end <= pair[1].start));

        let translated = transcript(Task::Translate, "de", duration, "Guten Tag".to_owned());
        assert_eq!(translated.language, "en");
        assert!(default_text(Task::Translate, duration).contains("English translation"));
        assert!(
            transcript(Task::Transcribe, "en", duration, String::new())
                .segments
                .is_empty()
        );
    }

    #[test]
    fn seconds_are_written_to_the_millisecond() {
        assert_eq!(seconds_text(Duration::from_millis(2500)), "2.5");
        assert_eq!(seconds_text(Duration::from_millis(733)), "0.733");
        assert_eq!(seconds_text(Duration::from_secs(10)), "10");
        assert_eq!(seconds_text(Duration::ZERO), "0");
    }
}

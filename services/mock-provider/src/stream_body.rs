//! Paced, cuttable streaming bodies shared by every dialect.
//!
//! Every provider streams a sequence of discrete events (OpenAI and Anthropic
//! SSE events, Gemini SSE chunks, Bedrock event-stream frames). Resilience
//! tests need the same two knobs on all of them: a delay between events, and
//! an abrupt cut after the N-th content event that leaves the client with a
//! truncated stream and a transport error instead of the dialect's end event.
//! [`EventList`] records which events carry content so each dialect only has
//! to say what its events are, not how to pace or cut them.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::stream;

/// Pause before a scripted cut so the events before it reach the client.
const CUT_FLUSH_GRACE: Duration = Duration::from_millis(5);

/// The error a cut stream's body ends with; hyper then aborts the
/// connection (HTTP/1) or resets the stream (HTTP/2).
fn cut_error() -> std::io::Error {
    std::io::Error::other("oneflow mock provider: stream cut by x-mock-cut-after")
}

/// Builds the body from fully rendered events. Without pacing or cut it is
/// one frame (cheapest for benchmarks); otherwise events are sent one by one,
/// `interval` apart, and event `cut_at` is replaced by a body error.
pub(crate) fn paced_body(events: Vec<Bytes>, interval: Duration, cut_at: Option<usize>) -> Body {
    if interval.is_zero() && cut_at.is_none() {
        let all = Bytes::from(events.concat());
        return Body::from_stream(stream::once(async move { Ok::<_, std::io::Error>(all) }));
    }
    chunked_body(events, interval, cut_at, |_| {})
}

/// Sends `chunks` as separate body frames even without pacing (a streaming
/// relay must be seen to forward more than one), `interval` apart; chunk
/// `cut_at` is replaced by a body error (`cut_at == chunks.len()` errors
/// after the last chunk). `sent` is told the length of each chunk handed to
/// the server, so a cut body counts only what went out.
pub(crate) fn chunked_body<F>(chunks: Vec<Bytes>, interval: Duration, cut_at: Option<usize>, sent: F) -> Body
where
    F: Fn(usize) + Send + 'static,
{
    let paced = stream::unfold(
        (chunks.into_iter(), 0usize, sent),
        move |(mut chunks, index, sent)| async move {
            // Done, or done after a final cut: no trailing pause.
            if index == usize::MAX || (chunks.len() == 0 && cut_at != Some(index)) {
                return None;
            }
            if index > 0 && !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
            if cut_at == Some(index) {
                // Give the server time to flush what was sent before the
                // abort (an HTTP/2 reset drops frames still queued), so the
                // client really sees a stream cut mid-way.
                tokio::time::sleep(CUT_FLUSH_GRACE).await;
                return Some((Err(cut_error()), (chunks, usize::MAX, sent)));
            }
            let chunk = chunks.next()?;
            sent(chunk.len());
            Some((Ok(chunk), (chunks, index + 1, sent)))
        },
    );
    Body::from_stream(paced)
}

/// The rendered events of one stream, each marked as content or framing.
#[derive(Debug, Default)]
pub(crate) struct EventList {
    events: Vec<Bytes>,
    content: Vec<bool>,
}

/// How a stream should end early, if at all.
#[derive(Debug, Default)]
pub(crate) struct Ending {
    /// Abort the body after this many content events (no end event).
    pub(crate) cut_after: Option<usize>,
    /// After this many content events send this in-stream error event and
    /// end the body cleanly.
    pub(crate) error: Option<(usize, Bytes)>,
}

impl EventList {
    /// Appends a framing event (start, stop, usage...).
    pub(crate) fn push(&mut self, event: Bytes) {
        self.events.push(event);
        self.content.push(false);
    }

    /// Appends an event that carries reply content (a text or tool-input
    /// fragment); `cut_after` and stream errors count these.
    pub(crate) fn push_content(&mut self, event: Bytes) {
        self.events.push(event);
        self.content.push(true);
    }

    /// Index of the event before which a stream stopping after `after`
    /// content events stops: the `after + 1`-th content event, or the event
    /// right after the last content event when there are fewer.
    fn stop_index(&self, after: usize) -> usize {
        let mut seen = 0;
        let mut after_last = 0;
        for (index, is_content) in self.content.iter().enumerate() {
            if *is_content {
                if seen == after {
                    return index;
                }
                seen += 1;
                after_last = index + 1;
            }
        }
        after_last
    }

    /// Renders the body: paced by `interval`, ended early as `ending` says.
    /// When both a cut and an error are scripted the earlier one wins (the
    /// error on a tie, so it is observable).
    pub(crate) fn into_body(mut self, interval: Duration, ending: Ending) -> Body {
        let cut_at = ending.cut_after.map(|after| self.stop_index(after));
        if let Some((after, error)) = ending.error {
            let error_at = self.stop_index(after);
            if cut_at.is_none_or(|cut_at| error_at <= cut_at) {
                self.events.truncate(error_at);
                self.events.push(error);
                return paced_body(self.events, interval, None);
            }
        }
        paced_body(self.events, interval, cut_at)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    fn list() -> EventList {
        let mut list = EventList::default();
        list.push(Bytes::from_static(b"start|"));
        list.push_content(Bytes::from_static(b"a|"));
        list.push(Bytes::from_static(b"ping|"));
        list.push_content(Bytes::from_static(b"b|"));
        list.push(Bytes::from_static(b"end|"));
        list
    }

    /// Collects a body up to its end or error: (bytes, errored).
    async fn drain(body: Body) -> (String, bool) {
        let mut body = body;
        let mut seen = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => seen.extend_from_slice(frame.data_ref().unwrap()),
                Err(_) => return (String::from_utf8(seen).unwrap(), true),
            }
        }
        (String::from_utf8(seen).unwrap(), false)
    }

    #[tokio::test]
    async fn chunked_bodies_keep_frames_apart_and_report_what_went_out() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let chunks = || {
            vec![
                Bytes::from_static(b"ab"),
                Bytes::from_static(b"cde"),
                Bytes::from_static(b"f"),
            ]
        };
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&sent);
        let mut body = chunked_body(chunks(), Duration::ZERO, None, move |len| {
            counter.fetch_add(len, Ordering::Relaxed);
        });
        let mut frames = 0;
        while let Some(frame) = body.frame().await {
            assert!(frame.unwrap().is_data());
            frames += 1;
        }
        assert_eq!((frames, sent.load(Ordering::Relaxed)), (3, 6));

        let counter = Arc::clone(&sent);
        let body = chunked_body(chunks(), Duration::ZERO, Some(1), move |len| {
            counter.fetch_add(len, Ordering::Relaxed);
        });
        assert_eq!(drain(body).await, ("ab".to_owned(), true));
        assert_eq!(sent.load(Ordering::Relaxed), 8);
        let body = chunked_body(chunks(), Duration::ZERO, Some(3), |_| {});
        assert_eq!(drain(body).await, ("abcdef".to_owned(), true));
    }

    #[tokio::test(start_paused = true)]
    async fn paced_bodies_do_not_pause_after_the_last_event() {
        let started = tokio::time::Instant::now();
        let body = paced_body(
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
            Duration::from_secs(1),
            None,
        );
        assert_eq!(drain(body).await, ("ab".to_owned(), false));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[test]
    fn stop_index_counts_content_events_only() {
        let list = list();
        assert_eq!(list.stop_index(0), 1);
        assert_eq!(list.stop_index(1), 3);
        assert_eq!(list.stop_index(2), 4);
        assert_eq!(list.stop_index(9), 4);
        assert_eq!(EventList::default().stop_index(1), 0);
    }

    #[tokio::test]
    async fn endings() {
        assert_eq!(
            drain(list().into_body(Duration::ZERO, Ending::default())).await,
            ("start|a|ping|b|end|".to_owned(), false)
        );
        let cut = Ending {
            cut_after: Some(1),
            error: None,
        };
        assert_eq!(
            drain(list().into_body(Duration::ZERO, cut)).await,
            ("start|a|ping|".to_owned(), true)
        );
        let error = Ending {
            cut_after: Some(2),
            error: Some((1, Bytes::from_static(b"error|"))),
        };
        assert_eq!(
            drain(list().into_body(Duration::ZERO, error)).await,
            ("start|a|ping|error|".to_owned(), false)
        );
        let cut_first = Ending {
            cut_after: Some(0),
            error: Some((1, Bytes::from_static(b"error|"))),
        };
        assert_eq!(
            drain(list().into_body(Duration::ZERO, cut_first)).await,
            ("start|".to_owned(), true)
        );
    }
}

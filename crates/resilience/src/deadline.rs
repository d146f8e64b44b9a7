//! Two deadlines for streamed responses: time to first item and total time.
//!
//! A model that never starts answering and one that drips tokens forever fail in
//! different ways, so each gets its own bound and its own error.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};

/// Why [`with_deadlines`] cut a stream short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeadlineExceeded {
    /// Nothing arrived within the first-item deadline.
    #[error("no first token within the deadline")]
    FirstItem,
    /// The stream was still going when the total deadline passed.
    #[error("stream exceeded its total deadline")]
    Total,
}

/// Wraps `stream` so it fails if its first item takes longer than `first_item`, or
/// the whole stream longer than `total`, both counted from this call.
///
/// Items pass through as `Ok`. When a deadline passes, the stream yields one
/// `Err(DeadlineExceeded)` and ends; the inner stream is then dropped with the
/// wrapper. Timers start on first poll, so this may be called outside a runtime.
pub fn with_deadlines<S: Stream>(
    stream: S,
    first_item: Duration,
    total: Duration,
) -> impl Stream<Item = Result<S::Item, DeadlineExceeded>> {
    let now = Instant::now();
    Deadlines {
        inner: stream,
        first_at: Some(now + first_item),
        total_at: now + total,
        first_timer: None,
        total_timer: None,
        finished: false,
    }
}

pin_project! {
    struct Deadlines<S> {
        #[pin]
        inner: S,
        // `None` once the first item has arrived.
        first_at: Option<Instant>,
        total_at: Instant,
        #[pin]
        first_timer: Option<Sleep>,
        #[pin]
        total_timer: Option<Sleep>,
        finished: bool,
    }
}

/// Polls the timer for `deadline`, creating it on first use.
fn expired(mut timer: Pin<&mut Option<Sleep>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    if timer.is_none() {
        timer.set(Some(sleep_until(deadline)));
    }
    timer.as_pin_mut().is_some_and(|sleep| sleep.poll(cx).is_ready())
}

impl<S: Stream> Stream for Deadlines<S> {
    type Item = Result<S::Item, DeadlineExceeded>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if *this.finished {
            return Poll::Ready(None);
        }
        // Timers first: an endlessly ready stream must still be cut off.
        if let Some(first_at) = *this.first_at
            && expired(this.first_timer.as_mut(), first_at, cx)
        {
            *this.finished = true;
            return Poll::Ready(Some(Err(DeadlineExceeded::FirstItem)));
        }
        if expired(this.total_timer.as_mut(), *this.total_at, cx) {
            *this.finished = true;
            return Poll::Ready(Some(Err(DeadlineExceeded::Total)));
        }
        match this.inner.poll_next(cx) {
            Poll::Ready(Some(item)) => {
                if this.first_at.take().is_some() {
                    this.first_timer.set(None);
                }
                Poll::Ready(Some(Ok(item)))
            }
            Poll::Ready(None) => {
                *this.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;
    use futures::stream;

    use super::*;

    const FIRST: Duration = Duration::from_secs(5);
    const TOTAL: Duration = Duration::from_secs(30);

    /// Yields `n` items, each after `gap`.
    fn ticking(n: usize, gap: Duration) -> impl Stream<Item = usize> {
        stream::iter(0..n).then(move |i| async move {
            tokio::time::sleep(gap).await;
            i
        })
    }

    #[tokio::test(start_paused = true)]
    async fn fast_stream_passes_untouched() {
        let out: Vec<_> = with_deadlines(ticking(5, Duration::from_millis(10)), FIRST, TOTAL)
            .collect()
            .await;
        assert_eq!(out, (0..5).map(Ok).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn first_item_timeout() {
        let start = Instant::now();
        let out: Vec<_> = with_deadlines(stream::pending::<()>(), FIRST, TOTAL).collect().await;
        assert_eq!(out, vec![Err(DeadlineExceeded::FirstItem)]);
        assert_eq!(start.elapsed(), FIRST);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_first_item_times_out_even_if_it_would_come() {
        let out: Vec<_> = with_deadlines(ticking(3, FIRST * 2), FIRST, TOTAL).collect().await;
        assert_eq!(out, vec![Err(DeadlineExceeded::FirstItem)]);
    }

    #[tokio::test(start_paused = true)]
    async fn total_timeout_after_some_items() {
        let start = Instant::now();
        // An item every 4s: each within the first-item bound, 7 fit in 30s.
        let out: Vec<_> = with_deadlines(ticking(100, Duration::from_secs(4)), FIRST, TOTAL)
            .collect()
            .await;
        assert_eq!(out.len(), 8);
        assert!(out[..7].iter().all(Result::is_ok));
        assert_eq!(out[7], Err(DeadlineExceeded::Total));
        assert_eq!(start.elapsed(), TOTAL);
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_are_checked_before_an_always_ready_stream() {
        let out: Vec<_> = with_deadlines(stream::repeat(()), FIRST, Duration::ZERO)
            .collect()
            .await;
        assert_eq!(out, vec![Err(DeadlineExceeded::Total)]);
    }
}

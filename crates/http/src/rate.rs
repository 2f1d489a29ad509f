//! A request body that must keep up a minimum rate: a client that trickles
//! a byte now and then (never idle long enough for the idle timeout) would
//! otherwise hold a connection slot for as long as it likes.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// How long a body may take before its rate counts.
pub const GRACE: Duration = Duration::from_secs(10);

/// `inner`, failing once, after [`GRACE`], fewer than `min_rate` bytes per
/// second have arrived on average since the first poll.
pub struct MinRate<B> {
    inner: Pin<Box<B>>,
    min_rate: u64,
    started: Option<Instant>,
    bytes: u64,
    grace: Duration,
}

impl<B> MinRate<B> {
    /// Wraps `inner`; a `min_rate` of 0 checks nothing.
    pub fn new(inner: B, min_rate: u64) -> MinRate<B> {
        MinRate::with_grace(inner, min_rate, GRACE)
    }

    /// [`MinRate::new`] with another grace period (tests).
    pub fn with_grace(inner: B, min_rate: u64, grace: Duration) -> MinRate<B> {
        MinRate {
            inner: Box::pin(inner),
            min_rate,
            started: None,
            bytes: 0,
            grace,
        }
    }
}

/// Why a body was cut off.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body arrived at {rate} bytes/s, under the {min} bytes/s this node requires after {grace} s (operators: --min-body-rate)"
)]
pub struct TooSlow {
    rate: u64,
    min: u64,
    grace: u64,
}

impl<B> Body for MinRate<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let started = *self.started.get_or_insert_with(Instant::now);
        let polled = self.inner.as_mut().poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.bytes += data.len() as u64;
            let elapsed = started.elapsed();
            if self.min_rate > 0 && elapsed > self.grace {
                let rate = (self.bytes as f64 / elapsed.as_secs_f64()) as u64;
                if rate < self.min_rate {
                    return Poll::Ready(Some(Err(Box::new(TooSlow {
                        rate,
                        min: self.min_rate,
                        grace: self.grace.as_secs(),
                    }))));
                }
            }
        }
        polled.map(|f| f.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    /// A body of `n` one-byte frames, `every` apart.
    fn trickle(
        n: usize,
        every: Duration,
    ) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>>> {
        StreamBody::new(futures_util::stream::unfold(0, move |i| async move {
            if i == n {
                return None;
            }
            tokio::time::sleep(every).await;
            Some((Ok(Frame::data(Bytes::from_static(b"x"))), i + 1))
        }))
    }

    #[tokio::test]
    async fn a_trickled_body_is_cut_off_after_the_grace_period() {
        let slow = MinRate::with_grace(
            trickle(20, Duration::from_millis(50)),
            1_000,
            Duration::from_millis(200),
        );
        let err = slow.collect().await.expect_err("a trickle is cut off");
        assert!(err.to_string().contains("--min-body-rate"), "{err}");
        // The same bytes in time, or with no minimum, arrive whole.
        let fast = MinRate::with_grace(
            trickle(20, Duration::ZERO),
            1_000,
            Duration::from_millis(200),
        );
        assert_eq!(fast.collect().await.unwrap().to_bytes().len(), 20);
        let unchecked =
            MinRate::with_grace(trickle(5, Duration::from_millis(60)), 0, Duration::ZERO);
        assert_eq!(unchecked.collect().await.unwrap().to_bytes().len(), 5);
    }
}

//! The workers' service takes no message larger than the running job's model needs: a model
//! state (the largest message: parameters and running state as f32) plus headroom. The limit
//! follows the job (a submitted job with a bigger model raises it, up to [`MAX_MESSAGE`]); with
//! no job loaded it is [`IDLE_LIMIT`]. gRPC frames carry their length up front, so an
//! oversized message is refused from its 5-byte header, before its body is read into memory,
//! and counted (`calls_refused`).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::{Body as HttpBody, Frame};
use tonic::body::Body;
use tonic::codegen::http::Request;
use tonic::server::NamedService;
use tonic::{Status, codegen::Service};

use super::run::JobRun;
use super::{MAX_MESSAGE, Shared};

/// Limit while no job runs: joins, heartbeats and the like are small.
pub const IDLE_LIMIT: usize = HEADROOM;
/// Above the model's own size: message headers, protobuf fields, a report's statistics and
/// log lines (at most 200 of 4 KiB).
const HEADROOM: usize = 4 << 20;

/// The largest message the workers' service takes for a model of `state_len` values.
pub fn model_limit(state_len: usize) -> usize {
    // Four bytes per value; twice that covers every update format (a sparse message of
    // every entry is at most 5 bytes per entry, and a bitmap 2 bits).
    HEADROOM.saturating_add(state_len.saturating_mul(8)).min(MAX_MESSAGE)
}

/// The workers' service, with every request's messages held to the running job's limit.
#[derive(Clone)]
pub struct Limited<S> {
    pub inner: S,
    pub shared: Arc<Shared>,
}

impl<S> NamedService for Limited<S>
where
    S: NamedService,
{
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for Limited<S>
where
    S: Service<Request<Body>, Error = Infallible>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let run = self.shared.run();
        let limit = run.as_ref().map(|r| model_limit(r.state_len)).unwrap_or(IDLE_LIMIT);
        self.inner.call(request.map(|body| Body::new(LimitBody::new(body, limit, run))))
    }
}

/// A request body that fails as soon as a gRPC frame header announces more than `limit` bytes.
struct LimitBody {
    inner: Body,
    limit: usize,
    run: Option<Arc<JobRun>>,
    /// The current frame header, as far as it has arrived.
    header: [u8; 5],
    have: usize,
    /// Bytes of the current message still to come.
    need: usize,
}

impl LimitBody {
    fn new(inner: Body, limit: usize, run: Option<Arc<JobRun>>) -> LimitBody {
        LimitBody { inner, limit, run, header: [0; 5], have: 0, need: 0 }
    }

    /// Walks the frame headers in a chunk; the first message over the limit is an error.
    fn check(&mut self, mut data: &[u8]) -> Result<(), Status> {
        while !data.is_empty() {
            if self.need > 0 {
                let take = self.need.min(data.len());
                self.need -= take;
                data = &data[take..];
                continue;
            }
            let take = (5 - self.have).min(data.len());
            self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            data = &data[take..];
            if self.have == 5 {
                self.have = 0;
                let len =
                    u32::from_be_bytes([self.header[1], self.header[2], self.header[3], self.header[4]]);
                let len = len as usize;
                if len > self.limit {
                    let why = format!(
                        "a message of {len} bytes; this job's model allows at most {} (its state and headroom)",
                        self.limit
                    );
                    if let Some(run) = &self.run {
                        run.refuse(&why);
                    } else {
                        tracing::warn!("refused a call: {why}");
                    }
                    return Err(Status::resource_exhausted(why));
                }
                self.need = len;
            }
        }
        Ok(())
    }
}

impl HttpBody for LimitBody {
    type Data = tonic::codegen::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && let Err(status) = this.check(data)
                {
                    return Poll::Ready(Some(Err(status)));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(limit: usize) -> LimitBody {
        LimitBody::new(Body::empty(), limit, None)
    }

    fn frame(len: usize) -> Vec<u8> {
        let mut f = vec![0u8];
        f.extend_from_slice(&(len as u32).to_be_bytes());
        f.extend(std::iter::repeat_n(7u8, len));
        f
    }

    #[test]
    fn messages_within_the_limit_pass_in_any_chunking() {
        let mut stream = frame(100);
        stream.extend(frame(0));
        stream.extend(frame(100));
        for chunk in [1, 2, 3, 5, 7, 64, 1000] {
            let mut b = body(100);
            for part in stream.chunks(chunk) {
                b.check(part).unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
            }
        }
    }

    #[test]
    fn a_header_announcing_too_much_is_refused_before_its_body() {
        let mut stream = frame(10);
        stream.extend(&frame(101)[..5]);
        for chunk in [1, 4, 5, 6, 100] {
            let mut b = body(100);
            let refused = stream.chunks(chunk).find_map(|part| b.check(part).err());
            let e = refused.unwrap_or_else(|| panic!("chunk {chunk}: not refused"));
            assert_eq!(e.code(), tonic::Code::ResourceExhausted);
            assert!(
                e.message().contains("101 bytes") && e.message().contains("at most 100"),
                "{}",
                e.message()
            );
        }
    }

    #[test]
    fn the_limit_follows_the_model_within_the_ceiling() {
        assert_eq!(model_limit(0), HEADROOM);
        assert_eq!(model_limit(1_000_000), HEADROOM + 8_000_000);
        assert_eq!(model_limit(usize::MAX), MAX_MESSAGE);
    }
}

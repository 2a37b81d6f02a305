//! The response body: the API server's body streamed frame by frame, or a
//! `Status` the proxy produced itself. An enum rather than a boxed trait
//! object, so a streamed response costs no allocation.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;

/// Body of every response [`KubeProxy`](crate::KubeProxy) returns.
#[derive(Debug)]
pub struct ProxyBody(Inner);

#[derive(Debug)]
enum Inner {
    /// Passed through as hyper delivers it: watch events arrive as they are
    /// written, nothing is buffered.
    Upstream(Incoming),
    /// Produced here (a `Status` error, an empty 101 body).
    Local(Full<Bytes>),
}

impl ProxyBody {
    pub(crate) fn upstream(body: Incoming) -> Self {
        Self(Inner::Upstream(body))
    }
}

impl From<Vec<u8>> for ProxyBody {
    fn from(bytes: Vec<u8>) -> Self {
        Self(Inner::Local(Full::new(Bytes::from(bytes))))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        // Both variants are Unpin, so no pin projection is needed.
        match &mut self.get_mut().0 {
            Inner::Upstream(body) => Pin::new(body).poll_frame(cx),
            Inner::Local(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Upstream(body) => body.is_end_stream(),
            Inner::Local(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Upstream(body) => body.size_hint(),
            Inner::Local(body) => body.size_hint(),
        }
    }
}

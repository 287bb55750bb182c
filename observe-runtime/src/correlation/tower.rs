//! A `tower` layer for servers: each request runs in its correlation scope,
//! and the response echoes the ID.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::http::Propagator;
use super::{CorrelationId, FutureExt as _, WithCorrelation, scope};

/// Runs every request in the correlation scope its headers name (see
/// [`Propagator::extract`]), puts the [`CorrelationId`] in the request's
/// extensions, and echoes it in the response's correlation header.
///
/// ```
/// # #[cfg(any())] {
/// let app = axum::Router::new()
///     .route("/", axum::routing::get(handler))
///     .layer(observe::correlation::tower::CorrelationLayer::default());
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct CorrelationLayer {
    propagator: Propagator,
}

impl CorrelationLayer {
    /// A layer reading and echoing the propagator's header.
    #[must_use]
    pub fn new(propagator: Propagator) -> Self {
        Self { propagator }
    }
}

impl<S> Layer<S> for CorrelationLayer {
    type Service = CorrelationService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorrelationService {
            inner,
            propagator: self.propagator.clone(),
        }
    }
}

/// The service [`CorrelationLayer`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct CorrelationService<S> {
    inner: S,
    propagator: Propagator,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CorrelationService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = CorrelationFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let id = self.propagator.extract(req.headers());
        req.extensions_mut().insert(id.clone());
        // Handlers often start work in `call` itself, so it runs in scope too.
        let inner = scope(id.clone(), || self.inner.call(req));
        let echo = HeaderValue::from_str(&id.to_string()).ok();
        CorrelationFuture {
            inner: inner.with_correlation(id),
            echo,
            header: self.propagator.header().clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`CorrelationService`].
    #[derive(Debug)]
    pub struct CorrelationFuture<F> {
        #[pin]
        inner: WithCorrelation<F>,
        echo: Option<HeaderValue>,
        header: http::HeaderName,
    }
}

impl<F, B, E> Future for CorrelationFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut out = std::task::ready!(this.inner.poll(cx));
        if let (Ok(res), Some(v)) = (&mut out, this.echo.take()) {
            res.headers_mut().insert(this.header.clone(), v);
        }
        Poll::Ready(out)
    }
}

/// Lets handlers read the request's ID from its extensions.
impl CorrelationId {
    /// The ID [`CorrelationLayer`] stored in a request's extensions.
    #[must_use]
    pub fn from_request<B>(req: &Request<B>) -> Option<&Self> {
        req.extensions().get::<Self>()
    }
}

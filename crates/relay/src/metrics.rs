//! `GET /metrics`: the meter's counters in Prometheus' text format
//! ([`meter::Snapshot::prometheus`]), polled afresh on every request.

use std::future::Future;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use meter::Meter;
use tokio::net::TcpListener;

/// The router: `/metrics` only.
pub fn router(meter: Meter) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let meter = meter.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    meter.snapshot().prometheus(),
                )
                    .into_response()
            }
        }),
    )
}

/// Serves [`router`] on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    meter: Meter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(meter))
        .with_graceful_shutdown(shutdown)
        .await
}

//! weir's HTTP server: InfluxDB-compatible writes, SQL queries over HTTP,
//! access tokens and metrics, over one [`store::Store`].
//!
//! | endpoint | what |
//! |---|---|
//! | `POST /write?db=&precision=` | InfluxDB v1 write; bad lines reported, the rest kept ([`mod@write`]) |
//! | `POST /api/v2/write?bucket=&precision=` | InfluxDB v2 write; a parse error refuses the batch |
//! | `GET\|POST /query?q=` | InfluxQL `SHOW DATABASES` and `CREATE DATABASE` only |
//! | `POST /api/v1/query` | SQL, streamed as json, jsonl, csv or Arrow IPC ([`mod@format`]) |
//! | `GET\|POST\|DELETE /api/v1/tokens` | token management for admin tokens |
//! | `GET\|HEAD /ping`, `GET /health` | liveness, no token needed |
//! | `GET /metrics` | Prometheus text ([`metrics`]) |
//! | `GET /api/v1/{cdf,quantiles,rainbow,pivot,utilisation}` | network analytics, JSON or CSV |
//! | `GET /` | the dashboard; its charts at `GET /api/v1/chart/{name}.svg`, its summary at `GET /api/v1/overview` |
//!
//! Every other endpoint needs a token ([`tokens`]) unless the server runs
//! with `no_auth`. Writes are acknowledged only once durable; on shutdown
//! the server stops accepting, lets in-flight requests finish (for at most
//! the shutdown timeout) and closes the store.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use server::{Server, ServerConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let config = ServerConfig {
//!     listen: "127.0.0.1:0".into(),
//!     data_dir: dir.path().into(),
//!     no_auth: true,
//!     ..ServerConfig::default()
//! };
//! let server = Server::bind(config).await.unwrap();
//! let url = server.url();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let running = tokio::spawn(server.run(async { let _ = stopped.await; }));
//!
//! // Any HTTP client will do; this one blocks, so it gets a thread of its own.
//! let status = tokio::task::spawn_blocking(move || {
//!     reqwest::blocking::Client::new()
//!         .post(format!("{url}/write?db=net&precision=s"))
//!         .body("ping,dst=a rtt=10 1700000000")
//!         .send()
//!         .unwrap()
//!         .status()
//! })
//! .await
//! .unwrap();
//! assert_eq!(status, 204);
//!
//! stop.send(()).unwrap();
//! running.await.unwrap().unwrap();
//! # });
//! ```

mod analytics;
mod app;
mod auth;
mod body;
pub mod client;
mod config;
mod dashboard;
mod error;
pub mod format;
mod influxql;
pub mod metrics;
mod shutdown;
mod sql;
pub mod tokens;
mod tokens_api;
pub mod write;

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
use query::{QueryConfig, QueryEngine};
use store::{Store, StoreConfig};
use tokio::net::TcpListener;

pub use app::INFLUXDB_VERSION;
pub use config::{DatabaseConfig, ServerConfig};
pub use error::{ApiError, ServerError};
pub use shutdown::shutdown_signal;
pub use sql::QueryRequest;

use app::AppState;
use metrics::Metrics;
use tokens::{NewToken, Tokens, Verifier};

/// How long closing waits for the last users of the store (writes that
/// were cut off by the shutdown timeout) before leaving the close to them.
const STORE_RELEASE_WAIT: Duration = Duration::from_secs(10);

/// A server bound to its address, with its store open; [`Server::run`]
/// serves until shutdown.
#[derive(Debug)]
pub struct Server {
    state: Arc<AppState>,
    listener: TcpListener,
    local_addr: SocketAddr,
    new_admin_token: Option<NewToken>,
    query_runtime: QueryRuntime,
}

impl Server {
    /// Opens the store in the data directory (replaying its log), binds the
    /// listen address and, with authentication on and no token yet, makes
    /// the first admin token.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        config.validate()?;
        // First, so that a missing MaxMind DB file stops the start before
        // the store is touched.
        let databases = config.databases.clone();
        let enrichers = blocking("the enrichment databases", move || {
            open_enrichers(&databases)
        })
        .await??;
        let store_config = StoreConfig {
            auto_create_databases: !config.no_auto_create,
            ..StoreConfig::default()
        };
        let dir = config.data_dir.clone();
        let store = blocking("the store", move || Store::open(&dir, store_config))
            .await?
            .map_err(|source| ServerError::Store {
                path: config.data_dir.clone(),
                source,
            })?;
        apply_database_settings(&store, &config.databases).map_err(|source| {
            ServerError::Store {
                path: config.data_dir.clone(),
                source,
            }
        })?;
        let store = Arc::new(store);
        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen.clone(),
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
        let tokens = Tokens::new(&config.data_dir);
        let new_admin_token = if config.no_auth {
            tracing::warn!(
                "authentication is off (--no-auth): anyone who reaches {local_addr} can read and \
                 write every database"
            );
            None
        } else {
            let t = tokens.clone();
            blocking("the token file", move || t.ensure_admin()).await??
        };
        let verifier = blocking("the token file", {
            let t = tokens.clone();
            move || Verifier::new(t)
        })
        .await?;
        let engine = QueryEngine::with_config(
            Arc::clone(&store),
            QueryConfig {
                memory_limit_bytes: (config.query_memory_limit_bytes > 0)
                    .then_some(config.query_memory_limit_bytes),
            },
        )?;
        let query_runtime = QueryRuntime::new()?;
        let state = Arc::new(AppState {
            config,
            store,
            enrichers,
            engine,
            tokens,
            verifier,
            metrics: Metrics::default(),
            query_runtime: query_runtime.handle(),
            started: Instant::now(),
        });
        Ok(Server {
            state,
            listener,
            local_addr,
            new_admin_token,
            query_runtime,
        })
    }

    /// The address the server listens on (the real port when port 0 was
    /// asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<local address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The admin token made by this start (the first with authentication
    /// on), if any; it is also in `<data-dir>/admin.token`.
    pub fn new_admin_token(&self) -> Option<&str> {
        self.new_admin_token.as_ref().map(|t| t.secret.as_str())
    }

    /// The settings the server runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.state.config
    }

    /// Serves until `shutdown` completes, then stops accepting connections,
    /// gives in-flight requests up to the shutdown timeout, stops running
    /// queries and closes the store. Every write acknowledged before is
    /// durable.
    pub async fn run<F>(self, shutdown: F) -> Result<(), ServerError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Server {
            state,
            listener,
            query_runtime,
            ..
        } = self;
        let router = app::router(Arc::clone(&state));
        let (begun_tx, begun_rx) = tokio::sync::oneshot::channel::<()>();
        // Without TCP_NODELAY the last piece of a streamed answer waits for
        // the client's delayed ACK: ~40 ms on every keep-alive query.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("setting TCP_NODELAY: {e}");
            }
        });
        let serve = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = begun_tx.send(());
            })
            .into_future();
        let grace = state.config.shutdown_timeout();
        let forced = async move {
            match begun_rx.await {
                Ok(()) => tokio::time::sleep(grace).await,
                Err(_) => std::future::pending().await,
            }
        };
        let served = tokio::select! {
            served = serve => served.map_err(|source| ServerError::Io {
                what: "serving HTTP on",
                path: state.config.listen.clone().into(),
                source,
            }),
            () = forced => {
                tracing::warn!(
                    "requests still running {} s after the shutdown signal (shutdown-timeout-secs); \
                     dropping their connections",
                    grace.as_secs()
                );
                Ok(())
            }
        };
        drop(query_runtime);
        let store = Arc::clone(&state.store);
        drop(state);
        close_store(store).await;
        served
    }
}

/// Closes the store once nothing else holds it (bounded wait); if writes
/// cut off by the shutdown timeout still hold it, the last of them closes
/// it when it finishes.
async fn close_store(mut store: Arc<Store>) {
    let deadline = Instant::now() + STORE_RELEASE_WAIT;
    loop {
        match Arc::try_unwrap(store) {
            Ok(store) => {
                // Persisted on the way out, so a restart replays no log and
                // the data directory holds compact Parquet, not line protocol.
                let close = move || {
                    if let Err(e) = store.persist() {
                        tracing::error!("persisting the write buffer at shutdown: {e}");
                    }
                    store.close();
                };
                if tokio::task::spawn_blocking(close).await.is_err() {
                    tracing::error!("closing the store failed");
                }
                return;
            }
            Err(shared) if Instant::now() >= deadline => {
                tracing::warn!("the store is still in use; it closes when its last write ends");
                drop(shared);
                return;
            }
            Err(shared) => {
                store = shared;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Runs blocking `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServerError::Runtime {
            what,
            reason: e.to_string(),
        })
}

/// Creates each database with a `[databases.NAME]` table that sets a
/// retention or `rollups`, and applies them as configured.
fn apply_database_settings(
    store: &Store,
    databases: &std::collections::BTreeMap<String, config::DatabaseConfig>,
) -> Result<(), store::StoreError> {
    for (db, settings) in databases {
        if let Some(on) = settings.rollups {
            store.create_database(db)?;
            store.set_rollups(db, on)?;
            tracing::info!("database {db}: rollups {}", if on { "on" } else { "off" });
        }
        // Checked by ServerConfig::validate before the store was opened.
        let raw = settings.retention().unwrap_or_default();
        let rollups = settings.rollup_retention().unwrap_or_default();
        if settings.retention.is_none() && settings.rollup_retention.is_none() {
            continue;
        }
        store.create_database(db)?;
        store.set_retention(db, raw)?;
        store.set_rollup_retention(db, rollups)?;
        tracing::info!(
            "database {db}: raw rows kept {}, rollups kept {}",
            raw.map_or("forever".into(), |d| humantime::format_duration(d)
                .to_string()),
            rollups.map_or("forever".into(), |d| humantime::format_duration(d)
                .to_string()),
        );
    }
    Ok(())
}

/// Each database's [`enrich::Enricher`], its MaxMind DB file read once.
fn open_enrichers(
    databases: &std::collections::BTreeMap<String, config::DatabaseConfig>,
) -> Result<HashMap<String, enrich::Enricher>, ServerError> {
    let mut enrichers = HashMap::new();
    for (db, settings) in databases {
        if let Some(config) = &settings.enrich {
            let enricher = enrich::Enricher::new(config).map_err(|error| ServerError::Enrich {
                db: db.clone(),
                error,
            })?;
            enrichers.insert(db.clone(), enricher);
        }
    }
    Ok(enrichers)
}

/// The Tokio runtime queries run on, apart from the HTTP threads; dropping
/// it stops the queries still running.
#[derive(Debug)]
struct QueryRuntime(Option<tokio::runtime::Runtime>);

impl QueryRuntime {
    fn new() -> Result<Self, ServerError> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("weir-query")
            .enable_all()
            .build()
            .map_err(|e| ServerError::Runtime {
                what: "the query runtime",
                reason: e.to_string(),
            })?;
        Ok(QueryRuntime(Some(runtime)))
    }

    fn handle(&self) -> tokio::runtime::Handle {
        match &self.0 {
            Some(rt) => rt.handle().clone(),
            None => tokio::runtime::Handle::current(),
        }
    }
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

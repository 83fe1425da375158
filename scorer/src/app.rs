//! The `scorer run` application: [`run`] loads the model, starts the HTTP server (metrics,
//! health) and the model reloader, and runs the service until [`Shutdown`] is triggered.
//! `main.rs` only parses flags and turns signals into a [`Shutdown`]; tests call [`run`] or
//! [`run_with`] on a thread and drive the real service (mini-redis's `server::run` shape).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info};
use trendscore_infer::LoadOptions;

use crate::config::ScorerConfig;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::ModelHandle;
use crate::{sink, Result, ScorerError};

/// A request to stop, shared by whoever may ask (signals, tests) and the loops that obey.
#[derive(Clone, Debug, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// Not triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks everything to stop (idempotent).
    pub fn trigger(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was asked for.
    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The metrics and health shared by the service and the HTTP server.
#[derive(Clone)]
pub struct Telemetry {
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Liveness and readiness.
    pub health: Arc<Health>,
}

impl Telemetry {
    /// Fresh metrics, and health with the config's stall bound.
    pub fn new(config: &ScorerConfig) -> Self {
        Self {
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::new(Duration::from_millis(
                config.health.stall_timeout_ms,
            ))),
        }
    }
}

/// Loads `config.model` and runs the service (see [`run_with`]).
pub fn run(config: ScorerConfig, shutdown: Shutdown) -> Result<()> {
    let opts = LoadOptions {
        backend: config.model.backend,
        ort_dylib_path: config.model.ort_dylib_path.clone(),
        intra_threads: config.model.intra_threads,
    };
    let model = Arc::new(ModelHandle::load(&config.model.path, opts)?);
    {
        let m = model.current();
        info!(backend = %m.backend(), version = %m.info().model_version, path = %config.model.path.display(), "model loaded");
    }
    let telemetry = Telemetry::new(&config);
    run_with(config, model, telemetry, shutdown)
}

/// Runs the service with an already-loaded model: the HTTP server on `http.listen` (when
/// set), the model reloader (when `model.reload_interval_ms > 0`), the sink of
/// `sink.output_dir`, until `shutdown` is triggered, `run.drain` has caught up, or an error.
pub fn run_with(
    config: ScorerConfig,
    model: Arc<ModelHandle>,
    telemetry: Telemetry,
    shutdown: Shutdown,
) -> Result<()> {
    config.validate()?;
    publish_model(&telemetry.metrics, &model);
    let sink = sink::open(&config.sink)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| ScorerError::Internal(format!("tokio runtime: {e}")))?;
    let http_stop = Arc::new(tokio::sync::Notify::new());
    if !config.http.listen.is_empty() {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(&config.http.listen))
            .map_err(|e| ScorerError::Config(format!("http.listen {}: {e}", config.http.listen)))?;
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "http server (/metrics, /healthz, /readyz)");
        }
        let (m, h, n) = (
            telemetry.metrics.clone(),
            telemetry.health.clone(),
            http_stop.clone(),
        );
        rt.spawn(async move {
            if let Err(e) =
                crate::http::serve(listener, m, h, async move { n.notified().await }).await
            {
                error!(error = %e, "http server");
            }
        });
    }
    let reloader = spawn_reloader(
        &config,
        model.clone(),
        telemetry.metrics.clone(),
        shutdown.clone(),
    );
    let result = crate::service::run(config, model, telemetry, sink, shutdown.clone());
    http_stop.notify_waiters();
    if let Some((stop, h)) = reloader {
        stop.trigger();
        let _ = h.join();
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Sets `scorer_model_info` to the model `model` serves now: its backend and version.
fn publish_model(metrics: &Metrics, model: &ModelHandle) {
    let m = model.current();
    metrics.set_model(&m.backend().to_string(), &m.info().model_version);
}

fn spawn_reloader(
    config: &ScorerConfig,
    model: Arc<ModelHandle>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) -> Option<(Shutdown, std::thread::JoinHandle<()>)> {
    let every = config.model.reload_interval_ms;
    if every == 0 {
        return None;
    }
    let stop = Shutdown::new();
    let own = stop.clone();
    let h = std::thread::Builder::new()
        .name("scorer-reload".into())
        .spawn(move || {
            let step = Duration::from_millis(50);
            let mut waited = Duration::ZERO;
            while !own.is_triggered() && !shutdown.is_triggered() {
                std::thread::sleep(step);
                waited += step;
                if waited < Duration::from_millis(every) {
                    continue;
                }
                waited = Duration::ZERO;
                match model.check_reload() {
                    Ok(Some(version)) => {
                        Metrics::labelled(&metrics.model_reloads, "result", "ok");
                        publish_model(&metrics, &model);
                        info!(%version, "model reloaded");
                    }
                    Ok(None) => {}
                    Err(e) => {
                        Metrics::labelled(&metrics.model_reloads, "result", "failed");
                        error!(error = %e, "model reload failed; keeping the current model");
                    }
                }
            }
        })
        .ok()?;
    Some((stop, h))
}

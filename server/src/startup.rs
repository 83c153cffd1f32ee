//! Startup: [`Application::build`] opens the engine, assembles the router and binds the
//! listener. `main` and the integration tests both use it (tests bind port 0).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use grappe_engine::auth::ThrottlePolicy;
use grappe_engine::{Engine, EngineConfig};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

use crate::config::Settings;
use crate::http;
pub use crate::state::AppState;

/// Errors that stop the server from starting. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database {path}")]
    Engine {
        path: std::path::PathBuf,
        #[source]
        source: grappe_engine::EngineError,
    },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid session table name")]
    SessionStore(String),
}

/// The largest request body accepted (413 above it): a custom manifest of at most 5 MiB, sent
/// URL-encoded by the install form, fits; nothing else comes close.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The largest login form accepted (user name, password, next, language).
pub const LOGIN_MAX_BYTES: usize = 8 * 1024;

/// The routes Grappe serves besides Leptos pages and server functions (method, path).
pub const EXTRA_ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("POST", "/auth/login"),
    ("POST", "/auth/logout"),
    ("GET", "/history/export"),
    ("GET", "/history/runs/export"),
    ("GET", "/live/{cluster}"),
    ("GET", "/live-runs"),
];

/// A built, bound, not yet running server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    engine: Engine,
    page_paths: Vec<String>,
}

impl Application {
    /// Opens the database (migrating it), builds the router and binds the listen address.
    ///
    /// # Errors
    /// [`StartupError`] when the database cannot be opened or migrated, or the address is taken.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let engine = Engine::start(EngineConfig {
            database: settings.database.clone(),
            clusters: settings.cluster_specs(),
            throttle: ThrottlePolicy::default(),
            manifest_mirror: settings.manifest_mirror.clone(),
            recover_runs: true,
            ssh: settings.ssh_specs(),
        })
        .await
        .map_err(|source| StartupError::Engine {
            path: settings.database.clone(),
            source,
        })?;

        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: settings.listen,
                    source,
                })?;

        let leptos_options = LeptosOptions::builder()
            .output_name("grappe")
            .site_root(settings.site_root.display().to_string())
            .site_pkg_dir("pkg")
            .site_addr(settings.listen)
            .build();

        let routes = generate_route_list(app::App);
        let page_paths = routes.iter().map(|r| r.path().to_owned()).collect();

        let session_store = SqliteStore::new(engine.store.pool().clone())
            .with_table_name("sessions")
            .map_err(StartupError::SessionStore)?;
        let idle = time::Duration::try_from(settings.session.idle_timeout)
            .unwrap_or(time::Duration::minutes(30));
        let cookie_name = if settings.secure_cookies {
            "__Host-grappe"
        } else {
            "grappe_session"
        };
        let sessions =
            SessionManagerLayer::new(http::session_store::DigestStore::new(session_store))
                .with_name(cookie_name)
                .with_secure(settings.secure_cookies)
                .with_http_only(true)
                .with_same_site(SameSite::Strict)
                .with_path("/")
                // The guard touches the session (so that it is saved and its deadline moves) at most
                // once a minute: see http::session.
                .with_expiry(Expiry::OnInactivity(idle));

        let hosts = Arc::new(settings.host_policy());
        let state = AppState {
            engine: engine.clone(),
            settings: Arc::new(settings),
            leptos_options: leptos_options.clone(),
            live_streams: crate::streams::Streams::default(),
        };
        let context_engine = engine.clone();
        let router = Router::new()
            .route("/healthz", get(http::health::healthz))
            // A login form is a few hundred bytes: a larger body is refused before it is
            // read, and so before any password is hashed.
            .route(
                "/auth/login",
                post(http::auth::login).layer(RequestBodyLimitLayer::new(LOGIN_MAX_BYTES)),
            )
            .route("/auth/logout", post(http::auth::logout))
            .route("/history/export", get(http::export::export))
            .route("/history/runs/export", get(http::export::export_runs))
            .route("/live/{cluster}", get(http::live::live))
            .route("/live-runs", get(http::live::live_runs))
            .leptos_routes_with_context(
                &state,
                routes,
                move || provide_context(context_engine.clone()),
                {
                    let options = leptos_options.clone();
                    move || app::shell(options.clone())
                },
            )
            .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
            .layer(axum::middleware::from_fn(http::api_status::error_status))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                http::session::require_session,
            ))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                http::csrf::refuse_cross_site,
            ))
            .layer(sessions)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                http::security::headers,
            ))
            .layer(axum::middleware::from_fn_with_state(
                hosts,
                http::host::refuse_foreign_host,
            ))
            // One limit for every body (axum's own 2 MB default would cut custom manifests).
            .layer(axum::extract::DefaultBodyLimit::disable())
            .layer(RequestBodyLimitLayer::new(MAX_REQUEST_BYTES))
            // Brotli or gzip as the browser accepts (the release wasm: 3.75 MB, 1.37 MB in
            // gzip), at level 4: a fraction of the best ratio's time, done per response. Event
            // streams are left alone (the default predicate). No secret is in a page's body
            // and cookies are SameSite=Strict: a BREACH-style guess has nothing to read.
            .layer(CompressionLayer::new().quality(CompressionLevel::Precise(4)))
            .layer(
                TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                    tracing::info_span!("http", method = %req.method(), path = req.uri().path())
                }),
            )
            .with_state(state);

        Ok(Self {
            listener,
            router,
            engine,
            page_paths,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The Leptos page paths (with `{param}` placeholders).
    pub fn page_paths(&self) -> &[String] {
        &self.page_paths
    }

    /// Serves until `shutdown` completes, then drains connections.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let engine = self.engine.clone();
        let housekeeping = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            loop {
                tick.tick().await;
                engine.auth.prune().await;
            }
        });
        // The hosts' link MTUs from their latest checks, for the MTU page.
        match self.engine.restore_host_facts().await {
            Ok(n) => tracing::debug!(checks = n, "host link MTUs restored"),
            Err(e) => {
                tracing::warn!(error = %grappe_engine::audit::error_chain(&e), "could not restore the hosts' link MTUs");
            }
        }
        // Each pool's use, for the IPAM page's exhaustion forecast.
        let engine = self.engine.clone();
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(grappe_engine::ipam::trend::SAMPLE_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = engine.sample_ipam().await {
                    tracing::warn!(error = %grappe_engine::audit::error_chain(&e), "IPAM sampling failed");
                }
            }
        });
        let result = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        housekeeping.abort();
        sampler.abort();
        self.engine.store.close().await;
        result
    }
}

//! `spawn_app()`: a real Grappe on port 0 with a temporary SQLite file, and one method per
//! endpoint. Cookies are handled by hand so that tests see exactly what the server sets.

use std::path::PathBuf;
use std::time::Duration;

use grappe_engine::Caller;
use grappe_engine::Engine;
use grappe_engine::auth::Password;
use grappe_engine::names::UserName;
use grappe_engine::users::Role;
use grappe_server::config::Settings;
use grappe_server::startup::Application;
use reqwest::header::{COOKIE, HeaderMap, HeaderValue, SET_COOKIE};
use reqwest::{Response, StatusCode};
use tokio::sync::oneshot;

pub const SESSION_COOKIE: &str = "grappe_session";

/// Talks to a Grappe over HTTP like a browser: in this process ([`TestApp`]) or a spawned
/// `grappe serve`.
pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
}

pub struct TestApp {
    pub http: Http,
    pub engine: Engine,
    pub database: PathBuf,
    pub page_paths: Vec<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

pub fn settings_for(database: PathBuf) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database,
        ..Settings::default()
    }
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings_for(dir.path().join("grappe.db"));
    let mut app = spawn_with(settings).await;
    app._dir = Some(dir);
    app
}

pub async fn spawn_with(settings: Settings) -> TestApp {
    let database = settings.database.clone();
    let app = Application::build(settings).await.expect("build app");
    let port = app.port();
    let engine = app.engine().clone();
    let page_paths = app.page_paths().to_vec();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = app
            .run_until(async move {
                let _ = rx.await;
            })
            .await;
    });
    TestApp {
        http: Http::new(format!("http://127.0.0.1:{port}")),
        engine,
        database,
        page_paths,
        stop: Some(tx),
        task: Some(task),
        _dir: None,
    }
}

impl TestApp {
    /// Stops the server (graceful) and returns the temporary directory to keep the database.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self._dir.take()
    }

    /// Restarts on the same database (a new process would do the same).
    pub async fn restart(self) -> TestApp {
        let database = self.database.clone();
        let dir = self.stop().await;
        let mut app = spawn_with(settings_for(database)).await;
        app._dir = dir;
        app
    }

    pub async fn add_user(&self, name: &str, role: Role) -> String {
        let password = Password::generate();
        self.engine
            .users
            .add(
                &Caller::cli("test"),
                &UserName::parse(name).expect("name"),
                &password,
                role,
            )
            .await
            .expect("add user");
        password.expose().to_owned()
    }

    /// The audit records of one action, newest first.
    pub async fn audit_records(&self, action: &str) -> Vec<grappe_engine::audit::AuditRecord> {
        let filter = grappe_engine::audit::AuditFilter {
            action: Some(action.to_owned()),
            ..Default::default()
        };
        self.engine.audit.export(&filter, 100).await.expect("audit")
    }
}

impl std::ops::Deref for TestApp {
    type Target = Http;

    fn deref(&self) -> &Http {
        &self.http
    }
}

impl Http {
    pub fn new(base: String) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self { base, client }
    }

    pub fn origin(&self) -> HeaderValue {
        HeaderValue::from_str(&self.base).expect("origin")
    }

    pub async fn post_login(
        &self,
        username: &str,
        password: &str,
        cookie: Option<&str>,
    ) -> Response {
        let mut req = self
            .client
            .post(format!("{}/auth/login", self.base))
            .header("origin", self.origin())
            .header("sec-fetch-site", "same-origin")
            .form(&[
                ("username", username),
                ("password", password),
                ("next", "/history"),
            ]);
        if let Some(c) = cookie {
            req = req.header(COOKIE, format!("{SESSION_COOKIE}={c}"));
        }
        req.send().await.expect("login request")
    }

    /// Logs in and returns the session cookie value.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let res = self.post_login(username, password, None).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), "/history", "login should succeed");
        session_cookie(res.headers()).expect("session cookie set at login")
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Response {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            req = req.header(COOKIE, format!("{SESSION_COOKIE}={c}"));
        }
        req.send().await.expect("GET")
    }

    /// Calls a server function like the browser does (same-origin POST, form encoded).
    pub async fn call(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("origin", self.origin())
            .header("sec-fetch-site", "same-origin")
            .header("accept", "application/json")
            .form(form);
        if let Some(c) = cookie {
            req = req.header(COOKIE, format!("{SESSION_COOKIE}={c}"));
        }
        req.send().await.expect("server function call")
    }
}

pub fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().find_map(|v| {
        let text = v.to_str().ok()?;
        let first = text.split(';').next()?;
        let (name, value) = first.split_once('=')?;
        (name == SESSION_COOKIE && !value.is_empty()).then(|| value.to_owned())
    })
}

pub fn set_cookie_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(SESSION_COOKIE))
        .map(str::to_owned)
}

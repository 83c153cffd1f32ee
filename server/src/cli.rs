//! The command line: `grappe serve`, user management, and audit verification / export.
//! Commands that change something are audited as `cli:<OS user>`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use grappe_engine::audit::{AuditFilter, VerifyReport, error_chain};
use grappe_engine::auth::{Password, ThrottlePolicy};
use grappe_engine::names::UserName;
use grappe_engine::users::Role;
use grappe_engine::{Caller, Engine, EngineConfig};

use crate::config::Settings;
use crate::startup::Application;

#[derive(Parser, Debug)]
#[command(
    name = "grappe",
    version,
    about = "Grappe: a control room for Kubernetes cluster networking"
)]
pub struct Cli {
    /// Configuration file (TOML). Without it, defaults and GRAPPE_* variables apply.
    #[arg(long, global = true, env = "GRAPPE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the web server.
    Serve,
    /// Manage local users.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user. The password is read from stdin with --password-stdin, else generated and
    /// printed once.
    Add {
        name: String,
        #[arg(long, value_enum, default_value_t = RoleArg::Viewer)]
        role: RoleArg,
        #[arg(long)]
        password_stdin: bool,
        /// Succeed without change if the user already exists (for setup scripts).
        #[arg(long)]
        if_missing: bool,
    },
    /// Disable a user and end all of their sessions.
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// Change a user's role.
    Role {
        name: String,
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// Set a user's password (from stdin with --password-stdin, else generated and printed).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the hash chain; exit 0 if intact, 2 naming the first altered or missing record.
    Verify,
    /// Write the log (newest first) to stdout.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        cluster: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    Viewer,
    Operator,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

/// Errors of the command line; printed with their causes.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Startup(#[from] crate::startup::StartupError),
    #[error("cannot open the database")]
    Engine(#[from] grappe_engine::EngineError),
    #[error(transparent)]
    User(#[from] grappe_engine::users::UserError),
    #[error(transparent)]
    Name(#[from] grappe_engine::names::NameError),
    #[error(transparent)]
    Audit(#[from] grappe_engine::audit::AuditError),
    #[error("cannot read the password from stdin")]
    Stdin(#[source] std::io::Error),
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),
    #[error("server error")]
    Serve(#[source] std::io::Error),
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    let settings = Settings::load(cli.config.as_deref())?;
    crate::telemetry::init(settings.log_format);
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::User(cmd) => user(settings, cmd).await,
        Command::Audit(cmd) => audit(settings, cmd).await,
    }
}

async fn serve(settings: Settings) -> Result<ExitCode, CliError> {
    let listen = settings.listen;
    let database = settings.database.clone();
    let clusters: Vec<String> = settings
        .clusters
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    let app = Application::build(settings).await?;
    tracing::info!(
        %listen,
        port = app.port(),
        database = %database.display(),
        ?clusters,
        "Grappe is listening"
    );
    if app.engine().users.count().await? == 0 {
        tracing::warn!("no user exists yet: add one with `grappe user add NAME --role admin`");
    }
    app.run_until(shutdown_signal())
        .await
        .map_err(CliError::Serve)?;
    tracing::info!("Grappe stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn engine(settings: &Settings) -> Result<Engine, CliError> {
    Ok(Engine::start(EngineConfig {
        database: settings.database.clone(),
        clusters: Vec::new(),
        throttle: ThrottlePolicy::default(),
        manifest_mirror: None,
        // The server may be executing runs right now: the CLI must not call them interrupted.
        recover_runs: false,
        ssh: Default::default(),
    })
    .await?)
}

fn cli_caller() -> Caller {
    let os_user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".to_owned());
    Caller::cli(&os_user)
}

/// The name of this process's real uid in /etc/passwd (when USER is not set, e.g. under cron).
fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let fields: Vec<&str> = l.split(':').collect();
        (fields.len() > 2 && fields[2] == uid).then(|| fields[0].to_owned())
    })
}

fn read_password(from_stdin: bool) -> Result<(Password, bool), CliError> {
    if !from_stdin {
        return Ok((Password::generate(), true));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password: ");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(CliError::Stdin)?;
    let secret = line.trim_end_matches(['\n', '\r']).to_owned();
    Ok((Password::new(secret), false))
}

async fn user(settings: Settings, cmd: UserCommand) -> Result<ExitCode, CliError> {
    let engine = engine(&settings).await?;
    let caller = cli_caller();
    let mut out = std::io::stdout();
    match cmd {
        UserCommand::Add {
            name,
            role,
            password_stdin,
            if_missing,
        } => {
            let name = UserName::parse(&name)?;
            if if_missing && engine.users.by_name(&name).await?.is_some() {
                writeln!(out, "user {name} already exists").map_err(CliError::Output)?;
                return Ok(ExitCode::SUCCESS);
            }
            let (password, generated) = read_password(password_stdin)?;
            let user = engine
                .users
                .add(&caller, &name, &password, role.into())
                .await?;
            writeln!(
                out,
                "added user {} with role {}",
                user.name,
                user.role.as_str()
            )
            .map_err(CliError::Output)?;
            if generated {
                writeln!(out, "password (shown once): {}", password.expose())
                    .map_err(CliError::Output)?;
            }
        }
        UserCommand::Disable { name } => {
            let name = UserName::parse(&name)?;
            let ended = engine.users.disable(&caller, &name).await?;
            writeln!(out, "disabled user {name}; ended {ended} session(s)")
                .map_err(CliError::Output)?;
        }
        UserCommand::Enable { name } => {
            let name = UserName::parse(&name)?;
            engine.users.enable(&caller, &name).await?;
            writeln!(out, "enabled user {name}").map_err(CliError::Output)?;
        }
        UserCommand::Role { name, role } => {
            let name = UserName::parse(&name)?;
            let role: Role = role.into();
            engine.users.set_role(&caller, &name, role).await?;
            writeln!(out, "user {name} now has role {}", role.as_str())
                .map_err(CliError::Output)?;
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let name = UserName::parse(&name)?;
            let (password, generated) = read_password(password_stdin)?;
            let ended = engine.users.set_password(&caller, &name, &password).await?;
            writeln!(out, "password of {name} changed; ended {ended} session(s)")
                .map_err(CliError::Output)?;
            if generated {
                writeln!(out, "password (shown once): {}", password.expose())
                    .map_err(CliError::Output)?;
            }
        }
        UserCommand::List => {
            for u in engine.users.list().await? {
                writeln!(
                    out,
                    "{:<24} {:<9} {:<9} {}",
                    u.name.as_str(),
                    u.role.as_str(),
                    if u.disabled { "disabled" } else { "enabled" },
                    u.created_at
                )
                .map_err(CliError::Output)?;
            }
        }
    }
    engine.store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn audit(settings: Settings, cmd: AuditCommand) -> Result<ExitCode, CliError> {
    let engine = engine(&settings).await?;
    let code = match cmd {
        AuditCommand::Verify => {
            let report = engine.audit.verify().await?;
            println!("{report}");
            match report {
                VerifyReport::Intact { .. } => ExitCode::SUCCESS,
                VerifyReport::Broken { .. } => ExitCode::from(2),
            }
        }
        AuditCommand::Export {
            format,
            actor,
            action,
            cluster,
        } => {
            let filter = AuditFilter {
                actor,
                action,
                cluster,
                ..AuditFilter::default()
            };
            let records = engine.audit.export(&filter, i64::MAX).await?;
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            match format {
                ExportFormat::Csv => grappe_engine::audit::write_csv(&records, &mut lock)
                    .map_err(|e| CliError::Output(std::io::Error::other(e)))?,
                ExportFormat::Json => serde_json::to_writer_pretty(&mut lock, &records)
                    .map_err(|e| CliError::Output(std::io::Error::other(e)))?,
            }
            ExitCode::SUCCESS
        }
    };
    engine.store.close().await;
    Ok(code)
}

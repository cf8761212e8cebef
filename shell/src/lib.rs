//! `osprey shell`: a SQL shell over Flight SQL, interactive (line editing, history, completion,
//! Ctrl-C cancels on the server) or scripted (`-c`, `-f`, standard input).
//!
//! - [`connect`]: flags, `OSPREY_*` variables and profiles → where and as whom.
//! - [`client`]: the Flight SQL connection.
//! - [`session`]: statements, meta-commands and output settings.
//! - [`repl`]: the interactive loop.
//! - [`format`]: table, vertical, CSV, TSV, JSON, NDJSON and Markdown output.
//! - [`split`]: statements split at `;`.
//! - [`terminal`]: terminal size, password prompt, pager.

pub mod client;
pub mod connect;
pub mod format;
pub mod repl;
mod script;
pub mod session;
pub mod split;
pub mod terminal;

use client::{Client, Credentials};
use connect::{Target, load_profile, profile_file_path};
use format::Format;
use session::{Session, Settings};
use std::path::PathBuf;

/// Exit code: every statement succeeded.
pub const EXIT_OK: i32 = 0;
/// Exit code: a statement or command failed.
pub const EXIT_STATEMENT_FAILED: i32 = 1;
/// Exit code: no connection (wrong address, credentials, profile or arguments).
pub const EXIT_NO_CONNECTION: i32 = 2;

/// The arguments of `osprey shell`.
#[derive(clap::Args, Debug, Clone)]
pub struct ShellArgs {
    /// Coordinator host [default: 127.0.0.1, or the profile's].
    #[arg(long, short = 'H', env = "OSPREY_HOST", value_name = "HOST")]
    pub host: Option<String>,

    /// Coordinator Flight SQL port [default: 50051, or the profile's].
    #[arg(long, short = 'p', env = "OSPREY_PORT", value_name = "PORT")]
    pub port: Option<u16>,

    /// User to log in as [default: admin, or the profile's]. The password comes from
    /// OSPREY_PASSWORD, else (for admin on this machine) osprey local's DATA_DIR/admin-password,
    /// else a prompt.
    #[arg(long, short = 'U', env = "OSPREY_USER", value_name = "USER")]
    pub user: Option<String>,

    /// A profile from ~/.config/osprey/config.toml (or $OSPREY_SHELL_CONFIG).
    #[arg(long, short = 'P', env = "OSPREY_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,

    /// Connect with TLS, trusting the system's certificate authorities.
    #[arg(long)]
    pub tls: bool,

    /// Connect with TLS, trusting this CA certificate (PEM).
    #[arg(long, env = "OSPREY_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Log in with a bearer token (from a Flight SQL Handshake) instead of a password.
    #[arg(
        long,
        env = "OSPREY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// Never prompt for a password: fail instead.
    #[arg(long, short = 'w')]
    pub no_password: bool,

    /// Where `osprey local` keeps its files (for its admin password).
    #[arg(
        long,
        env = "OSPREY_DATA_DIR",
        value_name = "DIR",
        default_value = "osprey-data"
    )]
    pub data_dir: PathBuf,

    /// Run SQL (several statements separated by `;`, or a meta-command), then exit. May be
    /// given more than once.
    #[arg(long = "command", short = 'c', value_name = "SQL")]
    pub commands: Vec<String>,

    /// Run the statements in FILE (`-` for standard input), then exit. May be given more than
    /// once; runs after any -c.
    #[arg(long = "file", short = 'f', value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Output format: table, vertical, csv, tsv, json, ndjson or markdown. Machine formats
    /// print nothing but the data.
    #[arg(long, short = 'F', value_name = "FORMAT", default_value = "table")]
    pub format: Format,

    /// Keep going after a failed statement in -c, -f and piped input (the exit code is still 1).
    #[arg(long)]
    pub continue_on_error: bool,

    /// Print the elapsed time after each statement.
    #[arg(long)]
    pub timing: bool,

    /// Never page long output.
    #[arg(long)]
    pub no_pager: bool,

    /// In an interactive session, print at most N rows of a result in the table, vertical and
    /// markdown formats (the rest is counted, not kept). 0 prints everything. Files, pipes and
    /// the machine formats always get every row.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_rows: usize,
}

/// Runs the shell; returns the process exit code.
pub async fn run(args: ShellArgs) -> i32 {
    let fail = |message: String| {
        eprintln!("osprey shell: {message}");
        EXIT_NO_CONNECTION
    };
    let profile = match profile_file_path() {
        Some(path) => match load_profile(&path, args.profile.as_deref()) {
            Ok(profile) => profile,
            Err(err) => return fail(err.to_string()),
        },
        None if args.profile.is_some() => {
            return fail("no profile file: set HOME or OSPREY_SHELL_CONFIG".into());
        }
        None => connect::Profile::default(),
    };
    let target = Target::resolve(
        args.host.clone(),
        args.port,
        args.user.clone(),
        args.tls,
        args.tls_ca.clone(),
        &profile,
    );
    let credentials = match credentials(&args, &target) {
        Ok(credentials) => credentials,
        Err(message) => return fail(message),
    };
    let client = match Client::connect(&target, &credentials).await {
        Ok(client) => client,
        Err(err) => return fail(err.to_string()),
    };
    let scripted = !args.commands.is_empty() || !args.files.is_empty();
    let interactive = !scripted && terminal::stdin_is_tty();
    let settings = Settings {
        format: args.format,
        timing: args.timing,
        interactive,
        pager: !args.no_pager,
        continue_on_error: args.continue_on_error,
        max_rows: (args.max_rows > 0).then_some(args.max_rows),
    };
    let mut session = Session::new(client, target, settings);
    if interactive {
        session.refresh_catalog().await;
        return match repl::run(&mut session).await {
            Ok(()) => EXIT_OK,
            Err(err) => fail(format!("terminal: {err}")),
        };
    }
    let mut failures = 0;
    // Each script with the name its errors give (`-f` files by path; `-c` and input by none).
    let mut scripts: Vec<(Option<String>, Result<String, String>)> = args
        .commands
        .iter()
        .map(|sql| (None, Ok(sql.clone())))
        .collect();
    if !scripted {
        scripts.push((None, read_stdin()));
    }
    for path in &args.files {
        scripts.push(if path.as_os_str() == "-" {
            (None, read_stdin())
        } else {
            (
                Some(path.display().to_string()),
                std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display())),
            )
        });
    }
    for (name, script) in scripts {
        match script {
            Ok(text) => failures += session.run_script(&text, name.as_deref()).await,
            Err(message) => {
                eprintln!("ERROR: {message}");
                failures += 1;
            }
        }
        if failures > 0 && !args.continue_on_error {
            break;
        }
    }
    if failures > 0 {
        EXIT_STATEMENT_FAILED
    } else {
        EXIT_OK
    }
}

fn read_stdin() -> Result<String, String> {
    std::io::read_to_string(std::io::stdin()).map_err(|err| format!("standard input: {err}"))
}

/// The token, OSPREY_PASSWORD, `osprey local`'s admin password file, or a prompt.
fn credentials(args: &ShellArgs, target: &Target) -> Result<Credentials, String> {
    if let Some(token) = &args.token {
        return Ok(Credentials::Token(token.clone()));
    }
    if let Ok(password) = std::env::var("OSPREY_PASSWORD") {
        return Ok(Credentials::Password(password));
    }
    if target.is_local() && target.user == "admin" {
        let path = args.data_dir.join("admin-password");
        if let Ok(password) = std::fs::read_to_string(&path) {
            return Ok(Credentials::Password(password.trim().to_string()));
        }
    }
    if args.no_password {
        return Err(format!(
            "no password for {}: set OSPREY_PASSWORD or pass --token (--no-password forbids a prompt)",
            target.user
        ));
    }
    terminal::prompt_password(&format!("Password for {}@{}: ", target.user, target.host))
        .map(Credentials::Password)
        .map_err(|err| {
            format!(
                "cannot prompt for the password of {} ({err}): set OSPREY_PASSWORD or pass --token",
                target.user
            )
        })
}

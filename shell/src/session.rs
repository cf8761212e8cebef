//! One shell session: runs statements and meta-commands, prints their results, and keeps the
//! output settings (`\format`, `\x`, `\timing`, `\o`).

use crate::client::{Client, ClientError, ServerProgress, TableInfo};
use crate::connect::Target;
use crate::format::{FORMAT_NAMES, Format, Style, render, render_part};
use crate::script::{ScriptItem, error_pointer, script_items};
use crate::terminal;
use datafusion::arrow::array::RecordBatch;
use futures::StreamExt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a statement or command failed.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The server or the connection.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The result could not be rendered.
    #[error("cannot print the result: {0}")]
    Render(#[from] datafusion::arrow::error::ArrowError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Ctrl-C stopped the statement.
    #[error("cancelled")]
    Cancelled,
    /// A meta-command was misused.
    #[error("{0}")]
    Usage(String),
}

/// Output settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How results print.
    pub format: Format,
    /// Print elapsed time after each statement.
    pub timing: bool,
    /// A person is at the keyboard: progress, Ctrl-C cancels, colour and pager on a terminal.
    pub interactive: bool,
    /// Use the pager for long output (interactive, terminal only).
    pub pager: bool,
    /// Keep going after a failed statement in scripts.
    pub continue_on_error: bool,
    /// At most this many rows of a result are kept and printed in the formats for people when
    /// a person reads the terminal; `None` keeps all.
    pub max_rows: Option<usize>,
}

/// A connected session.
pub struct Session {
    client: Client,
    target: Target,
    /// Output settings, changed by meta-commands.
    pub settings: Settings,
    /// The format before `\x` turned vertical output on.
    format_before_vertical: Option<Format>,
    output: Option<(PathBuf, std::fs::File)>,
    /// Tables and columns for completion, refreshed after DDL.
    pub catalog: Arc<Mutex<Vec<TableInfo>>>,
}

/// What the caller should do after a meta-command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read the next input.
    Continue,
    /// Leave the shell.
    Quit,
}

const HELP: &str = "\
Statements end with `;` and may span lines. Ctrl-C cancels a running statement (or clears
the line), Ctrl-D leaves. Tab completes keywords, schemas, tables and columns.

Listing and describing
  \\d               tables and views (like \\dt)
  \\d NAME          columns of NAME (table or schema.table; current schema first)
  \\dn              schemas
  \\dt              tables and views
Output
  \\format NAME     table, vertical, csv, tsv, json, ndjson or markdown
  \\x [on|off]      vertical output (one field per line)
  \\timing [on|off] elapsed time after each statement
  \\maxrows [N|off] rows printed per result on the terminal (default 1000)
  \\o [FILE]        send results to FILE (no FILE: back to the terminal)
Scripts and connection
  \\i FILE          run the statements in FILE
  \\c SCHEMA        switch the current schema (USE SCHEMA)
  \\conninfo        where and as whom you are connected
Help and leaving
  \\? or \\h        this help
  \\q               quit
";

impl Session {
    /// A session over `client`.
    pub fn new(client: Client, target: Target, settings: Settings) -> Self {
        Self {
            client,
            target,
            settings,
            format_before_vertical: None,
            output: None,
            catalog: Arc::default(),
        }
    }

    /// The session's current schema on the server, for the prompt.
    pub async fn current_schema(&mut self) -> Option<String> {
        self.client.current_schema().await
    }

    /// Reloads the tables and columns used for completion (errors leave the old list).
    pub async fn refresh_catalog(&mut self) {
        if let Ok(tables) = self.client.tables().await {
            *self.catalog.lock().unwrap_or_else(|p| p.into_inner()) = tables;
        }
    }

    /// Runs every statement in `text` in order. Stops at the first failure unless
    /// `continue_on_error`; returns how many failed. Errors name `source` (a script file) and
    /// the line its failing statement starts on, as psql does.
    pub async fn run_script(&mut self, text: &str, source: Option<&str>) -> usize {
        let mut failures = 0;
        for (line, item) in script_items(text) {
            let statement = match &item {
                ScriptItem::Sql(statement) => Some(statement.clone()),
                ScriptItem::Meta(_) => None,
            };
            let outcome = match item {
                ScriptItem::Meta(line) => match self.meta(&line).await {
                    Ok(Next::Quit) => break,
                    Ok(Next::Continue) => Ok(()),
                    Err(err) => Err(err),
                },
                ScriptItem::Sql(statement) => self.run(&statement).await,
            };
            if let Err(err) = outcome {
                let place = source.map(|name| format!("{name}:{line}"));
                self.report_in(&err, statement.as_deref(), place.as_deref());
                failures += 1;
                if !self.settings.continue_on_error {
                    break;
                }
            }
        }
        failures
    }

    /// Prints an error to standard error.
    pub fn report(&self, err: &ShellError) {
        self.report_in(err, None, None);
    }

    /// Prints an error of `statement` to standard error: after `place` (a script's
    /// `file:line`) when given, and with the statement's line and a caret under the spot when
    /// the error says where (`at line L, column C`), as psql does.
    pub fn report_in(&self, err: &ShellError, statement: Option<&str>, place: Option<&str>) {
        let color = self.settings.interactive && terminal::stderr_is_tty();
        let label = if color {
            "\x1b[31mERROR\x1b[0m"
        } else {
            "ERROR"
        };
        let prefix = place.map(|place| format!("{place}: ")).unwrap_or_default();
        eprintln!("{prefix}{label}: {err}");
        if let Some(pointer) = statement.and_then(|sql| error_pointer(&err.to_string(), sql)) {
            eprint!("{pointer}");
        }
    }

    /// Runs one statement and prints its result.
    pub async fn run(&mut self, sql: &str) -> Result<(), ShellError> {
        let started = Instant::now();
        let live = Arc::new(LiveProgress::default());
        let progress = (self.settings.interactive && terminal::stderr_is_tty())
            .then(|| spawn_progress(started, Arc::clone(&live)));
        // Machine formats going to a file or a pipe print batch by batch.
        let stream_out =
            self.settings.format.streams() && !(self.settings.interactive && self.output.is_none());
        // A person reading a table on the terminal gets the first rows; the rest are counted.
        let keep = match self.settings.max_rows {
            Some(max)
                if self.settings.interactive
                    && self.output.is_none()
                    && self.settings.format.is_for_people() =>
            {
                max
            }
            _ => usize::MAX,
        };
        let result = self
            .fetch(sql, &live, progress.is_some(), stream_out, keep)
            .await;
        if let Some(progress) = progress {
            progress.abort();
            let _ = progress.await;
            // Clear the progress line.
            eprint!("\r\x1b[2K");
        }
        let (schema, batches, streamed) = result?;
        let elapsed = started.elapsed();
        let style = Style {
            color: self.settings.interactive && self.output.is_none() && terminal::stdout_is_tty(),
            width: if self.output.is_none() {
                terminal::size().map(|(columns, _)| columns)
            } else {
                None
            },
        };
        let format = self.settings.format;
        let mut text = String::new();
        let shown: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let count = live.rows_received.load(Ordering::Relaxed);
        if !schema.fields().is_empty() && !streamed {
            text = render(format, &schema, &batches, style)?;
        }
        if format.is_for_people() {
            if schema.fields().is_empty() {
                text.push_str("OK\n");
            } else {
                let plural = if count == 1 { "" } else { "s" };
                if (shown as u64) < count {
                    text.push_str(&format!(
                        "({} row{plural}; the first {} shown: \\maxrows N or \\maxrows off shows \
                         more, -F csv or \\o FILE writes all)\n",
                        group_digits(count),
                        group_digits(shown as u64),
                    ));
                } else {
                    text.push_str(&format!("({count} row{plural})\n"));
                }
            }
        }
        let timing = self
            .settings
            .timing
            .then(|| format!("Time: {:.3} s\n", elapsed.as_secs_f64()));
        if let Some(timing) = &timing
            && format.is_for_people()
        {
            text.push_str(timing);
        }
        self.emit(&text)?;
        // Machine formats keep stdout for data: the time goes to stderr, after the result (as
        // psql prints it), so a terminal showing both reads in order.
        if let Some(timing) = timing
            && !format.is_for_people()
        {
            eprint!("{timing}");
        }
        if is_ddl(sql) {
            self.refresh_catalog().await;
        }
        Ok(())
    }

    /// Starts `sql` and gathers its result, cancelling it on Ctrl-C when interactive.
    /// With `stream_out`, batches are printed as they arrive and none are kept; the flag in
    /// the answer says whether anything was printed.
    async fn fetch(
        &mut self,
        sql: &str,
        live: &Arc<LiveProgress>,
        watch_server: bool,
        stream_out: bool,
        keep: usize,
    ) -> Result<
        (
            datafusion::arrow::datatypes::SchemaRef,
            Vec<RecordBatch>,
            bool,
        ),
        ShellError,
    > {
        let interactive = self.settings.interactive;
        let interrupted = async {
            if interactive {
                let _ = tokio::signal::ctrl_c().await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(interrupted);
        let running = tokio::select! {
            running = self.client.run(sql) => running?,
            _ = &mut interrupted => return Err(ShellError::Cancelled),
        };
        let schema = running.schema.clone();
        let info = running.info.clone();
        // Aborted when this function returns, however it returns.
        let _server_watch = watch_server.then(|| {
            AbortOnDrop(spawn_server_watch(
                self.client.clone(),
                info.clone(),
                Arc::clone(live),
            ))
        });
        let mut stream = running.batches;
        let mut batches = Vec::new();
        let mut kept = 0usize;
        let mut printed = false;
        loop {
            tokio::select! {
                next = stream.next() => match next {
                    None => break,
                    Some(batch) => {
                        let batch = batch?;
                        live.rows_received.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                        live.bytes_received
                            .fetch_add(batch.get_array_memory_size() as u64, Ordering::Relaxed);
                        if stream_out && !schema.fields().is_empty() {
                            let text = render_part(self.settings.format, &schema, &batch, !printed)?;
                            self.emit(&text)?;
                            printed = true;
                        } else if kept < keep {
                            let batch = batch.slice(0, batch.num_rows().min(keep - kept));
                            kept += batch.num_rows();
                            batches.push(batch);
                        }
                    }
                },
                _ = &mut interrupted => {
                    drop(stream);
                    self.client.cancel(info).await;
                    return Err(ShellError::Cancelled);
                }
            }
        }
        Ok((schema, batches, printed))
    }

    /// Writes `text` to the `\o` file, or the terminal (through the pager when long).
    fn emit(&mut self, text: &str) -> Result<(), ShellError> {
        if let Some((path, file)) = &mut self.output {
            return file
                .write_all(text.as_bytes())
                .map_err(|source| ShellError::File {
                    path: path.clone(),
                    source,
                });
        }
        if self.settings.interactive && self.settings.pager {
            terminal::page(text);
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        Ok(())
    }

    /// Runs a meta-command (`\d`, `\x`, `\q`, ...).
    pub async fn meta(&mut self, line: &str) -> Result<Next, ShellError> {
        let line = line.trim().trim_end_matches(';').trim();
        let (command, argument) = match line.split_once(char::is_whitespace) {
            Some((command, argument)) => (command, Some(argument.trim())),
            None => (line, None),
        };
        match command {
            "\\q" | "\\quit" => return Ok(Next::Quit),
            "\\?" | "\\h" | "\\help" => self.emit(HELP)?,
            "\\maxrows" => {
                self.settings.max_rows = match argument {
                    // No argument: say what it is now.
                    None => self.settings.max_rows,
                    Some("off") | Some("0") => None,
                    Some(number) => Some(number.parse().map_err(|_| {
                        ShellError::Usage(format!(
                            "\\maxrows takes a number of rows or off, not {number:?}"
                        ))
                    })?),
                };
                let text = match self.settings.max_rows {
                    Some(max) => format!("At most {max} rows are printed per result.\n"),
                    None => "Every row is printed.\n".to_string(),
                };
                self.emit(&text)?;
            }
            "\\timing" => {
                self.settings.timing = toggle(argument, self.settings.timing)?;
                self.emit(&format!("Timing is {}.\n", on_off(self.settings.timing)))?;
            }
            "\\x" => {
                let vertical = toggle(argument, self.settings.format == Format::Vertical)?;
                if vertical && self.settings.format != Format::Vertical {
                    self.format_before_vertical = Some(self.settings.format);
                    self.settings.format = Format::Vertical;
                } else if !vertical && self.settings.format == Format::Vertical {
                    self.settings.format =
                        self.format_before_vertical.take().unwrap_or(Format::Table);
                }
                self.emit(&format!("Vertical output is {}.\n", on_off(vertical)))?;
            }
            "\\format" => {
                let Some(name) = argument else {
                    return Err(ShellError::Usage(format!(
                        "\\format NAME: NAME is one of {FORMAT_NAMES}"
                    )));
                };
                self.settings.format = name.parse().map_err(ShellError::Usage)?;
                self.emit(&format!("Output format is {name}.\n"))?;
            }
            "\\o" | "\\out" => match argument {
                None => {
                    self.output = None;
                    self.emit("Output goes to the terminal.\n")?;
                }
                Some(path) => {
                    let path = PathBuf::from(path);
                    let file = std::fs::File::create(&path).map_err(|source| ShellError::File {
                        path: path.clone(),
                        source,
                    })?;
                    self.output = Some((path, file));
                }
            },
            "\\i" | "\\include" => {
                let Some(path) = argument else {
                    return Err(ShellError::Usage("\\i FILE: name the script to run".into()));
                };
                let text = std::fs::read_to_string(path).map_err(|source| ShellError::File {
                    path: PathBuf::from(path),
                    source,
                })?;
                Box::pin(self.run_script(&text, Some(path))).await;
            }
            "\\c" | "\\connect" => {
                let Some(schema) = argument else {
                    return Err(ShellError::Usage(
                        "\\c SCHEMA: name the schema to use".into(),
                    ));
                };
                self.run(&format!("USE {schema}")).await?;
            }
            "\\conninfo" => {
                let text = format!(
                    "Connected to {} as user {} ({}).\n",
                    self.client.uri,
                    self.client.user,
                    if self.target.tls { "TLS" } else { "no TLS" }
                );
                self.emit(&text)?;
            }
            "\\dn" => {
                self.run(
                    "SELECT catalog_name AS \"catalog\", schema_name AS \"schema\" \
                     FROM information_schema.schemata ORDER BY 1, 2",
                )
                .await?;
            }
            "\\d" | "\\dt" if argument.is_none() => {
                self.run(
                    "SELECT table_schema AS \"schema\", table_name AS \"name\", table_type AS \"type\" \
                     FROM information_schema.tables \
                     WHERE table_schema <> 'information_schema' ORDER BY 1, 2",
                )
                .await?;
            }
            "\\d" | "\\dt" => {
                // Resolved as SQL resolves it (the current schema first; `schema.table` and
                // quoted names work), and an unknown name is an error, as in psql.
                let name = argument.unwrap_or_default();
                self.run(&format!("DESCRIBE {name}")).await?;
            }
            other => {
                return Err(ShellError::Usage(format!(
                    "unknown command {other}: \\? lists the commands"
                )));
            }
        }
        Ok(Next::Continue)
    }
}

fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}

fn toggle(argument: Option<&str>, current: bool) -> Result<bool, ShellError> {
    match argument.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(!current),
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(ShellError::Usage(format!("{other:?}: say on or off"))),
    }
}

/// Whether a statement may change the tables (so completion is reloaded).
fn is_ddl(sql: &str) -> bool {
    let first = sql
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    matches!(first.as_str(), "CREATE" | "DROP" | "ALTER" | "USE")
}

/// What the live progress line shows: figures received by the shell, and the server's own.
#[derive(Default)]
struct LiveProgress {
    rows_received: AtomicU64,
    bytes_received: AtomicU64,
    server: Mutex<Option<ServerProgress>>,
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Asks the server how far the statement has got, twice a second, until aborted.
fn spawn_server_watch(
    mut client: Client,
    info: arrow_flight::FlightInfo,
    live: Arc<LiveProgress>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Quick statements finish before anyone looks.
        tokio::time::sleep(Duration::from_millis(250)).await;
        loop {
            // None (planning, or ended) clears a stale "queued".
            let progress = client.progress(&info).await;
            *live.server.lock().unwrap_or_else(|p| p.into_inner()) = progress;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// A live line on standard error: elapsed time, what the server has read and how many of its
/// stages are done, and what has arrived here. Cut to the terminal's width.
fn spawn_progress(started: Instant, live: Arc<LiveProgress>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        const SPINNER: [char; 4] = ['|', '/', '-', '\\'];
        // Quick statements finish before anything is drawn.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut tick = 0usize;
        loop {
            let server = live
                .server
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let line = progress_line(
                SPINNER[tick % SPINNER.len()],
                started.elapsed(),
                server,
                live.rows_received.load(Ordering::Relaxed),
                live.bytes_received.load(Ordering::Relaxed),
            );
            let width = terminal::size().map_or(80, |(columns, _)| columns).max(10);
            let line: String = line.chars().take(width - 1).collect();
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
            tick += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The text of the progress line; the most useful figures come first, since a narrow terminal
/// cuts the end.
fn progress_line(
    spinner: char,
    elapsed: Duration,
    server: Option<ServerProgress>,
    rows_received: u64,
    bytes_received: u64,
) -> String {
    let mut parts = vec![format!("{spinner} {:.1} s", elapsed.as_secs_f64())];
    if let Some(server) = server.as_ref().filter(|server| server.state == "queued") {
        parts.push(format!(
            "queued {:.1} s: the workgroup is at its limit of running queries",
            server.queued_ms as f64 / 1000.0
        ));
        parts.push("Ctrl-C cancels".to_string());
        return parts.join(" · ");
    }
    if let Some(server) = server {
        let mut read = format!(
            "read {} rows, {}",
            group_digits(server.rows_read),
            human_bytes(server.bytes_read)
        );
        if server.bytes_planned > 0 {
            read.push_str(&format!(" of {}", human_bytes(server.bytes_planned)));
        }
        parts.push(read);
        if server.stages_total > 0 {
            parts.push(format!(
                "stages {}/{}",
                server.stages_done, server.stages_total
            ));
        }
    }
    parts.push(format!(
        "received {} rows, {}",
        group_digits(rows_received),
        human_bytes(bytes_received)
    ));
    parts.push("Ctrl-C cancels".to_string());
    parts.join(" · ")
}

/// `1234567` as `1,234,567`.
fn group_digits(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Bytes in the largest binary unit that keeps the number at least 1.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_puts_server_figures_first() {
        let server = ServerProgress {
            state: "running".to_string(),
            rows_read: 1_234_567,
            bytes_read: 3 << 20,
            bytes_planned: 12 << 20,
            stages_done: 1,
            stages_total: 3,
            queued_ms: 0,
        };
        assert_eq!(
            progress_line('|', Duration::from_millis(2500), Some(server), 1000, 2048),
            "| 2.5 s · read 1,234,567 rows, 3.0 MiB of 12.0 MiB · stages 1/3 · \
             received 1,000 rows, 2.0 KiB · Ctrl-C cancels"
        );
        assert_eq!(
            progress_line('/', Duration::ZERO, None, 0, 5),
            "/ 0.0 s · received 0 rows, 5 B · Ctrl-C cancels"
        );
        let queued = ServerProgress {
            state: "queued".to_string(),
            queued_ms: 4200,
            ..ServerProgress::default()
        };
        assert_eq!(
            progress_line('-', Duration::from_millis(4300), Some(queued), 0, 0),
            "- 4.3 s · queued 4.2 s: the workgroup is at its limit of running queries · \
             Ctrl-C cancels"
        );
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
    }
}

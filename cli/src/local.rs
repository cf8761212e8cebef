//! `osprey local`: a coordinator (in this process) and N executor processes on loopback.

use crate::config_file::FileConfig;
use crate::{EXECUTOR_READY_PREFIX, LocalArgs, coordinator_config, write_private_file};
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use osprey_coordinator::Listening;
use osprey_proto::ClusterSecret;
use osprey_service::UserCredential;
use rand::RngCore;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use url::Url;

/// How long an executor may take to start listening.
const EXECUTOR_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long executors get to exit after SIGTERM before they are killed.
const EXECUTOR_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The default memory per executor in `local` mode: modest, since they share one machine.
const DEFAULT_EXECUTOR_MEMORY: u64 = 2 << 30;
/// Input bytes per scan task in `osprey local` (a cluster's default is 16 MiB).
const LOCAL_BYTES_PER_TASK: u64 = 4 << 20;

/// The default TPC-H scale factor generated on first start.
const DEFAULT_TPCH_SCALE: f64 = 0.1;

pub async fn run(args: LocalArgs, file: FileConfig) -> Result<()> {
    if args.executors == 0 {
        bail!("--executors must be at least 1");
    }
    // Installed first, so Ctrl-C during start-up still stops the executors cleanly.
    let shutdown = osprey_executor::shutdown_signal();
    let mut common = args.common.clone();
    if common.exchange_compression.is_none() && file.coordinator.exchange_compression.is_none() {
        // Every exchange stays on loopback, where compressing costs more than it saves.
        common.exchange_compression = Some(osprey_engine::ExchangeCompression::None);
    }
    if common.tpch_scale.is_none() && file.coordinator.tpch_scale_factor.is_none() {
        common.tpch_scale = Some(DEFAULT_TPCH_SCALE);
    }
    if common.bytes_per_task.is_none() && file.coordinator.bytes_per_task.is_none() {
        // Small enough that the quick start's queries over TPC-H SF0.1 (lineitem is 15 MB)
        // are split into tasks on the executors, as a newcomer should see them run.
        common.bytes_per_task = Some(crate::config_file::ByteSize(LOCAL_BYTES_PER_TASK));
    }
    // A fresh cluster secret each run: only processes started here ever know it.
    let secret = ClusterSecret::new(random_token())?;
    let mut config = coordinator_config(&common, &file, secret.clone())?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let admin_password = admin_password(&config.data_dir)?;
    config.auth.users.retain(|u| u.name != "admin");
    config.auth.users.push(UserCredential {
        name: "admin".into(),
        password: admin_password.password.clone(),
        admin: true,
    });

    let executor_memory = match args.executor_memory {
        Some(size) => size.0,
        None => match file.executor.memory_limit {
            Some(size) => size.resolve()?,
            None => DEFAULT_EXECUTOR_MEMORY,
        },
    };
    let executor_threads = args.executor_threads.or(file.executor.threads);
    // Executors read the data, so they need the buckets' options: only `[[storage]]`, in a
    // private file of the data directory (none of the coordinator's other settings).
    let storage_config = executor_storage_config(&file, &config.data_dir)?;
    let mut executors = Vec::with_capacity(args.executors);
    for index in 0..args.executors {
        let spill_dir = config
            .data_dir
            .join("spill")
            .join(format!("executor-{index}"));
        let started = start_executor(
            &secret,
            executor_memory,
            executor_threads,
            &spill_dir,
            storage_config.as_deref(),
        )
        .await;
        match started {
            Ok(executor) => executors.push(executor),
            Err(err) => {
                stop_executors(&mut executors).await;
                return Err(err.context(format!("cannot start executor {index}")));
            }
        }
    }
    config.discovery.static_executors = executors.iter().map(|e| e.url.clone()).collect();
    let urls: Vec<String> = executors.iter().map(|e| e.url.to_string()).collect();
    tracing::info!(executors = ?urls, "executors started");

    let banner = Banner {
        password: admin_password,
        tls: config.tls.is_some(),
        try_query: match config.tpch_scale_factor {
            Some(scale) if scale > 0.0 => {
                format!("SELECT count(*) FROM tpch.lineitem  (TPC-H SF{scale})")
            }
            _ => "SELECT 1, or CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/path/'"
                .to_string(),
        },
    };
    let result =
        osprey_coordinator::run_coordinator(config, |listening| banner.print(listening), shutdown)
            .await;
    stop_executors(&mut executors).await;
    result?;
    Ok(())
}

struct LocalExecutor {
    child: Child,
    url: Url,
}

/// The `OSPREY_*` variables an executor started by `osprey local` keeps from its parent.
const EXECUTOR_ENV: &[&str] = &["OSPREY_CLUSTER_SECRET", "OSPREY_LOG_FORMAT"];

/// Writes the configuration file's `[[storage]]` entries (bucket options, which may hold
/// credentials) to a private file for the executors; `None` when there are none.
fn executor_storage_config(file: &FileConfig, data_dir: &Path) -> Result<Option<PathBuf>> {
    if file.storage.is_empty() {
        return Ok(None);
    }
    // TOML basic strings: backslashes and quotes escaped, control characters as \uXXXX.
    let quoted = |text: &str| {
        let mut out = String::from("\"");
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    };
    let mut text = String::from("# Written by `osprey local` for its executors.\n");
    for entry in &file.storage {
        let options: Vec<String> = entry
            .options
            .iter()
            .map(|(key, value)| format!("{} = {}", quoted(key), quoted(value)))
            .collect();
        text.push_str(&format!(
            "[[storage]]\nprefix = {}\noptions = {{ {} }}\n",
            quoted(&entry.prefix),
            options.join(", ")
        ));
    }
    let path = data_dir.join("executor-storage.toml");
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot replace {}", path.display())),
    }
    write_private_file(&path, &text)?;
    Ok(Some(path))
}

async fn start_executor(
    secret: &ClusterSecret,
    memory: u64,
    threads: Option<usize>,
    spill_dir: &Path,
    storage_config: Option<&Path>,
) -> Result<LocalExecutor> {
    let exe = std::env::current_exe().context("cannot find the osprey executable")?;
    let mut command = Command::new(exe);
    command
        .arg("executor")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--memory")
        .arg(memory.to_string())
        .arg("--spill-dir")
        .arg(spill_dir)
        // They stop after the coordinator: nobody is left to notice the drain.
        .arg("--drain-notice-ms")
        .arg("0")
        // The secret goes through the environment, never the command line (visible in `ps`).
        .env("OSPREY_CLUSTER_SECRET", secret.expose())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    // Each executor gets only what it needs: none of the coordinator's settings or secrets
    // (the admin password, the catalog URL with its database password, the TLS key). Storage
    // credentials (AWS_*, GOOGLE_*, AZURE_*) stay: executors read the data.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("OSPREY_") && !EXECUTOR_ENV.contains(&key) {
            command.env_remove(key);
        }
    }
    if let Some(threads) = threads {
        command.arg("--threads").arg(threads.to_string());
    }
    if let Some(path) = storage_config {
        command.arg("--config").arg(path);
    }
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec.
    unsafe {
        command.pre_exec(|| {
            // If this process dies, even by SIGKILL, the kernel sends the executor SIGTERM,
            // so no executor outlives `osprey local`.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().context("cannot start executor process")?;
    let stdout = child
        .stdout
        .take()
        .context("executor stdout is not piped")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(EXECUTOR_START_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = line.strip_prefix(EXECUTOR_READY_PREFIX) {
                return Ok::<_, anyhow::Error>(addr.trim().parse::<SocketAddr>()?);
            }
        }
        bail!("executor exited before it started listening (see its log above)")
    })
    .await
    .context("executor did not start listening in time")??;
    // Keep draining the pipe so the executor never blocks writing to it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(LocalExecutor {
        child,
        url: Url::parse(&format!("http://{addr}"))?,
    })
}

async fn stop_executors(executors: &mut [LocalExecutor]) {
    for executor in executors.iter() {
        if let Some(pid) = executor.child.id() {
            // SAFETY: sending a signal to a child we started and have not yet reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }
    for executor in executors.iter_mut() {
        match tokio::time::timeout(EXECUTOR_STOP_TIMEOUT, executor.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(url = %executor.url, "executor did not stop in time; killing it");
                let _ = executor.child.kill().await;
            }
        }
    }
}

struct AdminPassword {
    password: String,
    /// Where it is stored, when generated (None when it came from OSPREY_ADMIN_PASSWORD).
    stored_in: Option<std::path::PathBuf>,
    /// Whether it was generated by this run (then it is printed once).
    generated_now: bool,
}

/// OSPREY_ADMIN_PASSWORD, else the stored password, else a new one stored with mode 0600.
fn admin_password(data_dir: &Path) -> Result<AdminPassword> {
    if let Ok(password) = std::env::var("OSPREY_ADMIN_PASSWORD")
        && !password.is_empty()
    {
        return Ok(AdminPassword {
            password,
            stored_in: None,
            generated_now: false,
        });
    }
    let path = data_dir.join("admin-password");
    if path.exists() {
        let password = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .trim()
            .to_string();
        if password.is_empty() {
            bail!(
                "{} is empty: delete it to generate a new password",
                path.display()
            );
        }
        return Ok(AdminPassword {
            password,
            stored_in: Some(path),
            generated_now: false,
        });
    }
    let password = random_token();
    write_private_file(&path, &format!("{password}\n"))?;
    Ok(AdminPassword {
        password,
        stored_in: Some(path),
        generated_now: true,
    })
}

fn random_token() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

struct Banner {
    password: AdminPassword,
    /// A first statement to suggest: the demo dataset when there is one.
    try_query: String,
    /// Whether the client ports speak TLS.
    tls: bool,
}

impl Banner {
    fn print(&self, listening: Listening) {
        let addr = listening.flight;
        crate::announce(crate::COORDINATOR_READY_PREFIX, addr);
        if let Some(http) = listening.http {
            crate::announce(crate::HTTP_READY_PREFIX, http);
        }
        let (grpc, http_scheme) = if self.tls {
            ("grpc+tls", "https")
        } else {
            ("grpc", "http")
        };
        let http_line = listening
            .http
            .map(|http| format!("\n  HTTP:       {http_scheme}://{http}/readyz"))
            .unwrap_or_default();
        let password_line = match (&self.password.stored_in, self.password.generated_now) {
            (Some(path), true) => format!(
                "password {} (generated; shown only now, kept in {})",
                self.password.password,
                path.display()
            ),
            (Some(path), false) => format!("password in {}", path.display()),
            (None, _) => "password from OSPREY_ADMIN_PASSWORD".to_string(),
        };
        eprintln!(
            "\nOsprey is running.\n  Flight SQL: {grpc}://{addr}{http_line}\n  User:       admin, \
             {password_line}\n  Try:        {}\n  Stop:       Ctrl-C\n",
            self.try_query
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executors_get_the_storage_options_exactly() {
        let file: FileConfig = toml::from_str(
            "[[storage]]\nprefix = \"s3://lake\"\noptions = { aws_secret_access_key = 'a\"b\\\\c', aws_region = \"eu\" }\n",
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("osprey-local-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = executor_storage_config(&file, &dir).unwrap().unwrap();
        let written: FileConfig = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(written.storage[0].prefix, "s3://lake");
        assert_eq!(written.storage[0].options, file.storage[0].options);
        // Written again at the next start.
        assert!(executor_storage_config(&file, &dir).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
        let none = FileConfig::default();
        assert!(executor_storage_config(&none, &dir).unwrap().is_none());
    }
}

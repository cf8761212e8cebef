//! What row filters and column masks cost (issue 24's benchmark): TPC-H on one `osprey local`,
//! run by two users who differ only in their role. `plain` reads the tables with no filter or
//! mask; `filtered` reads `lineitem` under a row filter and two column masks chosen to keep
//! every row and value (`l_quantity >= 0`, `upper(l_shipmode)`, `substr(l_comment, 1, 44)`),
//! so both get the same answers (checked) and the difference is the policy's: planning the
//! expressions, the rewrite, and evaluating the filter and masks on every row.
//!
//! Goal (printed with the figures): the filtered total at most 5% over the plain one.

use crate::answers::Answer;
use crate::engines::{LocalCluster, OSPREY_PASSWORD};
use crate::report::{geometric_mean, machine_description};
use crate::suite::{self, Dataset, Suite};
use anyhow::{Context, Result, bail};
use osprey_tests::SqlClient;
use std::time::{Duration, Instant};

/// The overhead allowed, as a fraction of the plain total.
const GOAL: f64 = 0.05;

const USER_PASSWORD: &str = "policy-bench-password-1";

/// Per query: the median milliseconds of each user.
#[derive(Debug, serde::Serialize)]
pub struct PolicyQuery {
    /// TPC-H query number.
    pub query: usize,
    /// Median of the plain user's runs.
    pub plain_ms: f64,
    /// Median of the filtered user's runs.
    pub filtered_ms: f64,
}

/// The benchmark's figures.
#[derive(Debug, serde::Serialize)]
pub struct PolicyReport {
    /// TPC-H scale factor.
    pub scale: f64,
    /// Timed runs per query and user.
    pub iterations: usize,
    /// The machine.
    pub machine: String,
    /// Per query.
    pub queries: Vec<PolicyQuery>,
    /// Sum of the plain medians.
    pub plain_total_ms: f64,
    /// Sum of the filtered medians.
    pub filtered_total_ms: f64,
    /// `filtered / plain - 1` of the totals.
    pub overhead: f64,
    /// Geometric mean of the per-query ratios, minus one.
    pub geometric_overhead: f64,
}

/// Runs every TPC-H query of `dataset` as both users, `iterations` times each after a
/// warm-up whose answers must agree, interleaved so machine noise hits both alike.
pub async fn policy_overhead(
    dataset: &Dataset,
    scale: f64,
    work_dir: &std::path::Path,
    threads: usize,
    iterations: usize,
) -> Result<PolicyReport> {
    let data_dir = work_dir.join("policy");
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)?;
    }
    std::fs::create_dir_all(&data_dir)?;
    let executors = 2;
    let cluster = LocalCluster::start(&data_dir, executors, (threads / executors).max(1), None)?;
    let mut admin = SqlClient::connect(cluster.addr, "admin", OSPREY_PASSWORD)
        .await
        .context("cannot log in to osprey local")?;
    for (table, dir) in &dataset.tables {
        admin
            .query(&format!(
                "CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{}/'",
                dir.display()
            ))
            .await
            .with_context(|| format!("cannot register {table}"))?;
    }
    for sql in [
        "CREATE ROLE plain".to_string(),
        "CREATE ROLE filtered".to_string(),
        format!("CREATE USER plain PASSWORD '{USER_PASSWORD}'"),
        format!("CREATE USER filtered PASSWORD '{USER_PASSWORD}'"),
        "GRANT plain TO USER plain".to_string(),
        "GRANT filtered TO USER filtered".to_string(),
        "GRANT SELECT ON SCHEMA bench TO ROLE plain".to_string(),
        "GRANT SELECT ON SCHEMA bench TO ROLE filtered".to_string(),
        // q15 makes a view.
        "GRANT CREATE ON SCHEMA bench TO ROLE plain".to_string(),
        "GRANT CREATE ON SCHEMA bench TO ROLE filtered".to_string(),
        "CREATE ROW FILTER all_rows ON lineitem FOR ROLE filtered USING (l_quantity >= 0)"
            .to_string(),
        "CREATE COLUMN MASK mode ON lineitem (l_shipmode) FOR ROLE filtered \
         USING (upper(l_shipmode))"
            .to_string(),
        "CREATE COLUMN MASK comment ON lineitem (l_comment) FOR ROLE filtered \
         USING (substr(l_comment, 1, 44))"
            .to_string(),
    ] {
        admin
            .query(&sql)
            .await
            .with_context(|| format!("cannot run {sql}"))?;
    }
    let mut plain = SqlClient::connect(cluster.addr, "plain", USER_PASSWORD).await?;
    let mut filtered = SqlClient::connect(cluster.addr, "filtered", USER_PASSWORD).await?;
    let mut queries = Vec::new();
    for query in 1..=Suite::Tpch.query_count() {
        let statements = suite::statements(Suite::Tpch, query)?;
        let plain_answer = Answer::from_batches(&plain.last_result(&statements).await?);
        let filtered_answer = Answer::from_batches(&filtered.last_result(&statements).await?);
        if let Err(difference) = plain_answer.compare(&filtered_answer) {
            bail!("q{query}: the filtered user got another answer: {difference}");
        }
        let (mut plain_runs, mut filtered_runs) = (Vec::new(), Vec::new());
        for _ in 0..iterations {
            plain_runs.push(timed(&mut plain, &statements).await?);
            filtered_runs.push(timed(&mut filtered, &statements).await?);
        }
        let figures = PolicyQuery {
            query,
            plain_ms: median_ms(plain_runs),
            filtered_ms: median_ms(filtered_runs),
        };
        eprintln!(
            "q{query:>2}: plain {:>9.1} ms, filtered {:>9.1} ms ({:+.1}%)",
            figures.plain_ms,
            figures.filtered_ms,
            (figures.filtered_ms / figures.plain_ms - 1.0) * 100.0
        );
        queries.push(figures);
    }
    drop((admin, plain, filtered));
    cluster.stop();
    let plain_total_ms: f64 = queries.iter().map(|q| q.plain_ms).sum();
    let filtered_total_ms: f64 = queries.iter().map(|q| q.filtered_ms).sum();
    let geometric = geometric_mean(queries.iter().map(|q| q.filtered_ms / q.plain_ms));
    Ok(PolicyReport {
        scale,
        iterations,
        machine: machine_description(),
        overhead: filtered_total_ms / plain_total_ms - 1.0,
        geometric_overhead: geometric.map_or(f64::NAN, |g| g - 1.0),
        queries,
        plain_total_ms,
        filtered_total_ms,
    })
}

async fn timed(client: &mut SqlClient, statements: &[String]) -> Result<Duration> {
    let started = Instant::now();
    client.last_result(statements).await?;
    Ok(started.elapsed())
}

fn median_ms(mut runs: Vec<Duration>) -> f64 {
    runs.sort();
    runs.get(runs.len() / 2)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

impl PolicyReport {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Row filters and masks: TPC-H SF{} overhead\n\n{}\n\nTwo users of one `osprey \
             local` (2 executors); `filtered` reads `lineitem` under a row filter and two \
             masks that keep every row and value. Medians of {} runs.\n\n\
             | query | plain (ms) | filtered (ms) | overhead |\n|---|---:|---:|---:|\n",
            self.scale, self.machine, self.iterations
        );
        for q in &self.queries {
            out.push_str(&format!(
                "| q{} | {:.1} | {:.1} | {:+.1}% |\n",
                q.query,
                q.plain_ms,
                q.filtered_ms,
                (q.filtered_ms / q.plain_ms - 1.0) * 100.0
            ));
        }
        out.push_str(&format!(
            "| **total** | {:.1} | {:.1} | {:+.1}% |\n\nGeometric mean of per-query ratios: \
             {:+.1}%.\n\nGoal: at most {:.0}% over the plain total: **{}**.\n",
            self.plain_total_ms,
            self.filtered_total_ms,
            self.overhead * 100.0,
            self.geometric_overhead * 100.0,
            GOAL * 100.0,
            if self.overhead <= GOAL {
                "met"
            } else {
                "not met"
            }
        ));
        out
    }
}

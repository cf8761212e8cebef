//! Figures of a suite run, their summaries, and the JSON, Markdown and SVG renderings.

use crate::engines::ExchangeBytes;
use serde::Serialize;
use std::fmt::Write as _;

/// How one query went on one engine.
#[derive(Debug, Clone, Serialize)]
pub struct QueryFigures {
    /// Query number.
    pub query: usize,
    /// `ok`, `wrong` (an answer that differs from the reference) or `failed`.
    pub status: Status,
    /// Why it failed, or how the answer differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Every timed run (after the warm-up), milliseconds.
    pub runs_ms: Vec<f64>,
    /// Median of the runs.
    pub median_ms: Option<f64>,
    /// Fastest run.
    pub min_ms: Option<f64>,
    /// Slowest run.
    pub max_ms: Option<f64>,
    /// Bytes moved between Osprey's processes (Osprey only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange: Option<ExchangeBytes>,
}

/// Outcome of one query on one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Ran, and the answer matches the reference (or there is no reference).
    Ok,
    /// Ran, but the answer differs from the reference engine's.
    Wrong,
    /// Errored or timed out.
    Failed,
}

impl QueryFigures {
    /// Figures from the timed runs.
    pub fn from_runs(query: usize, runs_ms: Vec<f64>) -> Self {
        let mut sorted = runs_ms.clone();
        sorted.sort_by(f64::total_cmp);
        Self {
            query,
            status: Status::Ok,
            detail: None,
            median_ms: median(&sorted),
            min_ms: sorted.first().copied(),
            max_ms: sorted.last().copied(),
            runs_ms,
            exchange: None,
        }
    }

    /// A failed query.
    pub fn failed(query: usize, error: String) -> Self {
        Self {
            query,
            status: Status::Failed,
            detail: Some(error),
            runs_ms: vec![],
            median_ms: None,
            min_ms: None,
            max_ms: None,
            exchange: None,
        }
    }
}

fn median(sorted: &[f64]) -> Option<f64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// One engine's part of a run.
#[derive(Debug, Clone, Serialize)]
pub struct EngineFigures {
    /// Engine name as given on the command line (`osprey-2`, `duckdb`, ...).
    pub engine: String,
    /// Version and shape, when it ran.
    pub version: Option<String>,
    /// Why it did not run.
    pub skipped: Option<String>,
    /// Peak resident memory of the engine's processes together, bytes (for DataFusion, the
    /// benchmark process it runs in).
    pub peak_memory_bytes: Option<u64>,
    /// Per query.
    pub queries: Vec<QueryFigures>,
}

impl EngineFigures {
    fn query(&self, query: usize) -> Option<&QueryFigures> {
        self.queries.iter().find(|q| q.query == query)
    }

    fn count(&self, status: Status) -> usize {
        self.queries.iter().filter(|q| q.status == status).count()
    }
}

/// Per-engine totals over the queries every engine ran.
#[derive(Debug, Clone, Serialize)]
pub struct EngineSummary {
    /// Engine name.
    pub engine: String,
    /// Queries with the reference answer.
    pub ok: usize,
    /// Queries with a different answer.
    pub wrong: usize,
    /// Queries that errored or timed out.
    pub failed: usize,
    /// Sum of medians over the common queries, milliseconds.
    pub total_ms: f64,
    /// Geometric mean of medians over the common queries, milliseconds.
    pub geomean_ms: f64,
    /// `total_ms` divided by DataFusion's.
    pub total_vs_datafusion: Option<f64>,
    /// Geometric mean of per-query ratios to DataFusion.
    pub geomean_ratio_vs_datafusion: Option<f64>,
    /// `total_ms` divided by DuckDB's.
    pub total_vs_duckdb: Option<f64>,
    /// Geometric mean of per-query ratios to DuckDB.
    pub geomean_ratio_vs_duckdb: Option<f64>,
    /// Bytes Osprey moved between executors over the common queries (Osprey only).
    pub exchanged_between_executors: Option<u64>,
    /// Bytes Osprey moved from executors to the coordinator (Osprey only).
    pub exchanged_to_coordinator: Option<u64>,
    /// Peak resident memory, bytes.
    pub peak_memory_bytes: Option<u64>,
}

/// A goal from the issue, with what this run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// What the goal says.
    pub goal: String,
    /// What was measured, in words.
    pub measured: String,
    /// Met, missed, or not measured (None).
    pub met: Option<bool>,
}

impl Goal {
    /// One line for terminals and Markdown.
    pub fn line(&self) -> String {
        let verdict = match self.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        format!("{}: **{verdict}** ({})", self.goal, self.measured)
    }
}

/// A whole suite run.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// `tpch` or `tpcds`.
    pub suite: crate::suite::Suite,
    /// Scale factor.
    pub scale: f64,
    /// CPU threads each engine had.
    pub threads: usize,
    /// CPUs everything was pinned to.
    pub cpus: Vec<usize>,
    /// Timed runs per query after one warm-up.
    pub iterations: usize,
    /// The engine whose answers are the reference.
    pub reference: Option<String>,
    /// Machine description.
    pub machine: String,
    /// Unix time the run started.
    pub started_unix: u64,
    /// Per engine figures.
    pub engines: Vec<EngineFigures>,
    /// Queries every engine that ran completed (the set totals are over).
    pub common_queries: Vec<usize>,
    /// Per engine summaries.
    pub summaries: Vec<EngineSummary>,
    /// Goals, as measured by this run.
    pub goals: Vec<Goal>,
}

/// Geometric mean; `None` for no values.
pub fn geometric_mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values
        .into_iter()
        .fold((0.0, 0usize), |(sum, n), v| (sum + v.ln(), n + 1));
    (count > 0).then(|| (sum / count as f64).exp())
}

impl SuiteReport {
    /// Computes the summaries and goals from the per-engine figures.
    pub fn summarize(&mut self) {
        let ran: Vec<&EngineFigures> = self
            .engines
            .iter()
            .filter(|e| e.skipped.is_none())
            .collect();
        let queries: Vec<usize> = ran
            .first()
            .map(|e| e.queries.iter().map(|q| q.query).collect())
            .unwrap_or_default();
        self.common_queries = queries
            .into_iter()
            .filter(|&query| {
                ran.iter().all(|e| {
                    e.query(query)
                        .is_some_and(|q| q.status != Status::Failed && q.median_ms.is_some())
                })
            })
            .collect();
        let medians = |engine: &EngineFigures| -> Vec<f64> {
            self.common_queries
                .iter()
                .filter_map(|&q| engine.query(q).and_then(|f| f.median_ms))
                .collect()
        };
        let peer = |name: &str| ran.iter().find(|e| e.engine == name).map(|e| medians(e));
        let datafusion = peer("datafusion");
        let duckdb = peer("duckdb");
        let ratios = |mine: &[f64], theirs: &Option<Vec<f64>>| -> (Option<f64>, Option<f64>) {
            match theirs {
                Some(theirs) if !mine.is_empty() => (
                    Some(mine.iter().sum::<f64>() / theirs.iter().sum::<f64>()),
                    geometric_mean(mine.iter().zip(theirs).map(|(m, t)| m / t)),
                ),
                _ => (None, None),
            }
        };
        self.summaries = ran
            .iter()
            .map(|engine| {
                let mine = medians(engine);
                let (total_vs_datafusion, geomean_ratio_vs_datafusion) = ratios(&mine, &datafusion);
                let (total_vs_duckdb, geomean_ratio_vs_duckdb) = ratios(&mine, &duckdb);
                let exchanges: Vec<ExchangeBytes> = self
                    .common_queries
                    .iter()
                    .filter_map(|&q| engine.query(q).and_then(|f| f.exchange))
                    .collect();
                EngineSummary {
                    engine: engine.engine.clone(),
                    ok: engine.count(Status::Ok),
                    wrong: engine.count(Status::Wrong),
                    failed: engine.count(Status::Failed),
                    total_ms: mine.iter().sum(),
                    geomean_ms: geometric_mean(mine.iter().copied()).unwrap_or(0.0),
                    total_vs_datafusion,
                    geomean_ratio_vs_datafusion,
                    total_vs_duckdb,
                    geomean_ratio_vs_duckdb,
                    exchanged_between_executors: (!exchanges.is_empty())
                        .then(|| exchanges.iter().map(|e| e.between_executors).sum()),
                    exchanged_to_coordinator: (!exchanges.is_empty())
                        .then(|| exchanges.iter().map(|e| e.to_coordinator).sum()),
                    peak_memory_bytes: engine.peak_memory_bytes,
                }
            })
            .collect();
        self.goals = self.goals();
    }

    fn goals(&self) -> Vec<Goal> {
        let mut goals = Vec::new();
        let summary = |name: &str| self.summaries.iter().find(|s| s.engine == name);
        if self.suite == crate::suite::Suite::Tpch {
            let goal = "TPC-H SF10 total with 2 executors at most 1.15x single-process DataFusion"
                .to_string();
            goals.push(
                match summary("osprey-2").and_then(|s| s.total_vs_datafusion) {
                    Some(ratio) if self.scale == 10.0 => Goal {
                        goal,
                        measured: format!("{ratio:.2}x at SF10"),
                        met: Some(ratio <= 1.15),
                    },
                    Some(ratio) => Goal {
                        goal,
                        measured: format!("{ratio:.2}x at SF{} (run SF10 to judge)", self.scale),
                        met: None,
                    },
                    None => Goal {
                        goal,
                        measured: "needs engines osprey-2 and datafusion".to_string(),
                        met: None,
                    },
                },
            );
        }
        let goal = format!("Faster than Ballista 55 on {}", self.suite.title());
        let ballista = self.engines.iter().find(|e| e.engine == "ballista");
        goals.push(match (ballista, summary("ballista"), summary("osprey-2")) {
            (Some(b), _, _) if b.skipped.is_some() => Goal {
                goal,
                measured: format!("Ballista skipped: {}", b.skipped.as_deref().unwrap_or("")),
                met: None,
            },
            (_, Some(b), Some(o)) => Goal {
                goal,
                measured: format!(
                    "osprey-2 {:.0} ms vs ballista {:.0} ms",
                    o.total_ms, b.total_ms
                ),
                met: Some(o.total_ms < b.total_ms),
            },
            _ => Goal {
                goal,
                measured: "needs engines osprey-2 and ballista".to_string(),
                met: None,
            },
        });
        goals
    }

    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let ran: Vec<&EngineFigures> = self
            .engines
            .iter()
            .filter(|e| e.skipped.is_none())
            .collect();
        let _ = writeln!(
            out,
            "## {} SF{}: {} threads per engine, pinned to CPUs {:?}\n",
            self.suite.title(),
            self.scale,
            self.threads,
            self.cpus
        );
        let _ = writeln!(out, "Machine: {}\n", self.machine);
        for engine in &self.engines {
            match (&engine.version, &engine.skipped) {
                (_, Some(reason)) => {
                    let _ = writeln!(out, "- **{}**: skipped: {reason}", engine.engine);
                }
                (Some(version), None) => {
                    let _ = writeln!(out, "- **{}**: {version}", engine.engine);
                }
                (None, None) => {}
            }
        }
        let _ = writeln!(
            out,
            "\nMedian of {} runs after one warm-up, milliseconds, with (min-max). Answers are \
             checked against {} (rounded, order-insensitive): `WRONG` marks a different answer, \
             `FAILED` an error or timeout.\n",
            self.iterations,
            self.reference
                .as_deref()
                .unwrap_or("nothing (no reference engine ran)")
        );

        // Summary.
        let _ = writeln!(
            out,
            "Totals over the {} queries that every engine completed:\n",
            self.common_queries.len()
        );
        let _ = writeln!(
            out,
            "| engine | ok | wrong | failed | total ms | geomean ms | total vs DataFusion | \
             geomean ratio vs DataFusion | total vs DuckDB | geomean ratio vs DuckDB | \
             exchanged between executors | to coordinator | peak memory |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for s in &self.summaries {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} | {:.1} | {} | {} | {} | {} | {} | {} | {} |",
                s.engine,
                s.ok,
                s.wrong,
                s.failed,
                s.total_ms,
                s.geomean_ms,
                ratio(s.total_vs_datafusion),
                ratio(s.geomean_ratio_vs_datafusion),
                ratio(s.total_vs_duckdb),
                ratio(s.geomean_ratio_vs_duckdb),
                bytes(s.exchanged_between_executors),
                bytes(s.exchanged_to_coordinator),
                bytes(s.peak_memory_bytes),
            );
        }
        let _ = writeln!(out, "\nGoals:\n");
        for goal in &self.goals {
            let _ = writeln!(out, "- {}", goal.line());
        }

        // Per query.
        let _ = write!(out, "\n| query |");
        for engine in &ran {
            let _ = write!(out, " {} |", engine.engine);
        }
        let osprey: Vec<&&EngineFigures> = ran
            .iter()
            .filter(|e| e.engine.starts_with("osprey-"))
            .collect();
        for engine in &osprey {
            let _ = write!(out, " {} exchanged |", engine.engine);
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "|---|{}{}",
            "---:|".repeat(ran.len()),
            "---:|".repeat(osprey.len())
        );
        let queries: Vec<usize> = ran
            .first()
            .map(|e| e.queries.iter().map(|q| q.query).collect())
            .unwrap_or_default();
        for query in queries {
            let _ = write!(out, "| q{query} |");
            for engine in &ran {
                let cell = match engine.query(query) {
                    Some(f) => match (f.status, f.median_ms, f.min_ms, f.max_ms) {
                        (Status::Failed, ..) => "FAILED".to_string(),
                        (status, Some(median), Some(min), Some(max)) => format!(
                            "{median:.1} ({min:.0}-{max:.0}){}",
                            if status == Status::Wrong {
                                " WRONG"
                            } else {
                                ""
                            }
                        ),
                        _ => "-".to_string(),
                    },
                    None => "-".to_string(),
                };
                let _ = write!(out, " {cell} |");
            }
            for engine in &osprey {
                let exchanged = engine
                    .query(query)
                    .and_then(|f| f.exchange)
                    .map(|e| e.between_executors);
                let _ = write!(out, " {} |", bytes(exchanged));
            }
            let _ = writeln!(out);
        }

        let problems: Vec<(&str, &QueryFigures)> = ran
            .iter()
            .flat_map(|e| {
                e.queries
                    .iter()
                    .filter(|q| q.status != Status::Ok)
                    .map(|q| (e.engine.as_str(), q))
            })
            .collect();
        if !problems.is_empty() {
            let _ = writeln!(out, "\nFailures and wrong answers:\n");
            for (engine, q) in problems {
                let detail = q.detail.as_deref().unwrap_or("").replace('\n', " ");
                let detail: String = detail.chars().take(300).collect();
                let _ = writeln!(out, "- {engine} q{}: {detail}", q.query);
            }
        }
        out
    }

    /// An SVG chart of per-query time ratios to DataFusion, one bar per engine, log scale.
    ///
    /// Written by hand rather than with a plotting crate: one fixed chart, plain SVG text, and
    /// no font or rendering dependencies for the build.
    pub fn svg(&self) -> String {
        let baseline = self
            .engines
            .iter()
            .find(|e| e.engine == "datafusion" && e.skipped.is_none());
        let others: Vec<&EngineFigures> = self
            .engines
            .iter()
            .filter(|e| e.skipped.is_none() && e.engine != "datafusion")
            .collect();
        let colors = [
            "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
        ];
        let queries: Vec<usize> = baseline
            .map(|b| b.queries.iter().map(|q| q.query).collect())
            .unwrap_or_default();
        let bar = 7.0;
        let group = bar * others.len().max(1) as f64 + 6.0;
        let (left, top, width) = (60.0, 50.0, 600.0);
        let height = top + group * queries.len() as f64 + 40.0;
        // log2 scale from 1/8x to 8x, 1x in the middle.
        let x =
            |ratio: f64| left + width / 2.0 + ratio.clamp(0.125, 8.0).log2() / 3.0 * width / 2.0;
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="11">"#,
            left + width + 160.0
        );
        let _ = writeln!(
            svg,
            r#"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="20" font-size="14">{} SF{}: query time relative to single-process DataFusion (log scale; left of 1x is faster)</text>"#,
            self.suite.title(),
            self.scale
        );
        for (label, ratio) in [
            ("1/8x", 0.125),
            ("1/4x", 0.25),
            ("1/2x", 0.5),
            ("1x", 1.0),
            ("2x", 2.0),
            ("4x", 4.0),
            ("8x", 8.0),
        ] {
            let xpos = x(ratio);
            let stroke = if ratio == 1.0 { "#000" } else { "#ddd" };
            let _ = writeln!(
                svg,
                r#"<line x1="{xpos:.1}" y1="{}" x2="{xpos:.1}" y2="{}" stroke="{stroke}"/><text x="{xpos:.1}" y="{}" text-anchor="middle">{label}</text>"#,
                top - 5.0,
                height - 30.0,
                height - 15.0
            );
        }
        for (row, query) in queries.iter().enumerate() {
            let y0 = top + group * row as f64;
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{:.1}" text-anchor="end">q{query}</text>"#,
                left - 6.0,
                y0 + group / 2.0 + 3.0
            );
            let base = baseline
                .and_then(|b| b.query(*query))
                .and_then(|f| f.median_ms);
            for (i, engine) in others.iter().enumerate() {
                let mine = engine.query(*query).and_then(|f| f.median_ms);
                let y = y0 + 3.0 + bar * i as f64;
                match (mine, base) {
                    (Some(mine), Some(base)) if base > 0.0 => {
                        let (x1, x2) = (x(1.0), x(mine / base));
                        let _ = writeln!(
                            svg,
                            r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} q{query}: {:.2}x</title></rect>"#,
                            x1.min(x2),
                            (x2 - x1).abs().max(1.0),
                            bar - 1.0,
                            colors[i % colors.len()],
                            engine.engine,
                            mine / base
                        );
                    }
                    _ => {
                        let _ = writeln!(
                            svg,
                            r#"<text x="{:.1}" y="{:.1}" fill="{}" font-size="8">failed</text>"#,
                            x(1.0) + 3.0,
                            y + bar - 1.0,
                            colors[i % colors.len()]
                        );
                    }
                }
            }
        }
        for (i, engine) in others.iter().enumerate() {
            let y = top + 16.0 * i as f64;
            let _ = writeln!(
                svg,
                r#"<rect x="{}" y="{y}" width="12" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
                left + width + 20.0,
                colors[i % colors.len()],
                left + width + 38.0,
                y + 9.0,
                engine.engine
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

fn ratio(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.2}x"))
}

/// Bytes in binary units, or `-`.
pub fn bytes(value: Option<u64>) -> String {
    match value {
        None => "-".to_string(),
        Some(b) if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        Some(b) if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        Some(b) => format!("{b} B"),
    }
}

/// CPU model, core count, memory and kernel of this machine.
pub fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']))
        })
        .unwrap_or("unknown CPU")
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cores} cores available, {:.1} GiB memory, Linux {}",
        memory_kib as f64 / (1 << 20) as f64,
        kernel.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Suite;

    fn engine(name: &str, medians: &[Option<f64>]) -> EngineFigures {
        EngineFigures {
            engine: name.to_string(),
            version: Some(name.to_string()),
            skipped: None,
            peak_memory_bytes: Some(1 << 20),
            queries: medians
                .iter()
                .enumerate()
                .map(|(i, m)| match m {
                    Some(ms) => QueryFigures::from_runs(i + 1, vec![*ms, *ms + 2.0, *ms - 1.0]),
                    None => QueryFigures::failed(i + 1, "boom".to_string()),
                })
                .collect(),
        }
    }

    #[test]
    fn totals_cover_the_queries_every_engine_completed() {
        let mut report = SuiteReport {
            suite: Suite::Tpch,
            scale: 1.0,
            threads: 2,
            cpus: vec![0, 1],
            iterations: 3,
            reference: Some("duckdb".to_string()),
            machine: machine_description(),
            started_unix: 0,
            engines: vec![
                engine("osprey-2", &[Some(20.0), Some(30.0), None]),
                engine("datafusion", &[Some(10.0), Some(30.0), Some(5.0)]),
                engine("duckdb", &[Some(10.0), Some(10.0), Some(5.0)]),
                EngineFigures {
                    engine: "ballista".to_string(),
                    version: None,
                    skipped: Some("not installed".to_string()),
                    peak_memory_bytes: None,
                    queries: vec![],
                },
            ],
            common_queries: vec![],
            summaries: vec![],
            goals: vec![],
        };
        report.summarize();
        assert_eq!(report.common_queries, vec![1, 2]);
        let osprey = &report.summaries[0];
        assert_eq!((osprey.ok, osprey.failed), (2, 1));
        assert_eq!(osprey.total_ms, 50.0);
        assert_eq!(osprey.total_vs_datafusion, Some(50.0 / 40.0));
        let geo = osprey.geomean_ratio_vs_datafusion.unwrap();
        assert!((geo - 2f64.sqrt()).abs() < 1e-9);
        assert_eq!(osprey.total_vs_duckdb, Some(50.0 / 20.0));
        // SF1 cannot judge the SF10 goal; a skipped Ballista cannot be compared.
        assert!(report.goals.iter().all(|g| g.met.is_none()));
        let markdown = report.markdown();
        assert!(markdown.contains("ballista**: skipped: not installed"));
        assert!(markdown.contains("| q3 | FAILED |"));
        let svg = report.svg();
        assert!(svg.starts_with("<svg") && svg.contains("osprey-2 q1: 2.00x"));
    }

    #[test]
    fn median_of_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[1.0, 2.0, 4.0, 10.0]), Some(3.0));
        assert_eq!(median(&[]), None);
    }
}

//! The report: a Markdown table on stdout and the same figures as JSON in `target/bench/`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::amplification::Amplification;
use crate::pgbench::Baseline;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub connections: usize,
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: BTreeMap<String, u64>,
    /// Which pgbench figure this is compared with, its requests per second, and the ratio.
    pub baseline: Option<String>,
    pub baseline_per_second: Option<f64>,
    pub ratio: Option<f64>,
    /// For writes, also pgbench's INSERT into a plain table (primary key only): the physical limit.
    #[serde(default)]
    pub plain_baseline_per_second: Option<f64>,
    #[serde(default)]
    pub plain_ratio: Option<f64>,
    pub web_peak_rss_mib: u64,
    pub worker_peak_rss_mib: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub mode: String,
    pub profile: String,
    pub cores: usize,
    pub commit: String,
    pub seeded_users: usize,
    pub seeded_tasks: usize,
    pub scenarios: Vec<Scenario>,
    /// Free-form findings that are not request rates (reminder lateness, bulk against singles).
    pub notes: BTreeMap<String, String>,
    /// Every pgbench baseline of the run: `insert` (the real `tasks`), `plain_insert` (a table with
    /// `tasks`' columns and only a primary key), `plain_insert_with_notify`, `pk_select`.
    #[serde(default)]
    pub baselines: BTreeMap<String, Baseline>,
    #[serde(default)]
    pub write_amplification: Option<Amplification>,
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## todo-bench ({} mode, {} build, {} cores, commit {})\n\nSeeded {} users and {} tasks.\n\n",
            self.mode, self.profile, self.cores, self.commit, self.seeded_users, self.seeded_tasks
        );
        out.push_str("| scenario | conns | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | baseline | ratio | ratio to plain INSERT | web RSS MiB | worker RSS MiB |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|\n");
        for s in &self.scenarios {
            let errors = match s.errors.is_empty() {
                true => "0".to_owned(),
                false => s.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "),
            };
            let baseline = match (&s.baseline, s.baseline_per_second) {
                (Some(name), Some(rate)) => format!("{name} {rate:.0}/s"),
                _ => "–".to_owned(),
            };
            let ratio = s.ratio.map_or("–".to_owned(), |r| format!("{r:.2}×"));
            let plain = match (s.plain_baseline_per_second, s.plain_ratio) {
                (Some(rate), Some(r)) => format!("{r:.2}× of {rate:.0}/s"),
                _ => "–".to_owned(),
            };
            out.push_str(&format!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {errors} | {baseline} | {ratio} | {plain} | {} | {} |\n",
                s.name, s.connections, s.per_second, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms, s.web_peak_rss_mib,
                s.worker_peak_rss_mib
            ));
        }
        if let Some(amplification) = &self.write_amplification {
            out.push_str(&amplification.markdown());
        }
        for (name, note) in &self.notes {
            out.push_str(&format!("\n- **{name}:** {note}"));
        }
        out.push('\n');
        out
    }

    /// Writes `report.json` (and a copy named by mode) and reads it back, so a report that does
    /// not parse fails the run.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_string_pretty(self)?;
        for name in ["report.json".to_owned(), format!("report-{}.json", self.mode)] {
            let path = dir.join(name);
            std::fs::write(&path, &text)?;
            let back: Report = serde_json::from_str(&std::fs::read_to_string(&path)?)
                .with_context(|| format!("{} does not parse", path.display()))?;
            anyhow::ensure!(
                back.scenarios.len() == self.scenarios.len(),
                "{} lost scenarios",
                path.display()
            );
        }
        Ok(())
    }
}

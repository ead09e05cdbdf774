//! `bae plot`: charts of the tables bae writes. The kind of table comes from its
//! `format` metadata; each has a default chart and alternatives.

pub mod chart;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use arrow::array::{Array, Float64Array, StringArray, UInt32Array};
use arrow::datatypes::DataType;
use bae_lm::HookPoint;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub use chart::{draw, LineChart, Series, SeriesStyle};

use crate::error::{DynamicsError, Result};
use crate::tables;

/// What to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotKind {
    /// Entropy table: entropy against depth, one line per bucket of token positions.
    EntropyByLayer,
    /// Entropy table: entropy against token position, one line per hook point.
    EntropyByPosition,
    /// ICL table: entropy at the last prompt token against k, one line per hook point.
    EntropyByDemos,
    /// ICL table: accuracy and label log-probability against k.
    AccuracyByDemos,
    /// Training log: FVU, entropy and L0 against epoch, train and validation.
    Training,
}

impl PlotKind {
    /// The default chart of a table format.
    pub fn default_for(format: &str) -> Option<Self> {
        match format {
            tables::ENTROPY => Some(Self::EntropyByLayer),
            tables::ICL => Some(Self::EntropyByDemos),
            tables::TRAINING_LOG => Some(Self::Training),
            _ => None,
        }
    }

    /// The table format the chart reads.
    pub fn format(self) -> &'static str {
        match self {
            Self::EntropyByLayer | Self::EntropyByPosition => tables::ENTROPY,
            Self::EntropyByDemos | Self::AccuracyByDemos => tables::ICL,
            Self::Training => tables::TRAINING_LOG,
        }
    }
}

/// A table's columns as plain vectors (numbers as f64, nulls as NaN or None).
struct Table {
    numbers: BTreeMap<String, Vec<f64>>,
    strings: BTreeMap<String, Vec<Option<String>>>,
    rows: usize,
}

impl Table {
    fn read(path: &Path) -> Result<(String, Table)> {
        // arrow and parquet panic on some corrupt files; that is an error here.
        bae_lm::guard::catching(|| Self::read_unguarded(path)).unwrap_or_else(|| {
            Err(DynamicsError::Input(format!(
                "{}: not a readable Parquet file: it is corrupt",
                path.display()
            )))
        })
    }

    fn read_unguarded(path: &Path) -> Result<(String, Table)> {
        let bad = |m: String| DynamicsError::Input(format!("{}: {m}", path.display()));
        let file =
            File::open(path).map_err(|source| DynamicsError::Io { path: path.to_path_buf(), source })?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| bad(format!("not a Parquet file: {e}")))?;
        let format = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == "format").and_then(|k| k.value.clone()))
            .ok_or_else(|| bad("no `format` in the metadata: not a table written by bae".into()))?;
        let mut table = Table { numbers: BTreeMap::new(), strings: BTreeMap::new(), rows: 0 };
        for batch in builder.build().map_err(|e| bad(e.to_string()))? {
            let batch = batch.map_err(|e| bad(e.to_string()))?;
            table.rows += batch.num_rows();
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                let name = field.name().clone();
                match field.data_type() {
                    DataType::Utf8 => {
                        let a = column.as_any().downcast_ref::<StringArray>().expect("utf8");
                        let v = table.strings.entry(name).or_default();
                        v.extend((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i).to_string())));
                    }
                    DataType::Float64 => {
                        let a = column.as_any().downcast_ref::<Float64Array>().expect("f64");
                        let v = table.numbers.entry(name).or_default();
                        v.extend((0..a.len()).map(|i| if a.is_valid(i) { a.value(i) } else { f64::NAN }));
                    }
                    DataType::UInt32 => {
                        let a = column.as_any().downcast_ref::<UInt32Array>().expect("u32");
                        let v = table.numbers.entry(name).or_default();
                        v.extend(
                            (0..a.len()).map(|i| if a.is_valid(i) { a.value(i) as f64 } else { f64::NAN }),
                        );
                    }
                    DataType::UInt64 => {
                        let a = column.as_any().downcast_ref::<arrow::array::UInt64Array>().expect("u64");
                        let v = table.numbers.entry(name).or_default();
                        v.extend(
                            (0..a.len()).map(|i| if a.is_valid(i) { a.value(i) as f64 } else { f64::NAN }),
                        );
                    }
                    _ => {}
                }
            }
        }
        Ok((format, table))
    }

    fn number(&self, name: &str) -> Result<&[f64]> {
        self.numbers
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| DynamicsError::Input(format!("the table has no column `{name}`")))
    }

    /// Whether each row's hook fails its quality gate (tables without a `quality`
    /// column, written before gates existed, fail nothing).
    fn failing(&self) -> Vec<bool> {
        match self.strings.get("quality") {
            Some(q) => q.iter().map(|v| v.as_deref() == Some("fail")).collect(),
            None => vec![false; self.rows],
        }
    }

    /// The states each row pools (`states`; `samples` in tables written before it).
    fn states(&self) -> Result<&[f64]> {
        self.number("states").or_else(|_| self.number("samples"))
    }

    fn string(&self, name: &str) -> Result<&[Option<String>]> {
        self.strings
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| DynamicsError::Input(format!("the table has no column `{name}`")))
    }
}

/// Depth of a hook point in blocks: resid_pre of block l at l, its resid_mid at
/// l + 0.5, its resid_post at l + 1 (= the next block's resid_pre); the embedding at 0.
fn depth(hook: &str) -> Option<f64> {
    match hook.parse::<HookPoint>().ok()? {
        HookPoint::Embed => Some(0.0),
        HookPoint::ResidPre(l) => Some(l as f64),
        HookPoint::ResidMid(l) => Some(l as f64 + 0.5),
        HookPoint::ResidPost(l) => Some(l as f64 + 1.0),
        HookPoint::FinalNorm => None,
    }
}

/// Position buckets of the by-layer chart: [lo, hi] inclusive.
const BUCKETS: [(usize, usize); 6] = [(0, 0), (1, 3), (4, 15), (16, 63), (64, 255), (256, usize::MAX)];

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// One series per group, points (x, mean y) in x order.
fn grouped(rows: impl Iterator<Item = (String, f64, f64)>) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut acc: BTreeMap<String, BTreeMap<i64, (f64, Vec<f64>)>> = BTreeMap::new();
    for (group, x, y) in rows {
        let key = (x * 1000.0).round() as i64;
        acc.entry(group).or_default().entry(key).or_insert((x, Vec::new())).1.push(y);
    }
    acc.into_iter().map(|(g, pts)| (g, pts.into_values().map(|(x, ys)| (x, mean(&ys))).collect())).collect()
}

/// Position rows reached by enough prompts to mean something: at least a quarter of
/// the most-reached position's count, and at least 2 (one state always has 0 bits).
fn well_sampled(t: &Table) -> Result<Vec<bool>> {
    let (scopes, samples) = (t.string("scope")?, t.states()?);
    let is_position = |i: usize| scopes[i].as_deref() == Some("position");
    let most = (0..t.rows).filter(|&i| is_position(i)).map(|i| samples[i]).fold(0.0, f64::max);
    let floor = (most / 4.0).max(2.0);
    Ok((0..t.rows).map(|i| is_position(i) && samples[i] >= floor).collect())
}

fn by_layer(t: &Table) -> Result<Vec<LineChart>> {
    let (hooks, positions, bits) = (t.string("hook")?, t.number("position")?, t.number("entropy_bits")?);
    let keep = well_sampled(t)?;
    let failing = t.failing();
    let mut series = Vec::new();
    for &(lo, hi) in &BUCKETS {
        let rows = (0..t.rows).filter(|&i| keep[i] && !failing[i]).filter_map(|i| {
            let p = positions[i] as usize;
            let d = depth(hooks[i].as_deref()?)?;
            (lo..=hi).contains(&p).then(|| (String::new(), d, bits[i]))
        });
        if let Some(points) = grouped(rows).remove("") {
            let label = match (lo, hi) {
                (lo, hi) if lo == hi => format!("position {lo}"),
                (lo, usize::MAX) => format!("positions {lo}+"),
                (lo, hi) => format!("positions {lo}–{hi}"),
            };
            series.push(Series::new(label, points));
        }
    }
    // Failing hooks: their mean over positions 1+, grey, so the gap in a line is explained.
    let failed = (0..t.rows).filter(|&i| keep[i] && failing[i] && positions[i] >= 1.0).filter_map(|i| {
        let d = depth(hooks[i].as_deref()?)?;
        Some((String::new(), d, bits[i]))
    });
    for (_, points) in grouped(failed) {
        series.push(Series {
            label: "hooks failing their quality gate (positions 1+)".into(),
            points,
            style: SeriesStyle::Failing,
        });
    }
    Ok(vec![LineChart {
        title: "Feature-set entropy by depth (positions reached by ≥ 1/4 of the prompts)".into(),
        x_label: "depth (blocks; resid_post of block l at l + 1)".into(),
        y_label: "entropy (bits), mean over positions in bucket".into(),
        series,
    }])
}

fn hook_order(hook: &str) -> (i64, String) {
    ((depth(hook).unwrap_or(f64::MAX) * 10.0) as i64, hook.to_string())
}

/// One line per hook in depth order; hooks in `failing` grey and labelled so.
fn per_hook_series(groups: BTreeMap<String, Vec<(f64, f64)>>, failing: &[String]) -> Vec<Series> {
    let mut hooks: Vec<_> = groups.into_iter().collect();
    hooks.sort_by_key(|(h, _)| hook_order(h));
    hooks
        .into_iter()
        .map(|(hook, points)| match failing.contains(&hook) {
            true => Series { label: format!("{hook} (fails its gate)"), points, style: SeriesStyle::Failing },
            false => Series::new(hook, points),
        })
        .collect()
}

/// The hooks whose rows say they fail their gate.
fn failing_hooks(t: &Table) -> Result<Vec<String>> {
    let hooks = t.string("hook")?;
    let failing = t.failing();
    let mut out: Vec<String> = (0..t.rows).filter(|&i| failing[i]).filter_map(|i| hooks[i].clone()).collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// log2 of the states pooled at each x (the most bits that many samples can resolve),
/// from the rows `rows`, as a dashed bound.
fn resolution_bound(t: &Table, x: &[f64], rows: impl Iterator<Item = usize>) -> Result<Series> {
    let states = t.states()?;
    let mut by_x: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for i in rows {
        let bound = if states[i] > 1.0 { states[i].log2() } else { 0.0 };
        let e = by_x.entry((x[i] * 1000.0).round() as i64).or_insert((x[i], bound));
        e.1 = e.1.max(bound);
    }
    Ok(Series {
        label: "log2(states): the most bits the sample resolves".into(),
        points: by_x.into_values().collect(),
        style: SeriesStyle::Bound,
    })
}

fn by_position(t: &Table) -> Result<Vec<LineChart>> {
    let (hooks, positions, bits) = (t.string("hook")?, t.number("position")?, t.number("entropy_bits")?);
    let keep = well_sampled(t)?;
    let rows =
        (0..t.rows).filter(|&i| keep[i]).filter_map(|i| Some((hooks[i].clone()?, positions[i], bits[i])));
    let mut series = per_hook_series(grouped(rows), &failing_hooks(t)?);
    series.push(resolution_bound(t, positions, (0..t.rows).filter(|&i| keep[i]))?);
    Ok(vec![LineChart {
        title: "Feature-set entropy by token position (reached by ≥ 1/4 of the prompts)".into(),
        x_label: "token position".into(),
        y_label: "entropy (bits)".into(),
        series,
    }])
}

fn by_demos(t: &Table) -> Result<Vec<LineChart>> {
    let (hooks, scopes, demos, bits) =
        (t.string("hook")?, t.string("scope")?, t.number("demos")?, t.number("entropy_bits")?);
    let aggregate = |i: &usize| scopes[*i].as_deref() == Some("aggregate");
    let rows = (0..t.rows).filter(aggregate).filter_map(|i| Some((hooks[i].clone()?, demos[i], bits[i])));
    let mut series = per_hook_series(grouped(rows), &failing_hooks(t)?);
    series.push(resolution_bound(t, demos, (0..t.rows).filter(aggregate))?);
    Ok(vec![LineChart {
        title: "Entropy at the last prompt token by number of demonstrations".into(),
        x_label: "demonstrations (k)".into(),
        y_label: "entropy (bits)".into(),
        series,
    }])
}

fn accuracy(t: &Table) -> Result<Vec<LineChart>> {
    let (scopes, demos) = (t.string("scope")?, t.number("demos")?);
    let (acc, logprob) = (t.number("accuracy")?, t.number("label_logprob")?);
    let task = t.string("task")?.first().cloned().flatten().unwrap_or_default();
    let sample_rows = || (0..t.rows).filter(|&i| scopes[i].as_deref() == Some("sample"));
    let line = |v: &[f64]| -> Vec<Series> {
        grouped(sample_rows().map(|i| (task.clone(), demos[i], v[i])))
            .into_iter()
            .map(|(label, points)| Series::new(label, points))
            .collect()
    };
    Ok(vec![
        LineChart {
            title: "Accuracy by number of demonstrations".into(),
            x_label: "demonstrations (k)".into(),
            y_label: "accuracy (first label token is the top prediction)".into(),
            series: line(acc),
        },
        LineChart {
            title: "Label log-probability by number of demonstrations".into(),
            x_label: "demonstrations (k)".into(),
            y_label: "mean log P(label | prompt) (nats)".into(),
            series: line(logprob),
        },
    ])
}

fn training(t: &Table) -> Result<Vec<LineChart>> {
    let (split, epoch) = (t.string("split")?, t.number("epoch")?);
    let panel = |column: &str, title: &str, y: &str| -> Result<LineChart> {
        let values = t.number(column)?;
        let groups = grouped((0..t.rows).filter_map(|i| Some((split[i].clone()?, epoch[i], values[i]))));
        Ok(LineChart {
            title: title.into(),
            x_label: "epoch".into(),
            y_label: y.into(),
            series: groups.into_iter().map(|(label, points)| Series::new(label, points)).collect(),
        })
    };
    Ok(vec![
        panel("fvu", "Fraction of variance unexplained", "FVU")?,
        panel("entropy_bits", "Feature-set entropy of the codes", "entropy (bits)")?,
        panel("l0", "L0", "active features per row")?,
    ])
}

/// Reads `table` and draws `kind` (default: the table's default chart) to `out`.
pub fn plot(table: &Path, kind: Option<PlotKind>, out: &Path) -> Result<PlotKind> {
    let (format, t) = Table::read(table)?;
    let kind = match kind.or_else(|| PlotKind::default_for(&format)) {
        Some(k) => k,
        None => {
            return Err(DynamicsError::Input(format!(
                "{}: no chart for tables of format {format}",
                table.display()
            )))
        }
    };
    if kind.format() != format {
        return Err(DynamicsError::Input(format!(
            "{}: a {format} table; this chart needs a {} table",
            table.display(),
            kind.format()
        )));
    }
    if t.rows == 0 {
        return Err(DynamicsError::Input(format!("{}: the table has no rows", table.display())));
    }
    let charts = match kind {
        PlotKind::EntropyByLayer => by_layer(&t),
        PlotKind::EntropyByPosition => by_position(&t),
        PlotKind::EntropyByDemos => by_demos(&t),
        PlotKind::AccuracyByDemos => accuracy(&t),
        PlotKind::Training => training(&t),
    }
    .map_err(|e| match e {
        // Column errors do not know the file they came from.
        DynamicsError::Input(message) => DynamicsError::Input(format!("{}: {message}", table.display())),
        other => other,
    })?;
    draw(&charts, out)?;
    Ok(kind)
}

//! The quality gate beside every measurement (DESIGN.md §9): a number read through an
//! autoencoder is only as good as the autoencoder. Each hook's gate carries the
//! autoencoder's validation FVU (on non-sink rows when the store left sinks out), its
//! dead and constant features and its training rows, and passes when the FVU is at
//! most `max_fvu`. Tables carry the gate in every row; plots grey failing hooks.

use serde::Serialize;

use super::autoencoders::HookAutoencoder;

/// The documented default of `max_fvu`: an autoencoder that leaves more than half of
/// the variance unexplained is not a description of the hook's states.
pub const DEFAULT_MAX_FVU: f64 = 0.5;

/// Whether a hook's autoencoder passes its gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Validation FVU at most `max_fvu`.
    Pass,
    /// Validation FVU above `max_fvu`: the hook's numbers are not measurements.
    Fail,
    /// The autoencoder's cfg.json records no quality (trained by an older version).
    Unknown,
}

impl Verdict {
    /// The table spelling.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Unknown => "unknown",
        }
    }
}

/// One hook's gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookGate {
    /// Hook point name.
    pub hook: String,
    /// Validation FVU of its autoencoder (None when unrecorded).
    pub val_fvu: Option<f64>,
    /// Features that never fired on the validation rows.
    pub dead: Option<usize>,
    /// Features with one value on every validation row.
    pub constant: Option<usize>,
    /// Rows it trained on.
    pub train_rows: Option<u64>,
    /// The threshold applied.
    pub max_fvu: f64,
    /// Pass, fail or unknown.
    pub verdict: Verdict,
}

impl HookGate {
    /// The gate of `bae` at threshold `max_fvu`.
    pub fn of(bae: &HookAutoencoder, max_fvu: f64) -> Self {
        let q = bae.quality.as_ref();
        let verdict = match q {
            Some(q) if q.val_fvu <= max_fvu => Verdict::Pass,
            Some(_) => Verdict::Fail,
            None => Verdict::Unknown,
        };
        Self {
            hook: bae.hook.to_string(),
            val_fvu: q.map(|q| q.val_fvu),
            dead: q.map(|q| q.dead),
            constant: q.map(|q| q.constant),
            train_rows: q.map(|q| q.train_rows),
            max_fvu,
            verdict,
        }
    }

    /// A one-line description for logs and summaries.
    pub fn describe(&self) -> String {
        match self.val_fvu {
            Some(fvu) => format!(
                "{}: validation FVU {fvu:.3} (gate ≤ {}), {} dead, {} constant of its features, {} training rows — {}",
                self.hook,
                self.max_fvu,
                self.dead.unwrap_or(0),
                self.constant.unwrap_or(0),
                self.train_rows.unwrap_or(0),
                self.verdict.name()
            ),
            None => format!("{}: no recorded quality (retrain to get one) — unknown", self.hook),
        }
    }
}

/// log2 of a state count: the most bits N samples can resolve (0 for N ≤ 1).
pub fn log2_states(states: u64) -> f64 {
    if states <= 1 {
        0.0
    } else {
        (states as f64).log2()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_of_the_state_count_bounds_what_the_samples_resolve() {
        assert_eq!(log2_states(0), 0.0);
        assert_eq!(log2_states(1), 0.0);
        assert!((log2_states(138) - 7.108).abs() < 1e-3);
        assert_eq!(log2_states(1024), 10.0);
    }
}

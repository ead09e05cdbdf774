//! Which demonstrations each prompt of a sweep uses. Sample s asks the same query at
//! every number of demonstrations k, and its demonstrations are the first k of one
//! seeded permutation of the other examples: a sweep over k adds demonstrations to the
//! same prompt instead of drawing new ones, so differences between k come from the
//! demonstrations added. (The reference code always took the first k examples of the
//! file; here they are random, seeded, and recorded.)

use bae_lm::rng::SplitMix64;

use crate::error::{DynamicsError, Result};

/// One prompt of the sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// 0-based sample number (the same query at every k).
    pub sample: usize,
    /// Index of the query example.
    pub query: usize,
    /// Indices of the demonstrations, in prompt order.
    pub demos: Vec<usize>,
}

/// For every k in `ks`, `samples` prompts over a task of `examples` examples, from
/// `seed`. Queries are distinct while `samples` ≤ `examples`, then repeat in a new
/// order. Every k must leave room for the query (k < `examples`).
pub fn plan(examples: usize, ks: &[usize], samples: usize, seed: u64) -> Result<Vec<(usize, Vec<Sample>)>> {
    if ks.is_empty() || samples == 0 {
        return Err(DynamicsError::Input("--demos needs at least one value and --samples at least 1".into()));
    }
    if let Some(&k) = ks.iter().find(|&&k| k >= examples) {
        return Err(DynamicsError::Input(format!(
            "--demos {k} needs {} examples (k demonstrations and a query); the task has {examples}",
            k + 1
        )));
    }
    let max_k = ks.iter().copied().max().unwrap_or(0);
    let mut rng = SplitMix64::new(seed);
    let mut queries = Vec::with_capacity(samples);
    while queries.len() < samples {
        let mut order: Vec<usize> = (0..examples).collect();
        rng.shuffle(&mut order);
        queries.extend(order.into_iter().take(samples - queries.len()));
    }
    let prompts: Vec<(usize, Vec<usize>)> = queries
        .into_iter()
        .map(|query| {
            let mut others: Vec<usize> = (0..examples).filter(|&i| i != query).collect();
            rng.shuffle(&mut others);
            others.truncate(max_k);
            (query, others)
        })
        .collect();
    Ok(ks
        .iter()
        .map(|&k| {
            let samples = prompts
                .iter()
                .enumerate()
                .map(|(sample, (query, order))| Sample { sample, query: *query, demos: order[..k].to_vec() })
                .collect();
            (k, samples)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demonstrations_are_seeded_nested_and_never_the_query() {
        let sweep = plan(20, &[0, 1, 4, 8], 12, 42).unwrap();
        assert_eq!(sweep.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![0, 1, 4, 8]);
        let queries: Vec<usize> = sweep[0].1.iter().map(|s| s.query).collect();
        assert_eq!(queries.iter().collect::<std::collections::HashSet<_>>().len(), 12, "distinct queries");
        for (k, samples) in &sweep {
            for (s, sample) in samples.iter().enumerate() {
                assert_eq!(sample.query, queries[s], "same query at every k");
                assert_eq!(sample.demos.len(), *k);
                assert!(!sample.demos.contains(&sample.query));
                let distinct: std::collections::HashSet<_> = sample.demos.iter().collect();
                assert_eq!(distinct.len(), *k);
                // Nested: k demonstrations start with the k' < k ones.
                assert_eq!(sample.demos[..], sweep[3].1[s].demos[..*k]);
            }
        }
        assert_eq!(plan(20, &[0, 1, 4, 8], 12, 42).unwrap(), sweep, "same seed, same plan");
        assert_ne!(plan(20, &[0, 1, 4, 8], 12, 43).unwrap(), sweep);
        // Not simply the first examples of the file.
        assert!(sweep[3]
            .1
            .iter()
            .any(|s| s.demos != (0..8).filter(|&i| i != s.query).take(8).collect::<Vec<_>>()));
        // More samples than examples: every example is a query before any repeats.
        let many = plan(5, &[1], 12, 1).unwrap();
        let first: std::collections::HashSet<usize> = many[0].1[..5].iter().map(|s| s.query).collect();
        assert_eq!(first.len(), 5);
    }

    #[test]
    fn impossible_sweeps_are_refused() {
        let err = plan(8, &[0, 8], 4, 1).unwrap_err().to_string();
        assert!(err.contains("--demos 8 needs 9 examples") && err.contains("has 8"), "{err}");
        assert!(plan(8, &[], 4, 1).is_err());
        assert!(plan(8, &[1], 0, 1).is_err());
    }
}

//! Hook points: named places in the decoder where the residual stream can be read
//! or changed.
//!
//! Names follow TransformerLens. The relation to Hugging Face's
//! `output_hidden_states` (index 0 = embedding output, index `i` = output of block `i`)
//! is the usual source of off-by-one errors, so it is spelled out here:
//!
//! | hook point                  | Hugging Face `hidden_states` index |
//! |-----------------------------|------------------------------------|
//! | `blocks.0.hook_resid_pre`   | 0                                  |
//! | `blocks.{l}.hook_resid_post`| `l + 1` (for `l + 1 < n_layers`)   |
//! | `ln_final.hook_normalized`  | `n_layers` (transformers takes the last entry after the final norm) |
//!
//! `hook_embed` is the raw embedding lookup. For the Llama family it equals
//! `blocks.0.hook_resid_pre`; families that scale embeddings (Gemma) differ.

use std::fmt;
use std::str::FromStr;

use crate::error::LmError;

/// One place in the forward pass where the residual stream can be captured or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookPoint {
    /// `hook_embed`: the token embedding lookup, before any family-specific scaling.
    Embed,
    /// `blocks.{l}.hook_resid_pre`: the residual entering block `l`.
    ResidPre(usize),
    /// `blocks.{l}.hook_resid_mid`: the residual after block `l`'s attention, before its MLP.
    ResidMid(usize),
    /// `blocks.{l}.hook_resid_post`: the residual leaving block `l`.
    ResidPost(usize),
    /// `ln_final.hook_normalized`: the output of the final norm, the input of the unembedding.
    FinalNorm,
}

impl HookPoint {
    /// Every hook point of a model with `n_layers` blocks, in forward order.
    pub fn all(n_layers: usize) -> Vec<HookPoint> {
        let mut points = vec![HookPoint::Embed];
        for l in 0..n_layers {
            points.extend([HookPoint::ResidPre(l), HookPoint::ResidMid(l), HookPoint::ResidPost(l)]);
        }
        points.push(HookPoint::FinalNorm);
        points
    }

    /// The block this point belongs to, if any.
    pub fn layer(&self) -> Option<usize> {
        match *self {
            HookPoint::ResidPre(l) | HookPoint::ResidMid(l) | HookPoint::ResidPost(l) => Some(l),
            HookPoint::Embed | HookPoint::FinalNorm => None,
        }
    }

    /// How many decoder blocks must run before this point is reached.
    pub fn blocks_needed(&self, n_layers: usize) -> usize {
        match *self {
            HookPoint::Embed | HookPoint::ResidPre(_) => self.layer().unwrap_or(0),
            HookPoint::ResidMid(l) | HookPoint::ResidPost(l) => l + 1,
            HookPoint::FinalNorm => n_layers,
        }
    }

    /// Checks that this point exists in a model with `n_layers` blocks.
    pub fn validate(&self, n_layers: usize) -> Result<(), LmError> {
        match self.layer() {
            Some(l) if l >= n_layers => Err(LmError::UnknownHook {
                name: self.to_string(),
                reason: format!("the model has {n_layers} blocks (0..={})", n_layers.saturating_sub(1)),
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookPoint::Embed => write!(f, "hook_embed"),
            HookPoint::ResidPre(l) => write!(f, "blocks.{l}.hook_resid_pre"),
            HookPoint::ResidMid(l) => write!(f, "blocks.{l}.hook_resid_mid"),
            HookPoint::ResidPost(l) => write!(f, "blocks.{l}.hook_resid_post"),
            HookPoint::FinalNorm => write!(f, "ln_final.hook_normalized"),
        }
    }
}

const EXPECTED_NAMES: &str = "expected hook_embed, blocks.{l}.hook_resid_pre, \
blocks.{l}.hook_resid_mid, blocks.{l}.hook_resid_post or ln_final.hook_normalized";

impl FromStr for HookPoint {
    type Err = LmError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || LmError::UnknownHook { name: s.to_string(), reason: EXPECTED_NAMES.to_string() };
        match s {
            "hook_embed" => return Ok(HookPoint::Embed),
            "ln_final.hook_normalized" => return Ok(HookPoint::FinalNorm),
            _ => {}
        }
        let rest = s.strip_prefix("blocks.").ok_or_else(unknown)?;
        let (layer, kind) = rest.split_once('.').ok_or_else(unknown)?;
        // Reject "+1" or "01" so that parsing and printing round-trip exactly.
        if layer.is_empty()
            || !layer.bytes().all(|b| b.is_ascii_digit())
            || (layer.len() > 1 && layer.starts_with('0'))
        {
            return Err(unknown());
        }
        let l: usize = layer.parse().map_err(|_| unknown())?;
        match kind {
            "hook_resid_pre" => Ok(HookPoint::ResidPre(l)),
            "hook_resid_mid" => Ok(HookPoint::ResidMid(l)),
            "hook_resid_post" => Ok(HookPoint::ResidPost(l)),
            _ => Err(unknown()),
        }
    }
}

/// Resolves a user's hook selection against a model with `n_layers` blocks.
///
/// `spec` is a comma-separated list whose items are exact names or globs where `*`
/// matches any run of characters (`blocks.*.hook_resid_post`). The result is in
/// forward order without duplicates. A name or glob that matches nothing is an error.
pub fn select_hooks(spec: &str, n_layers: usize) -> Result<Vec<HookPoint>, LmError> {
    // An exact name says why it is wrong (unknown kind, block out of range).
    for item in selection_items(spec).filter(|item| !item.contains('*')) {
        item.parse::<HookPoint>()?.validate(n_layers)?;
    }
    let all = HookPoint::all(n_layers);
    let names: Vec<String> = all.iter().map(HookPoint::to_string).collect();
    let picked = pick(spec, &names).map_err(|item| LmError::UnknownHook {
        name: item.to_string(),
        reason: format!("the pattern matches no hook point; {EXPECTED_NAMES}"),
    })?;
    if picked.is_empty() {
        return Err(LmError::UnknownHook {
            name: spec.to_string(),
            reason: "no hook point given".to_string(),
        });
    }
    Ok(picked.into_iter().map(|i| all[i]).collect())
}

/// The items of a comma-separated selection, trimmed, empty ones dropped.
fn selection_items(spec: &str) -> impl Iterator<Item = &str> {
    spec.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The hook-selection syntax over any list of names: the indices of `names` that the
/// comma-separated `spec` picks (exact names or [`glob_match`] patterns), in the order
/// of `names`, each once. An item that picks nothing is the error.
pub fn pick<'a>(spec: &'a str, names: &[String]) -> Result<Vec<usize>, &'a str> {
    let mut keep = vec![false; names.len()];
    for item in selection_items(spec) {
        let mut matched = false;
        for (i, name) in names.iter().enumerate() {
            if glob_match(item, name) {
                keep[i] = true;
                matched = true;
            }
        }
        if !matched {
            return Err(item);
        }
    }
    Ok((0..names.len()).filter(|&i| keep[i]).collect())
}

/// Whether `text` matches `pattern`, where `*` stands for any (possibly empty) run of
/// characters (the hook-selection syntax); a pattern without `*` matches itself only.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last) && (parts.len() > 1 || rest.len() == last.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hook_name_round_trips() {
        for p in HookPoint::all(12) {
            let name = p.to_string();
            assert_eq!(name.parse::<HookPoint>().unwrap(), p, "{name}");
        }
    }

    #[test]
    fn malformed_names_are_rejected() {
        for bad in [
            "",
            "blocks.1",
            "blocks..hook_resid_post",
            "blocks.01.hook_resid_post",
            "blocks.+1.hook_resid_post",
            "blocks.1.hook_resid",
            "hook_resid_post",
            "blocks.1.hook_resid_post.x",
        ] {
            assert!(bad.parse::<HookPoint>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn globs_match_runs_and_plain_names_match_themselves() {
        let name = "blocks.9.hook_resid_post";
        for (pattern, expected) in [
            ("blocks.9.hook_resid_post", true),
            ("blocks.9.hook_resid_pre", false),
            ("blocks.9", false),
            ("blocks.*.hook_resid_post", true),
            ("blocks.*", true),
            ("*", true),
            ("*post", true),
            ("blocks.1*.hook_resid_post", false),
            ("blocks.9.hook_resid_post*", true),
            ("blocks.9.hook_resid_post.x*", false),
        ] {
            assert_eq!(glob_match(pattern, name), expected, "{pattern}");
        }
    }

    #[test]
    fn globs_and_lists_select_in_forward_order() {
        let got = select_hooks("blocks.*.hook_resid_post", 3).unwrap();
        assert_eq!(got, vec![HookPoint::ResidPost(0), HookPoint::ResidPost(1), HookPoint::ResidPost(2)]);
        let got = select_hooks("ln_final.hook_normalized, blocks.1.hook_resid_pre,hook_embed", 3).unwrap();
        assert_eq!(got, vec![HookPoint::Embed, HookPoint::ResidPre(1), HookPoint::FinalNorm]);
        let got = select_hooks("blocks.1.*", 3).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(select_hooks("*", 2).unwrap(), HookPoint::all(2));
    }

    #[test]
    fn out_of_range_layers_and_empty_globs_are_errors() {
        let err = select_hooks("blocks.3.hook_resid_post", 3).unwrap_err();
        assert!(err.to_string().contains("blocks.3.hook_resid_post"), "{err}");
        assert!(err.to_string().contains("3 blocks"), "{err}");
        assert!(select_hooks("blocks.*.hook_attn_out", 3).is_err());
        assert!(select_hooks(" , ", 3).is_err());
    }

    #[test]
    fn blocks_needed_stops_the_forward_early() {
        assert_eq!(HookPoint::Embed.blocks_needed(4), 0);
        assert_eq!(HookPoint::ResidPre(2).blocks_needed(4), 2);
        assert_eq!(HookPoint::ResidMid(2).blocks_needed(4), 3);
        assert_eq!(HookPoint::ResidPost(2).blocks_needed(4), 3);
        assert_eq!(HookPoint::FinalNorm.blocks_needed(4), 4);
    }

    #[test]
    fn pick_keeps_the_names_order_once_each_and_names_the_item_that_picks_nothing() {
        let names: Vec<String> = [
            "hook_embed",
            "blocks.0.hook_resid_post",
            "blocks.1.hook_resid_post",
            "ln_final.hook_normalized",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            pick("blocks.1.hook_resid_post, blocks.*.hook_resid_post,hook_embed", &names),
            Ok(vec![0, 1, 2])
        );
        assert_eq!(pick(" , ", &names), Ok(vec![]));
        assert_eq!(pick("hook_embed,blocks.9.*", &names), Err("blocks.9.*"));
    }
}

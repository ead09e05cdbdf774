//! The feature report: one static HTML page, no scripts or outside resources, that a
//! person can open from disk. The header holds the counts with their thresholds, the
//! density histogram and the interpretability summary; then every feature that fired,
//! sorted by density (densest first), each with its explanation and score when judged
//! and its sampled tokens highlighted in context.

use bae_train::metrics::DENSITY_BIN_LABELS;

use super::{FeatureInterpretation, FeatureSet, TokenContext};

/// What the report says about where the features come from.
#[derive(Debug, Clone)]
pub struct ReportHeader {
    /// The model, as given.
    pub model: String,
    /// The hook point.
    pub hook: String,
    /// The autoencoder's run folder.
    pub bae: String,
    /// The corpus file.
    pub corpus: String,
    /// The judge's id, when features were scored.
    pub judge: Option<String>,
}

/// Features shown opened at the top of the list.
const OPEN_FEATURES: usize = 3;

/// Samples shown per feature (all are in the samples table).
pub const SHOWN_SAMPLES: usize = 10;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push('⏎'),
            c => out.push(c),
        }
    }
    out
}

fn context_html(t: &TokenContext) -> String {
    format!(
        "<span class=\"ctx\">{}<mark>{}</mark>{}</span>",
        escape(&t.before),
        escape(&t.token),
        escape(&t.after)
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}\
th{background:#f3f3f3}details{border-bottom:1px solid #eee;padding:.25em 0}summary{cursor:pointer}\
.cls-dense{color:#b00}.cls-live{color:#070}.ctx{white-space:pre-wrap;font-family:monospace}\
mark{background:#ffd54f;padding:0 .1em}ol{margin:.3em 0}li{margin:.15em 0}.meta{color:#666;font-size:90%}\
.expl{font-style:italic}";

/// The report for `set`, with `scores` when features were judged.
pub fn render(header: &ReportHeader, set: &FeatureSet, scores: &[FeatureInterpretation]) -> String {
    let features = set.samples.len();
    let arch = set.architecture.name();
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Features: {arch} at {hook}</title>\
         <style>{STYLE}</style></head><body>\n<h1>Features of the {arch} autoencoder at {hook}</h1>\n\
         <p class=\"meta\">model {model} · autoencoder {bae} · corpus {corpus} · {tokens} tokens · {features} features · \
         each token handed to its {top} best-scoring active features ({score_rule})</p>\n",
        hook = escape(&header.hook),
        model = escape(&header.model),
        bae = escape(&header.bae),
        corpus = escape(&header.corpus),
        tokens = set.tokens_seen,
        top = set.options.top_features,
        score_rule = if set.architecture == bae_train::config::Architecture::Binary {
            "score log2(|z − z̄| + 1e-6)"
        } else {
            "score = activation"
        },
    );
    let live = features - set.stats.dead - set.stats.dense;
    html.push_str(&format!(
        "<h2>Counts</h2>\n<table><tr><th>dead</th><th>dense</th><th>live</th></tr>\
         <tr><td>{}</td><td>{}</td><td>{live}</td></tr></table>\n\
         <p class=\"meta\">dead: never active on the corpus; dense: active on more than half of its tokens; \
         active means a code of 1 for a BAE, a non-zero activation for an SAE.</p>\n",
        set.stats.dead, set.stats.dense
    ));
    html.push_str("<h2>Feature density</h2>\n<table><tr><th>density</th>");
    for label in DENSITY_BIN_LABELS {
        html.push_str(&format!("<th>{}</th>", escape(&label.replace("le_", "≤ ").replace("lt_", "< "))));
    }
    html.push_str("</tr><tr><td>features</td>");
    for count in set.stats.density_histogram {
        html.push_str(&format!("<td>{count}</td>"));
    }
    html.push_str("</tr></table>\n");
    if let Some(judge) = &header.judge {
        let mean = scores.iter().map(|s| s.score).sum::<f64>() / scores.len().max(1) as f64;
        html.push_str(&format!(
            "<h2>Interpretability</h2>\n<p>Judge <b>{}</b> scored {} features: mean score <b>{:.3}</b> \
             (the fraction of later tokens the judge said fit the explanation written from a feature's first tokens).</p>\n",
            escape(judge),
            scores.len(),
            mean
        ));
    }
    let mut order: Vec<usize> = (0..features).filter(|&j| set.active[j] > 0).collect();
    order.sort_by(|&a, &b| set.active[b].cmp(&set.active[a]).then(a.cmp(&b)));
    html.push_str(&format!(
        "<h2>Features that fired ({}), densest first</h2>\n<p class=\"meta\">each with up to {SHOWN_SAMPLES} of its \
         highest-scoring tokens (ties: the earliest); the tokens the judge saw, and more, are in samples.parquet.</p>\n",
        order.len()
    ));
    let mut by_feature: Vec<Option<&FeatureInterpretation>> = vec![None; features];
    for s in scores {
        by_feature[s.feature] = Some(s);
    }
    for (rank, j) in order.into_iter().enumerate() {
        let scored = by_feature[j];
        let class = set.class(j);
        html.push_str(&format!(
            "<details id=\"f{j}\"{}><summary><b>#{j}</b> · density {:.4}% · <span class=\"cls-{class}\">{class}</span> · \
             {} tokens handed to it",
            // The densest few open, so the page shows contexts at once.
            if rank < OPEN_FEATURES { " open" } else { "" },
            100.0 * set.density(j),
            set.assigned[j]
        ));
        if let Some(s) = scored {
            html.push_str(&format!(
                " · score {:.2} · <span class=\"expl\">{}</span>",
                s.score,
                escape(&s.explanation)
            ));
        }
        html.push_str("</summary>\n<ol>");
        for s in set.top[j].iter().take(SHOWN_SAMPLES) {
            let t = &set.tokens[s.token];
            html.push_str(&format!(
                "<li>{} <span class=\"meta\">doc {} pos {} · score {:.3}</span></li>",
                context_html(t),
                t.doc,
                t.position,
                s.score
            ));
        }
        html.push_str("</ol></details>\n");
    }
    let dead: Vec<String> = (0..features).filter(|&j| set.active[j] == 0).map(|j| j.to_string()).collect();
    html.push_str(&format!(
        "<h2>Dead features ({})</h2>\n<p class=\"meta\">{}</p>\n</body></html>\n",
        dead.len(),
        if dead.is_empty() { "none".to_string() } else { dead.join(", ") }
    ));
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_shows_newlines() {
        assert_eq!(escape("<b>&\"x'\n"), "&lt;b&gt;&amp;&quot;x&#39;⏎");
    }
}

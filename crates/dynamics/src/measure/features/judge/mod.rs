//! LLM judges for interpretability scoring: a judge writes a short explanation of a
//! feature from example tokens, then answers yes or no to whether the explanation fits
//! other tokens. Two judges: the hosted model itself through its chat template
//! ([`local::LocalJudge`]), or any OpenAI-compatible chat-completions endpoint
//! ([`endpoint::EndpointJudge`]). [`cache::CachedJudge`] keeps every answer on disk.

pub mod cache;
pub mod endpoint;
pub mod local;
pub mod prompts;
#[cfg(test)]
mod test_server;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The question.
    User,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

/// A judge's yes/no answer, with what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the explanation fits.
    pub yes: bool,
    /// The answer as given (for a local judge, "Yes" or "No").
    pub answer: String,
}

/// An LLM that explains features and judges explanations.
pub trait Judge {
    /// Names the judge in reports and cache keys: "self:MODEL@SHA" or "endpoint:URL#MODEL".
    fn id(&self) -> String;
    /// A short free-text answer (an explanation), at most `max_tokens` tokens.
    fn explain(&mut self, messages: &[Message], max_tokens: usize) -> Result<String>;
    /// A yes/no answer.
    fn judge(&mut self, messages: &[Message]) -> Result<Verdict>;
}

/// Reads a yes/no answer the way the reference does, a little more leniently: the first
/// word, case and punctuation ignored, must be "yes" for a yes; anything else is a no.
pub fn parse_verdict(answer: &str) -> Verdict {
    let first =
        answer.split(|c: char| !c.is_alphanumeric()).find(|w| !w.is_empty()).unwrap_or("").to_lowercase();
    Verdict { yes: first == "yes", answer: answer.trim().to_string() }
}

/// The first line of an explanation, trimmed of quotes and a trailing full stop.
pub fn clean_explanation(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("").trim();
    let line = line.strip_prefix("The commonality is:").unwrap_or(line).trim();
    let line = line.trim_matches(|c: char| matches!(c, '"' | '\'' | '*' | '.' | '`') || c.is_whitespace());
    // Stored in tables and the report and printed: no control characters (ANSI
    // escapes), and no more than a sentence's worth of text.
    line.chars().filter(|c| !c.is_control()).take(MAX_EXPLANATION_CHARS).collect()
}

/// Longest explanation kept, in characters.
pub const MAX_EXPLANATION_CHARS: usize = 300;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_read_the_first_word() {
        assert!(parse_verdict("Yes").yes);
        assert!(parse_verdict("  yes.").yes);
        assert!(parse_verdict("**Yes**, it fits").yes);
        assert!(!parse_verdict("No").yes);
        assert!(!parse_verdict("Yesterday").yes);
        assert!(!parse_verdict("").yes);
        assert!(!parse_verdict("I think yes").yes);
        assert_eq!(parse_verdict(" Yes. \n").answer, "Yes.");
    }

    #[test]
    fn explanations_keep_one_clean_line() {
        assert_eq!(clean_explanation(" \"past time expressions\".\nmore"), "past time expressions");
        assert_eq!(clean_explanation("The commonality is: animal nouns"), "animal nouns");
        assert_eq!(clean_explanation(""), "");
    }
}

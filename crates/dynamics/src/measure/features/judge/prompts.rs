//! The judge's prompts, shortened from the reference's ComSem instructions so that a
//! small local model reads them quickly: the same task, two worked examples each.

use super::{Message, Role};
use crate::measure::features::TokenContext;

/// One sample as the judge sees it: the token, its position and its context with the
/// token marked by double angle brackets.
pub fn describe_sample(t: &TokenContext) -> String {
    let text = format!("{}<<{}>>{}", t.before, t.token, t.after).replace('\n', " ");
    format!("Token: \"{}\" at position {} in text: \"{}\"", t.token.trim(), t.position, text.trim())
}

/// Asks for a phrase naming what the tokens have in common.
pub fn explain(samples: &[&TokenContext]) -> Vec<Message> {
    let mut user = String::from(
        "Describe what the marked tokens have in common with one short, specific phrase. Avoid vague \
         terms like \"words\" or \"English tokens\". Return only the phrase.\n\n\
         Example:\n\
         Token: \"running\" at position 3 in text: \"She is <<running>> in the park.\"\n\
         Token: \"eating\" at position 3 in text: \"He is <<eating>> an apple.\"\n\
         Token: \"sleeping\" at position 4 in text: \"The baby is <<sleeping>> on the sofa.\"\n\
         The commonality is: -ing verbs of human behavior\n\n\
         Example:\n\
         Token: \"dog\" at position 2 in text: \"The <<dog>> barked loudly.\"\n\
         Token: \"cat\" at position 2 in text: \"The <<cat>> chased the mouse.\"\n\
         The commonality is: animal nouns\n\nNow:\n",
    );
    for s in samples {
        user.push_str(&describe_sample(s));
        user.push('\n');
    }
    user.push_str("The commonality is:");
    vec![
        Message {
            role: Role::System,
            content: "You are a helpful assistant for interpreting token commonalities.".into(),
        },
        Message { role: Role::User, content: user },
    ]
}

/// Asks whether `explanation` describes the marked token.
pub fn judge(sample: &TokenContext, explanation: &str) -> Vec<Message> {
    let user = format!(
        "Does the candidate description accurately characterize the marked token in its context? \
         Answer only \"Yes\" or \"No\".\n\n\
         Example:\n\
         Token: \"running\" at position 3 in text: \"She is <<running>> in the park.\"\n\
         Candidate description: \"present participle\"\nAnswer: Yes\n\n\
         Example:\n\
         Token: \"dog\" at position 2 in text: \"The <<dog>> barked loudly.\"\n\
         Candidate description: \"adjective\"\nAnswer: No\n\nNow:\n\
         {}\nCandidate description: \"{}\"\nAnswer:",
        describe_sample(sample),
        explanation
    );
    vec![
        Message {
            role: Role::System,
            content: "You are a helpful assistant for testing token interpretations.".into(),
        },
        Message { role: Role::User, content: user },
    ]
}

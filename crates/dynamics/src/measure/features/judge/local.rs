//! The hosted model as its own judge, through its chat template. Two template families
//! are known by their special tokens: ChatML (`<|im_start|>`, SmolLM2 and Qwen) and
//! Gemma's turns (`<start_of_turn>`). Explanations are greedy continuations; a yes/no
//! answer compares the logits of "Yes" and "No" as the reply's first token, so it is
//! always one of the two and costs one forward pass.

use bae_lm::Model;

use super::{clean_explanation, Judge, Message, Role, Verdict};
use crate::error::{DynamicsError, Result};

/// How messages become a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// `<|im_start|>role\n…<|im_end|>\n`, ending with an open assistant turn.
    ChatMl,
    /// `<start_of_turn>user\n…<end_of_turn>\n<start_of_turn>model\n`; no system role, so
    /// the system message opens the user turn.
    Gemma,
}

impl ChatFormat {
    /// The prompt text for `messages`, ready for the assistant's reply.
    pub fn render(self, messages: &[Message]) -> String {
        match self {
            ChatFormat::ChatMl => {
                let mut text = String::new();
                for m in messages {
                    let role = match m.role {
                        Role::System => "system",
                        Role::User => "user",
                    };
                    text.push_str(&format!("<|im_start|>{role}\n{}<|im_end|>\n", m.content));
                }
                text.push_str("<|im_start|>assistant\n");
                text
            }
            ChatFormat::Gemma => {
                let joined: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
                format!("<start_of_turn>user\n{}<end_of_turn>\n<start_of_turn>model\n", joined.join("\n\n"))
            }
        }
    }

    /// The token that ends the assistant's turn.
    fn end_of_turn(self) -> &'static str {
        match self {
            ChatFormat::ChatMl => "<|im_end|>",
            ChatFormat::Gemma => "<end_of_turn>",
        }
    }
}

/// The hosted model as judge.
pub struct LocalJudge<'a> {
    model: &'a Model,
    id: String,
    format: ChatFormat,
    stop: Vec<u32>,
    yes: u32,
    no: u32,
}

impl<'a> LocalJudge<'a> {
    /// A judge from `model`, named `id` in reports. Fails when the tokenizer has no
    /// known chat tokens (a base model without a chat template).
    pub fn new(model: &'a Model, id: String) -> Result<Self> {
        let tokenizer = model.tokenizer()?;
        let token = |t: &str| tokenizer.inner().token_to_id(t);
        let format = if token("<|im_start|>").is_some() && token("<|im_end|>").is_some() {
            ChatFormat::ChatMl
        } else if token("<start_of_turn>").is_some() && token("<end_of_turn>").is_some() {
            ChatFormat::Gemma
        } else {
            return Err(DynamicsError::Input(format!(
                "{}: the tokenizer has no chat tokens (neither ChatML's <|im_start|> nor Gemma's \
                 <start_of_turn>), so the model cannot judge; use an instruction-tuned model or --judge endpoint",
                model.source.describe()
            )));
        };
        let mut stop: Vec<u32> = token(format.end_of_turn()).into_iter().collect();
        stop.extend(model.config().eos_token_ids.iter().copied());
        let first =
            |word: &str| -> Result<u32> {
                tokenizer.encode(word, false)?.first().copied().ok_or_else(|| {
                    DynamicsError::Input(format!("the tokenizer turns {word:?} into no tokens"))
                })
            };
        let (yes, no) = (first("Yes")?, first("No")?);
        if yes == no {
            return Err(DynamicsError::Input("\"Yes\" and \"No\" start with the same token".into()));
        }
        Ok(Self { model, id, format, stop, yes, no })
    }

    /// The chat format in use.
    pub fn format(&self) -> ChatFormat {
        self.format
    }

    fn prompt(&self, messages: &[Message]) -> Result<Vec<u32>> {
        let ids = self.model.tokenizer()?.encode(&self.format.render(messages), true)?;
        let context = self.model.config().max_position_embeddings;
        if ids.len() > context {
            return Err(DynamicsError::Input(format!(
                "a judge prompt has {} tokens, more than the model's context of {context}",
                ids.len()
            )));
        }
        Ok(ids)
    }
}

impl Judge for LocalJudge<'_> {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn explain(&mut self, messages: &[Message], max_tokens: usize) -> Result<String> {
        // Greedy, one token at a time, ending at the end of the turn or of the first
        // non-empty line (only that line is kept).
        let tokenizer = self.model.tokenizer()?;
        let mut ids = self.prompt(messages)?;
        let start = ids.len();
        for _ in 0..max_tokens {
            let next =
                self.model.decoder.last_logits(&ids)?.argmax(candle_core::D::Minus1)?.to_scalar::<u32>()?;
            if self.stop.contains(&next) {
                break;
            }
            ids.push(next);
            let text = tokenizer.decode(&ids[start..])?;
            if text.trim_start().contains('\n') {
                break;
            }
        }
        Ok(clean_explanation(&tokenizer.decode(&ids[start..])?))
    }

    fn judge(&mut self, messages: &[Message]) -> Result<Verdict> {
        let ids = self.prompt(messages)?;
        let values = self.model.decoder.last_logits(&ids)?.to_vec1::<f32>()?;
        let yes = values[self.yes as usize] > values[self.no as usize];
        Ok(Verdict { yes, answer: if yes { "Yes" } else { "No" }.into() })
    }
}

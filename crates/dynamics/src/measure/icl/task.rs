//! A task: labelled examples from a JSONL file and the template that turns
//! demonstrations and a query into a prompt. The template lives beside the JSONL file
//! (same name, `.toml`) unless named; configs/tasks/ holds the shipped tasks.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{DynamicsError, Result};
use crate::input::corpus::sha256_of;

/// How a prompt is put together. Field names are the template file's keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTemplate {
    /// Task name, used in output tables.
    pub name: String,
    /// JSONL field holding an example's input.
    pub input_field: String,
    /// JSONL field holding an example's label.
    pub label_field: String,
    /// Text before each input.
    pub input_prefix: String,
    /// Text between an input and its label; every prompt ends with it, so its last
    /// token is where entropy is measured.
    pub label_prefix: String,
    /// Text between the label prefix and the label (usually one space).
    pub label_separator: String,
    /// Text after a demonstration's label, before the next input.
    pub demo_separator: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    task: TaskTemplate,
}

/// One labelled example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The input text.
    pub input: String,
    /// The label text.
    pub label: String,
}

/// A loaded task.
#[derive(Debug, Clone)]
pub struct Task {
    /// The prompt template.
    pub template: TaskTemplate,
    /// Examples in file order.
    pub examples: Vec<Example>,
    /// The JSONL file.
    pub path: PathBuf,
    /// sha256 of the JSONL file.
    pub sha256: String,
}

fn bad(path: &Path, location: impl Into<String>, message: impl Into<String>) -> DynamicsError {
    DynamicsError::Task { path: path.to_path_buf(), location: location.into(), message: message.into() }
}

impl Task {
    /// Loads `jsonl` with the template at `template` (default: `jsonl` with the
    /// extension `.toml`). Every line must be a JSON object with a non-empty string in
    /// both fields; blank lines are skipped. At least two examples are needed (a query
    /// and a demonstration).
    pub fn load(jsonl: &Path, template: Option<&Path>) -> Result<Self> {
        let template_path = template.map(Path::to_path_buf).unwrap_or_else(|| jsonl.with_extension("toml"));
        let text = std::fs::read_to_string(&template_path)
            .map_err(|e| bad(&template_path, "template", format!("cannot read the task template: {e}")))?;
        let template = toml::from_str::<TemplateFile>(&text)
            .map_err(|e| bad(&template_path, "template", e.message().to_string()))?
            .task;
        if template.label_prefix.trim().is_empty() {
            return Err(bad(
                &template_path,
                "field `label_prefix`",
                "is empty; prompts must end with visible text",
            ));
        }
        let body = std::fs::read_to_string(jsonl)
            .map_err(|source| DynamicsError::Io { path: jsonl.into(), source })?;
        let mut examples = Vec::new();
        for (i, line) in body.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("line {}", i + 1);
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| bad(jsonl, &at, format!("not JSON: {e}")))?;
            let field = |name: &str| -> Result<String> {
                match value.get(name) {
                    Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
                    Some(serde_json::Value::String(_)) => {
                        Err(bad(jsonl, &at, format!("field `{name}` is empty")))
                    }
                    Some(other) => {
                        Err(bad(jsonl, &at, format!("field `{name}` is {other}, expected a string")))
                    }
                    None => Err(bad(jsonl, &at, format!("missing field `{name}`"))),
                }
            };
            examples
                .push(Example { input: field(&template.input_field)?, label: field(&template.label_field)? });
        }
        if examples.len() < 2 {
            return Err(bad(jsonl, "file", format!("{} example(s), at least 2 needed", examples.len())));
        }
        Ok(Self { template, examples, path: jsonl.to_path_buf(), sha256: sha256_of(jsonl)? })
    }

    /// The prompt for `query` after the demonstrations `demos` (indices into
    /// `examples`), ending with the label prefix.
    pub fn prompt(&self, demos: &[usize], query: usize) -> String {
        let t = &self.template;
        let mut text = String::new();
        for &i in demos {
            let e = &self.examples[i];
            text += &format!(
                "{}{}{}{}{}{}",
                t.input_prefix, e.input, t.label_prefix, t.label_separator, e.label, t.demo_separator
            );
        }
        text += &format!("{}{}{}", t.input_prefix, self.examples[query].input, t.label_prefix);
        text
    }

    /// The text that follows a prompt when the model answers `query` correctly.
    pub fn answer(&self, query: usize) -> String {
        format!("{}{}", self.template.label_separator, self.examples[query].label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const TEMPLATE: &str =
        "[task]\nname = \"t\"\ninput_field = \"x\"\nlabel_field = \"y\"\ninput_prefix = \"Q: \"\n\
                            label_prefix = \"\\nA:\"\nlabel_separator = \" \"\ndemo_separator = \"\\n\\n\"\n";

    #[test]
    fn prompts_follow_the_template() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "t.toml", TEMPLATE);
        let jsonl = write(dir.path(), "t.jsonl", "{\"x\": \"one\", \"y\": \"1\"}\n\n{\"x\": \"two\", \"y\": \"2\"}\n{\"x\": \"three\", \"y\": \"3\"}\n");
        let task = Task::load(&jsonl, None).unwrap();
        assert_eq!(task.examples.len(), 3);
        assert_eq!(task.prompt(&[2, 0], 1), "Q: three\nA: 3\n\nQ: one\nA: 1\n\nQ: two\nA:");
        assert_eq!(task.prompt(&[], 1), "Q: two\nA:");
        assert_eq!(task.answer(1), " 2");
    }

    #[test]
    fn bad_rows_and_templates_are_named() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "t.toml", TEMPLATE);
        let check = |body: &str, needles: &[&str]| {
            let jsonl = write(dir.path(), "t.jsonl", body);
            let err = Task::load(&jsonl, None).unwrap_err().to_string();
            for n in needles {
                assert!(err.contains(n), "{body:?}: {err}");
            }
        };
        check("{\"x\": \"a\", \"y\": \"1\"}\n{\"x\": \"b\"}\n", &["t.jsonl", "line 2", "missing field `y`"]);
        check(
            "{\"x\": \"a\", \"y\": \"1\"}\n{\"x\": \"b\", \"y\": \"  \"}\n",
            &["line 2", "field `y` is empty"],
        );
        check(
            "{\"x\": \"a\", \"y\": 1}\n{\"x\": \"b\", \"y\": \"2\"}\n",
            &["line 1", "field `y` is 1, expected a string"],
        );
        check("{\"x\": \"a\", \"y\": \"1\"}\nnot json\n", &["line 2", "not JSON"]);
        check("{\"x\": \"a\", \"y\": \"1\"}\n", &["1 example(s), at least 2"]);
        let jsonl = write(dir.path(), "u.jsonl", "{\"x\": \"a\", \"y\": \"1\"}\n");
        let err = Task::load(&jsonl, None).unwrap_err().to_string();
        assert!(err.contains("u.toml") && err.contains("cannot read the task template"), "{err}");
        write(dir.path(), "u.toml", &TEMPLATE.replace("name = ", "title = "));
        let err = Task::load(&jsonl, None).unwrap_err().to_string();
        assert!(err.contains("u.toml") && err.contains("unknown field `title`"), "{err}");
    }

    #[test]
    fn the_shipped_tasks_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/tasks");
        let mut total = 0;
        for name in ["sentiment", "antonyms", "capitals"] {
            let task = Task::load(&dir.join(format!("{name}.jsonl")), None).unwrap();
            assert_eq!(task.template.name, name);
            assert!(
                task.prompt(&[0, 1], 2).ends_with(':'),
                "{name}: prompts end with the label prefix's colon"
            );
            total += task.examples.len();
        }
        assert!(total >= 250, "{total} examples in all");
    }
}

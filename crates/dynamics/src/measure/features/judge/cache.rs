//! Judgements kept on disk, so that rerunning a scoring costs nothing: one JSON line per
//! answer, keyed by the SHA-256 of the judge's id, the kind of question and the exact
//! messages. A line is appended only after a call succeeded, so a failed call caches
//! nothing; a line cut short by a killed run is skipped when the file is read back.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{parse_verdict, Judge, Message, Verdict};
use crate::error::{DynamicsError, Result};

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    key: String,
    judge: String,
    kind: String,
    answer: String,
}

/// A judge whose answers are read from and written to a cache file.
pub struct CachedJudge<J> {
    inner: J,
    path: PathBuf,
    file: File,
    answers: HashMap<String, String>,
    /// Answers read from the cache (calls saved).
    pub hits: u64,
    /// Answers that needed a call.
    pub misses: u64,
}

impl<J: Judge> CachedJudge<J> {
    /// Wraps `inner` with the cache at `path` (created if missing).
    pub fn open(inner: J, path: &Path) -> Result<Self> {
        let io = |source| DynamicsError::Io { path: path.to_path_buf(), source };
        let mut answers = HashMap::new();
        if path.is_file() {
            for line in BufReader::new(File::open(path).map_err(io)?).lines() {
                // A partial last line (a killed run) does not parse and is skipped.
                if let Ok(entry) = serde_json::from_str::<Entry>(&line.map_err(io)?) {
                    answers.insert(entry.key, entry.answer);
                }
            }
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        // End a torn last line, so the next entry starts on a line of its own.
        let text_end = std::fs::read(path).map_err(io)?.last().copied();
        if text_end.is_some_and(|b| b != b'\n') {
            file.write_all(b"\n").map_err(io)?;
        }
        Ok(Self { inner, path: path.to_path_buf(), file, answers, hits: 0, misses: 0 })
    }

    fn key(&self, kind: &str, messages: &[Message], max_tokens: usize) -> String {
        let text = serde_json::json!([self.inner.id(), kind, max_tokens, messages]).to_string();
        Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn remember(&mut self, key: String, kind: &str, answer: &str) -> Result<()> {
        let entry =
            Entry { key: key.clone(), judge: self.inner.id(), kind: kind.into(), answer: answer.into() };
        let mut line = serde_json::to_string(&entry).expect("serialisable");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|source| DynamicsError::Io { path: self.path.clone(), source })?;
        self.answers.insert(key, answer.into());
        Ok(())
    }
}

impl<J: Judge> Judge for CachedJudge<J> {
    fn id(&self) -> String {
        self.inner.id()
    }

    fn explain(&mut self, messages: &[Message], max_tokens: usize) -> Result<String> {
        let key = self.key("explain", messages, max_tokens);
        if let Some(answer) = self.answers.get(&key) {
            self.hits += 1;
            return Ok(answer.clone());
        }
        self.misses += 1;
        let answer = self.inner.explain(messages, max_tokens)?;
        self.remember(key, "explain", &answer)?;
        Ok(answer)
    }

    fn judge(&mut self, messages: &[Message]) -> Result<Verdict> {
        let key = self.key("judge", messages, 0);
        if let Some(answer) = self.answers.get(&key) {
            self.hits += 1;
            return Ok(parse_verdict(answer));
        }
        self.misses += 1;
        let verdict = self.inner.judge(messages)?;
        self.remember(key, "judge", &verdict.answer)?;
        Ok(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Role;
    use super::*;

    /// Answers from a script; fails when it runs out.
    struct Scripted {
        answers: Vec<Result<String>>,
        calls: usize,
    }

    impl Scripted {
        fn next(&mut self) -> Result<String> {
            self.calls += 1;
            if self.answers.is_empty() {
                return Err(DynamicsError::Input("the script ran out".into()));
            }
            self.answers.remove(0)
        }
    }

    impl Judge for Scripted {
        fn id(&self) -> String {
            "scripted".into()
        }
        fn explain(&mut self, _: &[Message], _: usize) -> Result<String> {
            self.next()
        }
        fn judge(&mut self, _: &[Message]) -> Result<Verdict> {
            Ok(parse_verdict(&self.next()?))
        }
    }

    fn ask(text: &str) -> Vec<Message> {
        vec![Message { role: Role::User, content: text.into() }]
    }

    #[test]
    fn a_rerun_reads_every_answer_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("judgements.jsonl");
        let script =
            Scripted { answers: vec![Ok("nouns".into()), Ok("Yes".into()), Ok("No".into())], calls: 0 };
        let mut judge = CachedJudge::open(script, &path).unwrap();
        assert_eq!(judge.explain(&ask("a"), 16).unwrap(), "nouns");
        assert!(judge.judge(&ask("b")).unwrap().yes);
        assert!(!judge.judge(&ask("c")).unwrap().yes);
        assert_eq!((judge.hits, judge.misses), (0, 3));
        // The same questions again, from a fresh process: no calls (the script is empty).
        let mut again = CachedJudge::open(Scripted { answers: vec![], calls: 0 }, &path).unwrap();
        assert_eq!(again.explain(&ask("a"), 16).unwrap(), "nouns");
        assert!(again.judge(&ask("b")).unwrap().yes);
        assert!(!again.judge(&ask("c")).unwrap().yes);
        assert_eq!((again.hits, again.misses, again.inner.calls), (3, 0, 0));
        // Another question, or the same with another token budget, is not a hit.
        assert!(again.explain(&ask("a"), 17).is_err());
    }

    #[test]
    fn failed_calls_and_torn_lines_leave_no_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("judgements.jsonl");
        let script = Scripted {
            answers: vec![Err(DynamicsError::Input("endpoint down".into())), Ok("Yes".into())],
            calls: 0,
        };
        let mut judge = CachedJudge::open(script, &path).unwrap();
        assert!(judge.judge(&ask("q")).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "", "a failed call was cached");
        assert!(judge.judge(&ask("q")).unwrap().yes);
        // A killed run's half-written line.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"key\": \"ab").unwrap();
        let mut again = CachedJudge::open(Scripted { answers: vec![], calls: 0 }, &path).unwrap();
        assert!(again.judge(&ask("q")).unwrap().yes);
        assert_eq!(again.hits, 1);
        let mut third =
            CachedJudge::open(Scripted { answers: vec![Ok("No".into())], calls: 0 }, &path).unwrap();
        assert!(!third.judge(&ask("r")).unwrap().yes);
        let mut fourth = CachedJudge::open(Scripted { answers: vec![], calls: 0 }, &path).unwrap();
        assert!(!fourth.judge(&ask("r")).unwrap().yes, "the entry after a torn line was lost");
    }
}

//! A judge behind an OpenAI-compatible chat-completions endpoint (`POST
//! {base_url}/chat/completions`): OpenAI itself, vLLM, llama.cpp's server, Ollama and
//! the like. Deterministic settings (temperature 0). Rate limits (HTTP 429) and server
//! errors (5xx) are retried after the server's `Retry-After` or an exponential backoff;
//! other statuses, timeouts that outlast the retries and replies that are not the
//! protocol's JSON are errors naming the endpoint and what came back.

use std::time::Duration;

use serde_json::{json, Value};

use super::{clean_explanation, parse_verdict, Judge, Message, Verdict};
use crate::error::{DynamicsError, Result};

/// Where the endpoint is and how patient to be with it.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Base URL, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// The model name sent with every request.
    pub model: String,
    /// Bearer token, when the endpoint needs one.
    pub api_key: Option<String>,
    /// Limit on each request, connection to last byte.
    pub timeout: Duration,
    /// Retries after a rate limit, a server error or a transport failure.
    pub max_retries: u32,
    /// First backoff; doubles with every retry. A `Retry-After` header overrides it.
    pub backoff: Duration,
    /// Longest single wait, whatever `Retry-After` says.
    pub max_wait: Duration,
}

impl EndpointConfig {
    /// Defaults for everything but where and which model: 60 s timeout, 4 retries from
    /// 2 s, waits capped at 60 s.
    pub fn new(base_url: &str, model: &str, api_key: Option<String>) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key,
            timeout: Duration::from_secs(60),
            max_retries: 4,
            backoff: Duration::from_secs(2),
            max_wait: Duration::from_secs(60),
        }
    }
}

/// Largest reply read from the endpoint; a chat reply of a few tokens is far smaller.
pub const MAX_REPLY_BYTES: u64 = 1 << 20;

/// A chat-completions client.
pub struct EndpointJudge {
    config: EndpointConfig,
    agent: ureq::Agent,
    url: url::Url,
}

/// The first 200 characters of what a server sent, with control characters (ANSI
/// escapes among them) replaced, so that printing it cannot drive the terminal.
fn excerpt(text: &str) -> String {
    let t: String =
        text.chars().take(200).map(|c| if c.is_control() && c != '\n' { '\u{fffd}' } else { c }).collect();
    if text.chars().count() > 200 {
        format!("{t}…")
    } else {
        t
    }
}

impl EndpointJudge {
    /// A client for `config`. Nothing is sent until the first question.
    pub fn new(config: EndpointConfig) -> Result<Self> {
        let bad = |why: &str| DynamicsError::Input(format!("judge endpoint {:?}: {why}", config.base_url));
        let mut base = url::Url::parse(&config.base_url).map_err(|e| bad(&format!("not a URL ({e})")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("expected an http:// or https:// base URL"));
        }
        // A key in the URL would be written to tables, the cache and the report; keys
        // come from the environment (--judge-key-env) and go in the Authorization header.
        if !base.username().is_empty() || base.password().is_some() || base.query().is_some() {
            return Err(bad(
                "carries credentials or a query string; give the bare base URL and pass the key \
                 through the environment (--judge-key-env)",
            ));
        }
        if base.fragment().is_some() {
            return Err(bad("has a #fragment; give the bare base URL"));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let url = base.join("chat/completions").map_err(|e| bad(&format!("cannot add the path ({e})")))?;
        // A redirect would turn the POST into a body-less GET whose answer is cached as
        // a verdict: never follow one.
        let agent = ureq::AgentBuilder::new().timeout(config.timeout).redirects(0).build();
        Ok(Self { config, agent, url })
    }

    fn error(&self, message: String) -> DynamicsError {
        DynamicsError::Judge { judge: self.id(), message }
    }

    /// The reply's text, after as many retries as allowed.
    fn complete(&self, messages: &[Message], max_tokens: usize) -> Result<String> {
        let body = json!({
            "model": self.config.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
        })
        .to_string();
        let mut backoff = self.config.backoff;
        let mut attempt = 0;
        loop {
            let mut request = self.agent.post(self.url.as_str()).set("Content-Type", "application/json");
            if let Some(key) = &self.config.api_key {
                request = request.set("Authorization", &format!("Bearer {key}"));
            }
            let (failure, wait) = match request.send_string(&body) {
                Ok(response) if (300..400).contains(&response.status()) => {
                    let to = response.header("Location").map(excerpt).unwrap_or_default();
                    return Err(self.error(format!(
                        "HTTP {} redirects to {to:?}; redirects are not followed, give the final base URL",
                        response.status()
                    )));
                }
                Ok(response) => {
                    use std::io::Read;
                    let mut bytes = Vec::new();
                    response
                        .into_reader()
                        .take(MAX_REPLY_BYTES + 1)
                        .read_to_end(&mut bytes)
                        .map_err(|e| self.error(format!("reading the reply failed: {e}")))?;
                    if bytes.len() as u64 > MAX_REPLY_BYTES {
                        return Err(self.error(format!("the reply is larger than {MAX_REPLY_BYTES} bytes")));
                    }
                    return self.content(&String::from_utf8_lossy(&bytes));
                }
                Err(ureq::Error::Status(code, response)) if code == 429 || code >= 500 => {
                    let retry_after = response
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map(Duration::from_secs_f64);
                    let text = response.into_string().unwrap_or_default();
                    (format!("HTTP {code}: {}", excerpt(&text)), retry_after)
                }
                Err(ureq::Error::Status(code, response)) => {
                    let text = response.into_string().unwrap_or_default();
                    return Err(self.error(format!("HTTP {code}: {}", excerpt(&text))));
                }
                Err(ureq::Error::Transport(t)) => (format!("{t}"), None),
            };
            if attempt >= self.config.max_retries {
                return Err(self.error(format!("{failure} (gave up after {} attempts)", attempt + 1)));
            }
            attempt += 1;
            std::thread::sleep(wait.unwrap_or(backoff).min(self.config.max_wait));
            backoff *= 2;
        }
    }

    /// `choices[0].message.content` of a reply, or an error quoting it.
    fn content(&self, text: &str) -> Result<String> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| self.error(format!("the reply is not JSON ({e}): {}", excerpt(text))))?;
        value["choices"][0]["message"]["content"].as_str().map(str::to_string).ok_or_else(|| {
            self.error(format!("the reply has no choices[0].message.content: {}", excerpt(text)))
        })
    }
}

impl Judge for EndpointJudge {
    fn id(&self) -> String {
        format!("endpoint:{}#{}", self.config.base_url, self.config.model)
    }

    fn explain(&mut self, messages: &[Message], max_tokens: usize) -> Result<String> {
        Ok(clean_explanation(&self.complete(messages, max_tokens)?))
    }

    fn judge(&mut self, messages: &[Message]) -> Result<Verdict> {
        Ok(parse_verdict(&self.complete(messages, 4)?))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::test_server::{Reply, TestServer};
    use super::super::Role;
    use super::*;

    fn judge_for(server: &TestServer, retries: u32, timeout: Duration) -> EndpointJudge {
        let mut config = EndpointConfig::new(&server.base_url, "judge-model", Some("sk-test".into()));
        config.max_retries = retries;
        config.timeout = timeout;
        config.backoff = Duration::from_millis(10);
        EndpointJudge::new(config).unwrap()
    }

    fn question() -> Vec<Message> {
        vec![
            Message { role: Role::System, content: "be brief".into() },
            Message { role: Role::User, content: "Q?".into() },
        ]
    }

    #[test]
    fn speaks_the_chat_completions_protocol() {
        let server = TestServer::start(vec![
            Reply::says("  \"animal nouns\".\n"),
            Reply::says("Yes."),
            Reply::says("No"),
        ]);
        let mut judge = judge_for(&server, 0, Duration::from_secs(5));
        assert_eq!(judge.explain(&question(), 24).unwrap(), "animal nouns");
        assert!(judge.judge(&question()).unwrap().yes);
        assert!(!judge.judge(&question()).unwrap().yes);
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0].request_line, "POST /v1/chat/completions HTTP/1.1");
        assert_eq!(requests[0].header("authorization"), Some("Bearer sk-test"));
        let body: Value = serde_json::from_str(&requests[0].body).unwrap();
        assert_eq!(body["model"], "judge-model");
        assert_eq!(body["temperature"], 0);
        assert_eq!(body["max_tokens"], 24);
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][1], json!({"role": "user", "content": "Q?"}));
        assert_eq!(judge.id(), format!("endpoint:{}#judge-model", server.base_url));
    }

    #[test]
    fn redirects_huge_replies_and_terminal_escapes_are_refused_or_defused() {
        let server = TestServer::start(vec![
            Reply::text(302, "").header("Location", "http://elsewhere.invalid/v1/chat/completions"),
            Reply::says(&"x".repeat(2 * MAX_REPLY_BYTES as usize)),
            Reply::text(401, "\u{1b}[31mred\u{1b}[0m"),
            Reply::says(&"word ".repeat(4000)),
            Reply::says("\u{1b}[2Jcleared"),
        ]);
        let mut judge = judge_for(&server, 3, Duration::from_secs(5));
        let err = judge.judge(&question()).unwrap_err().to_string();
        assert!(err.contains("HTTP 302 redirects") && err.contains("elsewhere.invalid"), "{err}");
        let err = judge.judge(&question()).unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
        let err = judge.judge(&question()).unwrap_err().to_string();
        assert!(err.contains("red") && !err.contains('\u{1b}'), "{err:?}");
        assert!(
            judge.explain(&question(), 8).unwrap().chars().count() <= super::super::MAX_EXPLANATION_CHARS
        );
        assert_eq!(judge.explain(&question(), 8).unwrap(), "[2Jcleared");
        // Every reply was taken once: the redirect was not followed, nothing retried.
        assert_eq!(server.requests().len(), 5);
    }

    #[test]
    fn a_key_or_query_in_the_url_is_refused_and_paths_are_joined() {
        for url in
            ["http://user:sk-secret@127.0.0.1:9/v1", "http://127.0.0.1:9/v1?key=sk-secret", "ftp://h/v1"]
        {
            let Err(err) = EndpointJudge::new(EndpointConfig::new(url, "m", None)) else {
                panic!("{url} accepted")
            };
            assert!(err.to_string().contains("judge endpoint"), "{url}: {err}");
        }
        for (base, want) in [
            ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/chat/completions"),
            ("http://127.0.0.1:9/v1/", "http://127.0.0.1:9/v1/chat/completions"),
            ("http://127.0.0.1:9", "http://127.0.0.1:9/chat/completions"),
        ] {
            let judge = EndpointJudge::new(EndpointConfig::new(base, "m", None)).unwrap();
            assert_eq!(judge.url.as_str(), want);
        }
    }

    #[test]
    fn waits_out_rate_limits_and_server_errors() {
        let server = TestServer::start(vec![
            Reply::text(429, "{\"error\": \"slow down\"}").header("Retry-After", "0.2"),
            Reply::text(503, "busy"),
            Reply::says("Yes"),
        ]);
        let mut judge = judge_for(&server, 3, Duration::from_secs(5));
        let started = Instant::now();
        assert!(judge.judge(&question()).unwrap().yes);
        assert!(started.elapsed() >= Duration::from_millis(200), "Retry-After was not honoured");
        assert_eq!(server.requests().len(), 3);
    }

    #[test]
    fn gives_up_on_a_rate_limit_that_lasts() {
        let server = TestServer::start(vec![Reply::text(429, "limit"), Reply::text(429, "limit")]);
        let mut judge = judge_for(&server, 1, Duration::from_secs(5));
        let err = judge.judge(&question()).unwrap_err().to_string();
        assert!(err.contains("HTTP 429: limit") && err.contains("gave up after 2 attempts"), "{err}");
        assert!(err.contains(&server.base_url), "{err}");
    }

    #[test]
    fn other_statuses_fail_at_once_with_the_body() {
        let server = TestServer::start(vec![Reply::text(401, "{\"error\": \"bad key\"}")]);
        let mut judge = judge_for(&server, 3, Duration::from_secs(5));
        let err = judge.explain(&question(), 8).unwrap_err().to_string();
        assert!(err.contains("HTTP 401") && err.contains("bad key"), "{err}");
        assert_eq!(server.requests().len(), 1);
    }

    #[test]
    fn malformed_replies_are_errors_that_quote_them() {
        let server = TestServer::start(vec![
            Reply::text(200, "<html>gateway</html>"),
            Reply::json(200, json!({"choices": []})),
            Reply::json(200, json!({"choices": [{"message": {"content": null, "refusal": "no"}}]})),
        ]);
        let mut judge = judge_for(&server, 0, Duration::from_secs(5));
        let err = judge.judge(&question()).unwrap_err().to_string();
        assert!(err.contains("not JSON") && err.contains("<html>gateway"), "{err}");
        for _ in 0..2 {
            let err = judge.judge(&question()).unwrap_err().to_string();
            assert!(err.contains("no choices[0].message.content"), "{err}");
        }
    }

    #[test]
    fn a_slow_endpoint_times_out() {
        let server = TestServer::start(vec![Reply::says("Yes").after(Duration::from_secs(3))]);
        let mut judge = judge_for(&server, 0, Duration::from_millis(300));
        let started = Instant::now();
        let err = judge.judge(&question()).unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(2), "the timeout was not applied");
        assert!(err.contains("gave up after 1 attempts") && err.to_lowercase().contains("time"), "{err}");
    }

    #[test]
    fn an_endpoint_that_is_down_is_named() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut config = EndpointConfig::new(&format!("http://127.0.0.1:{port}/v1"), "m", None);
        config.max_retries = 1;
        config.backoff = Duration::from_millis(10);
        let mut judge = EndpointJudge::new(config).unwrap();
        let err = judge.judge(&question()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("127.0.0.1:{port}")) && err.contains("gave up after 2 attempts"),
            "{err}"
        );
        assert!(EndpointJudge::new(EndpointConfig::new("ftp://x", "m", None)).is_err());
    }
}

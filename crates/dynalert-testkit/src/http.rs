//! A small blocking HTTP client for talking to the processes under test.
//!
//! reqwest's blocking client panics when it is used on a thread that drives a Tokio runtime,
//! which is exactly where a `#[tokio::test]` calls us from. So every request (and the client's
//! construction) runs on a short-lived thread of its own; callers never have to care whether
//! they are in async code.

use std::time::Duration;

use anyhow::{Context, Result};

/// What came back: the status code and the body as text.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

impl HttpResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, with the body in the error if it is not JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("response (HTTP {}) is not JSON: {}", self.status, self.body))
    }
}

/// A blocking HTTP client that is safe to call from sync and async tests alike.
#[derive(Clone)]
pub struct Http {
    client: reqwest::blocking::Client,
}

impl Http {
    /// A client with short timeouts suited to loopback servers (connect 2 s, request 15 s).
    pub fn new() -> Result<Self> {
        let client = off_runtime(|| {
            reqwest::blocking::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(15))
                .build()
        })
        .context("building the HTTP client")?;
        Ok(Self { client })
    }

    /// `GET url` with the given query parameters (URL-encoded for you).
    pub fn get(&self, url: &str, query: &[(&str, &str)]) -> Result<HttpResponse> {
        self.send(self.client.get(url).query(query), "GET", url)
    }

    /// `POST url` with a body and its content type.
    pub fn post(&self, url: &str, content_type: &str, body: String) -> Result<HttpResponse> {
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.send(request, "POST", url)
    }

    /// `PUT url` with a body and its content type.
    pub fn put(&self, url: &str, content_type: &str, body: String) -> Result<HttpResponse> {
        let request = self
            .client
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.send(request, "PUT", url)
    }

    /// `DELETE url`.
    pub fn delete(&self, url: &str) -> Result<HttpResponse> {
        self.send(self.client.delete(url), "DELETE", url)
    }

    fn send(
        &self,
        request: reqwest::blocking::RequestBuilder,
        method: &str,
        url: &str,
    ) -> Result<HttpResponse> {
        off_runtime(move || -> reqwest::Result<HttpResponse> {
            let response = request.send()?;
            let status = response.status().as_u16();
            let body = response.text()?;
            Ok(HttpResponse { status, body })
        })
        .with_context(|| format!("{method} {url}"))
    }
}

/// Runs `f` on a fresh thread (which has no Tokio runtime) and returns its result.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

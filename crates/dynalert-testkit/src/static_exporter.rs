//! [`StaticExporter`]: a `/metrics` endpoint inside the test process that serves a fixed
//! Prometheus text exposition, standing in for an exporter that has no Debian package or no
//! database to watch on the test machine (Elasticsearch, MongoDB, kube-state-metrics, …).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::prometheus::ScrapeTarget;

/// Serves its exposition on every path of `127.0.0.1:<port>`, one request per connection;
/// stopped on drop.
pub struct StaticExporter {
    port: u16,
    exposition: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StaticExporter {
    /// Starts serving `exposition` (Prometheus text format) on a free loopback port.
    pub fn start(exposition: impl Into<String>) -> Result<StaticExporter> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 for an exporter")?;
        let port = listener.local_addr()?.port();
        let exposition = Arc::new(Mutex::new(with_final_newline(exposition.into())));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (exposition, stop) = (exposition.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("static-exporter-{port}"))
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let body = exposition.lock().unwrap().clone();
                        if let Err(error) = answer(stream, &body) {
                            eprintln!("static exporter on port {port}: {error:#}");
                        }
                    }
                })
                .context("spawning the static exporter thread")?
        };
        Ok(StaticExporter {
            port,
            exposition,
            stop,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves `exposition` from the next scrape on.
    pub fn set(&self, exposition: impl Into<String>) {
        *self.exposition.lock().unwrap() = with_final_newline(exposition.into());
    }

    /// A scrape job for [`crate::Prometheus`] reading this endpoint.
    pub fn scrape_target(&self, job: impl Into<String>) -> ScrapeTarget {
        ScrapeTarget::new(job, self.port)
    }
}

impl Drop for StaticExporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The text format requires a final newline.
fn with_final_newline(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Reads one request's head and answers it with `body`, closing the connection.
fn answer(stream: TcpStream, body: &str) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(()); // a bare connect, e.g. the wake-up from Drop
    }
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Http;

    #[test]
    fn serves_and_replaces_its_exposition() {
        let exporter = StaticExporter::start("mysql_up 1").unwrap();
        let http = Http::new().unwrap();
        let url = format!("http://127.0.0.1:{}/metrics", exporter.port());
        let response = http.get(&url, &[]).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, "mysql_up 1\n");
        exporter.set("mysql_up 0\n");
        assert_eq!(http.get(&url, &[]).unwrap().body, "mysql_up 0\n");
    }
}

//! What the `bench-*` commands share: starting servers that die with the run, a minimal
//! HTTP/1.1 client over std's TcpStream (no HTTP crate in xtask), describing the machine, and
//! writing a command's section of docs/benchmarks.md.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};

/// How long a server may take to answer its readiness endpoint.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one HTTP response may take (a 35 MB plain body, a slow Pushgateway).
pub(crate) const HTTP_TIMEOUT: Duration = Duration::from_secs(300);

/// Where `cargo build` puts the binary: `CARGO_TARGET_DIR` when set, else `target/`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    root.join(std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into()))
}

/// A port that was free a moment ago. The server binds it a little later; on a loopback
/// interface nothing else is expected to take it in between.
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Samples in a text exposition: the lines that are neither comments nor blank.
pub(crate) fn count_series(body: &str) -> usize {
    body.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .count()
}

/// Now, in UTC (`date` formats it; std has no calendar).
pub(crate) fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(
            || format!("{} s since the epoch", unix_seconds()),
            |s| s.trim().to_owned(),
        )
}

pub(crate) fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// CPUs as `nproc` counts them, the CPU model and the total memory.
pub(crate) fn machine() -> String {
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown CPU", |(_, name)| name.trim());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = kib_field(&meminfo, "MemTotal:").map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
    format!("{cpus} CPUs ({model}), {mem_gib:.1} GiB RAM")
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub(crate) fn load_average() -> String {
    let loadavg = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    if fields.len() == 3 {
        fields.join(" ")
    } else {
        "unknown".to_owned()
    }
}

/// Replaces the marked section of `path`, or appends one (the file may not exist yet).
pub(crate) fn write_section(path: &Path, markers: (&str, &str), section: &str) -> Result<()> {
    let (start_marker, end_marker) = markers;
    let old = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let block = format!("{start_marker}\n{section}{end_marker}");
    let new = match (old.find(start_marker), old.find(end_marker)) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{block}{}", &old[..start], &old[end + end_marker.len()..])
        }
        _ if old.is_empty() => format!("{block}\n"),
        _ => format!("{}\n\n{block}\n", old.trim_end()),
    };
    fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

/// Spawns `command` with its output in `log` and polls `ready_path` until it answers 200.
pub(crate) fn start(
    mut command: Command,
    port: u16,
    ready_path: &str,
    log: &Path,
) -> Result<(ChildGuard, Duration)> {
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    let mut guard = ChildGuard {
        child,
        log: log.to_owned(),
    };
    loop {
        // Refused connections and 503s both mean "not yet".
        if let Ok((response, _)) = request(port, "GET", ready_path, "", b"")
            && response.status == 200
        {
            return Ok((guard, started.elapsed()));
        }
        if let Some(status) = guard.child.try_wait()? {
            bail!(
                "{:?} exited ({status}):\n{}",
                command.get_program(),
                guard.log_tail()
            );
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!(
                "{ready_path} was not 200 after {READY_TIMEOUT:?}:\n{}",
                guard.log_tail()
            );
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// One HTTP/1.1 request on a new connection, and the time from sending it to its last byte.
/// `Connection: close` makes the end of the stream the end of the response; the clock starts
/// after connecting, because Prometheus keeps its scrape connections open.
pub(crate) fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> Result<(Response, Duration)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes())?;
    // A server that answers early (an error) may close before the body is all sent: its
    // answer is what matters, so a failed write falls through to reading it.
    let _ = stream.write_all(body);
    // Large reads: `read_to_end`'s smaller ones add tens of ms to a 35 MB plain body.
    let mut raw = Vec::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        match stream.read(&mut buffer)? {
            0 => break,
            n => raw.extend_from_slice(&buffer[..n]),
        }
    }
    let took = started.elapsed();
    Ok((parse_response(&raw)?, took))
}

pub(crate) fn parse_response(raw: &[u8]) -> Result<Response> {
    let end = find(raw, b"\r\n\r\n").context("HTTP response without a header end")?;
    let head = std::str::from_utf8(&raw[..end]).context("HTTP header is not UTF-8")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad HTTP status line in {head:?}"))?;
    let chunked = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("transfer-encoding") && value.trim() == "chunked"
        })
    });
    let body = &raw[end + 4..];
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(Response { status, body })
}

/// Decodes a `Transfer-Encoding: chunked` body (Go's server uses it for large responses).
pub(crate) fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").context("truncated chunk size")?;
        let size = std::str::from_utf8(&data[..line_end])?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size {size:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        ensure!(data.len() >= size + 2, "truncated chunk");
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// A spawned server, killed and reaped on drop so that no run leaves one behind, errors included.
pub(crate) struct ChildGuard {
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
}

impl ChildGuard {
    pub(crate) fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory under the system temp dir, removed on drop unless kept.
pub struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    pub fn new(prefix: &str, keep: bool) -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path, keep })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Resident memory now and at its peak, in KiB.
#[derive(Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// `VmRSS` and `VmHWM` of process `pid`.
pub fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field =
        |name: &str| kib_field(&status, name).with_context(|| format!("no {name} in {path}"));
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// A `Name:   1234 kB` line of a `/proc` file, in KiB.
pub fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

//! The synthetic exporter: mysqld_exporter and redis_exporter series for N tenants, served
//! over HTTP by a thread of this process.

use super::*;

/// The raw series of mysqld_exporter and redis_exporter for every tenant × 2 instances, with
/// the metric names and labels the packs read. Values are a pure function of tenant, instance
/// and metric (counters grow at a fixed rate), a few percent above the usual thresholds.
pub(super) struct Synthetic {
    pub(super) tenants: Vec<String>,
    pub(super) packs: Vec<String>,
    pub(super) started: Instant,
}

impl Synthetic {
    pub(super) fn new(tenants: Vec<String>, packs: Vec<String>) -> Self {
        Self {
            tenants,
            packs,
            started: Instant::now(),
        }
    }

    pub(super) fn render(&self) -> String {
        let t = self.started.elapsed().as_secs_f64();
        let mut out = String::with_capacity(self.tenants.len() * 8192);
        for pack in &self.packs {
            match pack.as_str() {
                "mariadb" => self.mariadb(&mut out, t),
                "redis" => self.redis(&mut out, t),
                _ => {}
            }
        }
        out
    }

    /// `# TYPE`, then one sample per tenant, instance and extra label set for which `value`
    /// (tenant index, instance, extra index) gives a number.
    pub(super) fn family(
        &self,
        out: &mut String,
        (name, kind, service): (&str, &str, &str),
        extra: &[&str],
        value: impl Fn(usize, usize, usize) -> Option<f64>,
    ) {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let extra = if extra.is_empty() { &[""][..] } else { extra };
        for (i, tenant) in self.tenants.iter().enumerate() {
            for j in 0..INSTANCES {
                for (k, labels) in extra.iter().enumerate() {
                    if let Some(v) = value(i, j, k) {
                        let _ = write!(
                            out,
                            "{name}{{tenant=\"{tenant}\",instance=\"{tenant}-{service}-{j}:9100\""
                        );
                        if !labels.is_empty() {
                            out.push(',');
                            out.push_str(labels);
                        }
                        let _ = writeln!(out, "}} {v}");
                    }
                }
            }
        }
    }

    pub(super) fn mariadb(&self, out: &mut String, t: f64) {
        let s = "mysql";
        let up = |i, j| unit(i, j, 1) >= P_DOWN;
        let live = |i, j, v: f64| up(i, j).then_some(v);
        let replica = |i, j| (j == 1 && up(i, j)).then_some(());
        self.family(out, ("mysql_up", "gauge", s), &[], |i, j, _| {
            Some(if up(i, j) { 1.0 } else { 0.0 })
        });
        let gauges = [
            (
                "mysql_global_status_threads_connected",
                2,
                (5.0, 60.0),
                (85.0, 140.0),
            ),
            (
                "mysql_global_status_threads_running",
                3,
                (1.0, 20.0),
                (45.0, 80.0),
            ),
        ];
        for (name, salt, normal, high) in gauges {
            self.family(out, (name, "gauge", s), &[], |i, j, _| {
                live(i, j, level(i, j, salt, normal, high).round())
            });
        }
        self.family(
            out,
            ("mysql_global_variables_max_connections", "gauge", s),
            &[],
            |i, j, _| live(i, j, 151.0),
        );
        // Per-minute rates, usual and high. Rates jitter a little from one evaluation to the
        // next, so both ranges stay clear of every threshold a tenant can have (custom values
        // are 0.5 to 2 times the defaults of 10, 10, 1 and 60 per minute).
        let counters = [
            (
                "mysql_global_status_slow_queries",
                4,
                (0.0, 2.0),
                (25.0, 40.0),
            ),
            (
                "mysql_global_status_aborted_connects",
                5,
                (0.0, 2.0),
                (25.0, 40.0),
            ),
            (
                "mysql_global_status_innodb_deadlocks",
                6,
                (0.0, 0.2),
                (2.5, 5.0),
            ),
            (
                "mysql_global_status_innodb_row_lock_waits",
                7,
                (0.0, 12.0),
                (130.0, 200.0),
            ),
        ];
        for (name, salt, normal, high) in counters {
            self.family(out, (name, "untyped", s), &[], |i, j, _| {
                live(
                    i,
                    j,
                    counter(i, j, salt, level(i, j, salt, normal, high) / 60.0, t),
                )
            });
        }
        self.family(
            out,
            ("mysql_slave_status_seconds_behind_master", "gauge", s),
            &[],
            |i, j, _| replica(i, j).map(|()| level(i, j, 8, (0.0, 5.0), (40.0, 300.0)).round()),
        );
        for (name, salt) in [
            ("mysql_slave_status_slave_io_running", 9),
            ("mysql_slave_status_slave_sql_running", 10),
        ] {
            self.family(out, (name, "gauge", s), &[], |i, j, _| {
                replica(i, j).map(|()| {
                    if unit(i, j, salt) < P_HIGH / 2.0 {
                        0.0
                    } else {
                        1.0
                    }
                })
            });
        }
    }

    pub(super) fn redis(&self, out: &mut String, t: f64) {
        let s = "redis";
        const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
        const COMMANDS: [&str; 4] = [
            "cmd=\"get\"",
            "cmd=\"set\"",
            "cmd=\"lpush\"",
            "cmd=\"brpop\"",
        ];
        let up = |i, j| unit(i, j, 31) >= P_DOWN;
        let live = |i, j, v: f64| up(i, j).then_some(v);
        self.family(out, ("redis_up", "gauge", s), &[], |i, j, _| {
            Some(if up(i, j) { 1.0 } else { 0.0 })
        });
        // A tenth of the instances have no maxmemory (0) and are left out of the ratio.
        let max_memory = |i, j| if unit(i, j, 32) < 0.1 { 0.0 } else { GIB };
        self.family(
            out,
            ("redis_memory_max_bytes", "gauge", s),
            &[],
            |i, j, _| live(i, j, max_memory(i, j)),
        );
        self.family(
            out,
            ("redis_memory_used_bytes", "gauge", s),
            &[],
            |i, j, _| {
                live(
                    i,
                    j,
                    (GIB * level(i, j, 33, (0.2, 0.8), (0.9, 0.99))).round(),
                )
            },
        );
        self.family(
            out,
            ("redis_connected_clients", "gauge", s),
            &[],
            |i, j, _| {
                live(
                    i,
                    j,
                    level(i, j, 34, (10.0, 800.0), (1100.0, 2000.0)).round(),
                )
            },
        );
        let keys: Vec<String> = DIMENSIONS[0]
            .values
            .iter()
            .map(|queue| format!("db=\"db0\",key=\"{queue}\""))
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.family(out, ("redis_key_size", "gauge", s), &keys, |i, j, k| {
            live(
                i,
                j,
                level(i, j, 35 + k as u64, (0.0, 300.0), (600.0, 5000.0)).round(),
            )
        });
        self.family(
            out,
            ("redis_rejected_connections_total", "counter", s),
            &[],
            |i, j, _| {
                live(
                    i,
                    j,
                    counter(i, j, 40, level(i, j, 40, (0.0, 0.0), (1.0, 5.0)) / 60.0, t),
                )
            },
        );
        // Calls per second per command, and the instance's mean latency in ms.
        let calls = |i, j, k: usize| level(i, j, 41 + k as u64, (50.0, 500.0), (50.0, 500.0));
        let latency_ms = |i, j| level(i, j, 50, (0.01, 2.0), (22.0, 30.0));
        // INFO's total_commands_processed: the calls of every command.
        self.family(
            out,
            ("redis_commands_processed_total", "counter", s),
            &[],
            |i, j, _| {
                let all_calls = (0..COMMANDS.len()).map(|k| calls(i, j, k)).sum();
                live(i, j, counter(i, j, 41, all_calls, t).floor())
            },
        );
        self.family(
            out,
            ("redis_commands_duration_seconds_total", "counter", s),
            &COMMANDS,
            |i, j, k| {
                live(
                    i,
                    j,
                    counter(
                        i,
                        j,
                        45 + k as u64,
                        calls(i, j, k) * latency_ms(i, j) / 1000.0,
                        t,
                    ),
                )
            },
        );
        // INFO's total_error_replies (failed and rejected commands of every command).
        self.family(
            out,
            ("redis_total_error_replies", "counter", s),
            &[],
            |i, j, _| {
                let per_second = COMMANDS.len() as f64 * level(i, j, 60, (0.0, 0.007), (0.2, 0.5));
                live(i, j, counter(i, j, 60, per_second, t))
            },
        );
        self.family(out, ("redis_master_link_up", "gauge", s), &[], |i, j, _| {
            (j == 1 && up(i, j)).then(|| if unit(i, j, 70) < P_HIGH { 0.0 } else { 1.0 })
        });
    }
}

/// Uniform in [0, 1), a pure function of tenant, instance and salt.
pub(super) fn unit(i: usize, j: usize, salt: u64) -> f64 {
    let seed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ ((j as u64) << 56)
        ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (mix(mix(seed)) >> 11) as f64 / (1u64 << 53) as f64
}

/// A value in `normal`, or for a share `P_HIGH` of the instances in `high`.
pub(super) fn level(i: usize, j: usize, salt: u64, normal: (f64, f64), high: (f64, f64)) -> f64 {
    let u = unit(i, j, salt);
    if u < P_HIGH {
        high.0 + (high.1 - high.0) * u / P_HIGH
    } else {
        normal.0 + (normal.1 - normal.0) * (u - P_HIGH) / (1.0 - P_HIGH)
    }
}

/// A counter that started somewhere below 1000 and grows by `per_second`.
pub(super) fn counter(i: usize, j: usize, salt: u64, per_second: f64, t: f64) -> f64 {
    (1000.0 * unit(i, j, salt ^ 0xC0FF_EE00)).floor() + per_second * t
}

/// The synthetic exporter served over HTTP/1.1 on 127.0.0.1 by a thread of this process,
/// stopped (and joined) on drop.
pub(super) struct SyntheticExporter {
    pub(super) port: u16,
    pub(super) synthetic: Arc<Synthetic>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) thread: Option<JoinHandle<()>>,
}

impl SyntheticExporter {
    pub(super) fn start(tenants: Vec<String>, packs: Vec<String>) -> Result<Self> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding the synthetic exporter")?;
        let port = listener.local_addr()?.port();
        let synthetic = Arc::new(Synthetic::new(tenants, packs));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (synthetic, stop) = (Arc::clone(&synthetic), Arc::clone(&stop));
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let synthetic = Arc::clone(&synthetic);
                    thread::spawn(move || {
                        let _ = serve_scrape(stream, &synthetic);
                    });
                }
            })
        };
        Ok(Self {
            port,
            synthetic,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SyntheticExporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so that the thread sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one request: the exposition on `/metrics`, 404 elsewhere; then closes.
pub(super) fn serve_scrape(mut stream: TcpStream, synthetic: &Synthetic) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut buffer = [0; 4096];
    while find(&head, b"\r\n\r\n").is_none() && head.len() < 64 * 1024 {
        match stream.read(&mut buffer)? {
            0 => return Ok(()),
            n => head.extend_from_slice(&buffer[..n]),
        }
    }
    let request = String::from_utf8_lossy(&head);
    let path = request.split(' ').nth(1).unwrap_or("");
    let (status, body) = if path == "/metrics" || path.starts_with("/metrics?") {
        ("200 OK", synthetic.render())
    } else {
        ("404 Not Found", "not found\n".to_owned())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_values_are_stable_and_some_are_high() {
        let synthetic = Synthetic::new(tenant_names(200), vec!["mariadb".into(), "redis".into()]);
        let body = synthetic.render();
        let connected = values(&body, "mysql_global_status_threads_connected");
        assert!(connected.iter().any(|&v| v > 95.0));
        assert!(connected.iter().filter(|&&v| v > 80.0).count() < connected.len() / 5);
        assert!(values(&body, "mysql_up").contains(&0.0));
        assert!(body.contains("redis_key_size{tenant=\"tenant-0001\",instance=\"tenant-0001-redis-0:9100\",db=\"db0\",key=\"email\"}"));
        assert_eq!(
            level(3, 1, 7, (0.0, 1.0), (2.0, 3.0)),
            level(3, 1, 7, (0.0, 1.0), (2.0, 3.0))
        );
    }
}

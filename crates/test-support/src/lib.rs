//! Test helpers shared by every OneFlow crate: a fresh PostgreSQL database per
//! test, a Redis availability check, and real service binaries started on
//! port 0 with their bound address read from their own logs.
//!
//! The database and Redis helpers skip with a printed notice on a machine
//! without those servers, except under `CI=true`, where they fail instead: in
//! CI a skipped database test would be a silent hole.
#![allow(
    clippy::panic,
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test-only crate: failing loudly is the point"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};

/// True when running under CI (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn unavailable(what: &str, why: &str) -> Option<String> {
    if in_ci() {
        panic!("{what} is required under CI=true but unavailable: {why}");
    }
    eprintln!("NOTICE: skipping: {what} unavailable here ({why}); CI=true makes this a failure");
    None
}

/// A new, empty PostgreSQL database; its URL. `None` (with a notice) when no
/// server runs here, a panic under CI.
pub async fn fresh_postgres() -> Option<String> {
    let admin = std::env::var("ONEFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let pool = match tokio::time::timeout(
        Duration::from_secs(5),
        sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&admin),
    )
    .await
    {
        Ok(Ok(pool)) => pool,
        Ok(Err(e)) => return unavailable("PostgreSQL", &e.to_string()),
        Err(_) => return unavailable("PostgreSQL", "connect timed out"),
    };
    let name = format!("oneflow_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

/// The Redis URL when a server answers PING; `None` (with a notice) otherwise,
/// a panic under CI.
pub async fn redis() -> Option<String> {
    let url = std::env::var("ONEFLOW_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let hostport = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    let ping = async {
        let mut s = tokio::net::TcpStream::connect(&hostport).await?;
        s.write_all(b"PING\r\n").await?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf.starts_with(b"+PONG"))
    };
    match tokio::time::timeout(Duration::from_secs(3), ping).await {
        Ok(Ok(true)) => Some(url),
        Ok(Ok(false)) => unavailable("Redis", "unexpected PING answer"),
        Ok(Err(e)) => unavailable("Redis", &e.to_string()),
        Err(_) => unavailable("Redis", "PING timed out"),
    }
}

/// A unique key prefix, so tests sharing one Redis never see each other's keys.
pub fn unique_prefix() -> String {
    format!("oneflow-test-{}", uuid::Uuid::new_v4().simple())
}

/// Path of a workspace binary built by `cargo test --workspace`.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` so every service binary is built",
        path.display()
    );
    path
}

/// A running service process.
pub struct Service {
    /// The process.
    pub child: Child,
    /// The address it logged as bound.
    pub addr: SocketAddr,
    /// Everything it wrote to stdout.
    pub stdout: Arc<Mutex<String>>,
    /// Everything it wrote to stderr (its logs).
    pub logs: Arc<Mutex<String>>,
}

impl Service {
    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("running child");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// The logs so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }
}

/// The `addr` of a JSON log line whose message ends in "listening".
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if !v["message"].as_str()?.ends_with("listening") {
        return None;
    }
    v["addr"].as_str()?.parse().ok()
}

fn pump<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    reader: R,
    sink: Arc<Mutex<String>>,
    addr_tx: Option<tokio::sync::mpsc::Sender<SocketAddr>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(tx) = &addr_tx
                && let Some(addr) = listening_addr(&line)
            {
                let _ = tx.send(addr).await;
            }
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
}

/// Starts binary `name` with `args` and `envs` (JSON logs forced) and waits
/// until it logs its bound address.
pub async fn spawn(name: &str, args: &[&str], envs: &[(&str, &str)]) -> Service {
    let mut cmd = Command::new(bin(name));
    cmd.args(args)
        .env("ONEFLOW__TELEMETRY__LOG_FORMAT", "json")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let logs = Arc::new(Mutex::new(String::new()));
    let stdout = Arc::new(Mutex::new(String::new()));
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    pump(child.stderr.take().expect("stderr"), logs.clone(), Some(tx));
    pump(child.stdout.take().expect("stdout"), stdout.clone(), None);
    let addr = match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
        Ok(Some(addr)) => addr,
        _ => {
            let _ = child.start_kill();
            panic!(
                "{name} did not report a listening address; logs:\n{}",
                logs.lock().unwrap()
            );
        }
    };
    Service {
        child,
        addr,
        stdout,
        logs,
    }
}

/// Runs binary `name` to completion; its stdout, or a panic with its stderr.
pub async fn run(name: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(bin(name));
    cmd.args(args)
        .env("ONEFLOW__TELEMETRY__LOG_FORMAT", "json")
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap_or_else(|e| panic!("run {name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits, when needed, until at least `margin` remains before the next UTC
/// minute, so a test that counts requests in per-minute windows is not split
/// across two windows. (A wait for a window, not a timed assertion.)
pub async fn away_from_minute_boundary(margin: Duration) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let into_minute = Duration::from_millis(u64::try_from(now.as_millis() % 60_000).unwrap_or(0));
    let left = Duration::from_secs(60).saturating_sub(into_minute);
    if left < margin {
        tokio::time::sleep(left + Duration::from_millis(20)).await;
    }
}

/// Redis servers this test started (a Sentinel, a Cluster's nodes); killed on drop.
#[derive(Debug)]
pub struct RedisProcesses {
    /// The URL(s) to configure, comma-separated for several.
    pub url: String,
    children: Vec<std::process::Child>,
    _dir: std::path::PathBuf,
}

impl Drop for RedisProcesses {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("oneflow-redis-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn spawn_redis(args: &[&str]) -> std::io::Result<std::process::Child> {
    std::process::Command::new("redis-server")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
}

async fn wait_until(mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if ready() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A Redis Sentinel (started here from `redis-server --sentinel`) watching the
/// local Redis as primary `name`; its URL. `None` (with a notice) when the
/// local Redis or `redis-server` is missing, a panic under CI.
pub async fn sentinel(name: &str) -> Option<RedisProcesses> {
    let primary = redis().await?;
    let hostport = primary.trim_start_matches("redis://").split('/').next()?.to_owned();
    let (host, port) = hostport.rsplit_once(':')?;
    let dir = scratch_dir();
    let sport = free_port();
    let conf = dir.join("sentinel.conf");
    let text = format!(
        "port {sport}\nbind 127.0.0.1\ndir {}\nsentinel monitor {name} {host} {port} 1\n",
        dir.display()
    );
    std::fs::write(&conf, text).expect("sentinel config");
    let conf = conf.display().to_string();
    let child = match spawn_redis(&[&conf, "--sentinel"]) {
        Ok(c) => c,
        Err(e) => {
            unavailable("redis-server (for Sentinel)", &e.to_string())?;
            return None;
        }
    };
    let procs = RedisProcesses {
        url: format!("redis://127.0.0.1:{sport}"),
        children: vec![child],
        _dir: dir,
    };
    let known = wait_until(|| {
        redis_cli(sport, &["SENTINEL", "get-master-addr-by-name", name]).is_some_and(|o| o.contains(port))
    })
    .await;
    if !known {
        unavailable("Redis Sentinel", "it did not learn the primary in time")?;
        return None;
    }
    Some(procs)
}

/// A three-primary Redis Cluster started here from `redis-server`; its seed
/// URLs, comma-separated. `None` (with a notice) when `redis-server` or
/// `redis-cli` is missing, a panic under CI.
pub async fn redis_cluster() -> Option<RedisProcesses> {
    let dir = scratch_dir();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut children = Vec::new();
    for p in &ports {
        let node_dir = dir.join(p.to_string());
        std::fs::create_dir_all(&node_dir).expect("node dir");
        let (port, node_dir) = (p.to_string(), node_dir.display().to_string());
        let args = [
            "--port",
            port.as_str(),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--dir",
            node_dir.as_str(),
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        match spawn_redis(&args) {
            Ok(c) => children.push(c),
            Err(e) => {
                unavailable("redis-server (for a Cluster)", &e.to_string())?;
                return None;
            }
        }
    }
    let procs = RedisProcesses {
        url: ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(","),
        children,
        _dir: dir,
    };
    let up = wait_until(|| {
        ports
            .iter()
            .all(|p| redis_cli(*p, &["PING"]).is_some_and(|o| o.contains("PONG")))
    })
    .await;
    if !up {
        unavailable("Redis Cluster", "its nodes did not start")?;
        return None;
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut create = std::process::Command::new("redis-cli");
    create.arg("--cluster").arg("create").args(&nodes);
    create.args(["--cluster-replicas", "0", "--cluster-yes"]);
    let created = create.output().is_ok_and(|o| o.status.success());
    let ok = created
        && wait_until(|| {
            ports
                .iter()
                .all(|p| redis_cli(*p, &["CLUSTER", "INFO"]).is_some_and(|o| o.contains("cluster_state:ok")))
        })
        .await;
    if !ok {
        unavailable("Redis Cluster", "redis-cli --cluster create failed")?;
        return None;
    }
    Some(procs)
}

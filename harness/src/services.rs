//! Where the stack is, and private instances of each component on spare
//! ports, so a fault scenario can stop and restart one without touching the
//! shared services other tests use (FACTS.md's advice).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

/// Addresses of a broker, a Redis and a Postgres admin database.
#[derive(Debug, Clone)]
pub struct Services {
    pub brokers: String,
    pub redis_url: String,
    pub admin_url: String,
}

impl Services {
    /// The stack named by the environment (defaults: the local stack).
    pub fn from_env() -> Self {
        Self {
            brokers: eventpulse_testkit::brokers(),
            redis_url: eventpulse_testkit::redis_url(),
            admin_url: eventpulse_testkit::admin_database_url(),
        }
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_for_port(port: u16, what: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{what} on port {port} never answered")
}

fn scratch_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(eventpulse_testkit::unique_name(name));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A process that may be stopped and started again on the same port.
pub struct Private {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    start: fn(&Private) -> anyhow::Result<Child>,
    name: &'static str,
}

impl Private {
    /// `redis-server` keeping nothing on disk: a restart comes back empty.
    pub async fn redis() -> anyhow::Result<Self> {
        Self::launch("redis", |me| {
            Ok(eventpulse_testkit::redis_server(me.port)
                .stdout(Stdio::null())
                .spawn()?)
        })
        .await
    }

    /// nisshi with sqlite storage, so topics, data and offsets survive restarts.
    pub async fn broker() -> anyhow::Result<Self> {
        Self::launch("broker", |me| {
            let nisshi = std::env::var("EVENTPULSE_NISSHI_BIN")
                .context("EVENTPULSE_NISSHI_BIN names the nisshi binary")?;
            let url = format!("tcp://127.0.0.1:{}", me.port);
            Ok(Command::new(nisshi)
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                ])
                .args([
                    "--storage-engine",
                    "sqlite://broker.db",
                    "--group-initial-rebalance-delay",
                    "200ms",
                ])
                .current_dir(&me.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?)
        })
        .await
    }

    /// A throwaway Postgres cluster (initdb into a scratch folder, trust auth).
    pub async fn postgres() -> anyhow::Result<Self> {
        let dir = scratch_dir("pg")?;
        if running_as_root() {
            // Postgres refuses to run as root: the cluster belongs to `postgres`.
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()?;
        }
        let status = as_postgres(pg_tool("initdb")?)
            .args([
                "-D",
                dir.join("data").to_str().unwrap_or_default(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ])
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "initdb failed: {status}");
        let mut me = Self {
            port: free_port()?,
            dir,
            child: None,
            start: start_postgres,
            name: "postgres",
        };
        me.start().await?;
        Ok(me)
    }

    async fn launch(
        name: &'static str,
        start: fn(&Private) -> anyhow::Result<Child>,
    ) -> anyhow::Result<Self> {
        let mut me = Self {
            port: free_port()?,
            dir: scratch_dir(name)?,
            child: None,
            start,
            name,
        };
        me.start().await?;
        Ok(me)
    }

    pub async fn start(&mut self) -> anyhow::Result<()> {
        self.child =
            Some((self.start)(self).with_context(|| format!("starting private {}", self.name))?);
        wait_for_port(self.port, self.name).await
    }

    /// Stops the process: SIGKILL, except Postgres, which gets a fast
    /// shutdown (SIGINT: sessions terminated, like a restart by an operator);
    /// a SIGKILLed postmaster can leave shared memory that blocks its restart.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.name == "postgres" {
                let _ = Command::new("kill")
                    .arg("-INT")
                    .arg(child.id().to_string())
                    .status();
            } else {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        match self.name {
            "redis" => format!("redis://127.0.0.1:{}", self.port),
            "postgres" => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
            _ => format!("127.0.0.1:{}", self.port),
        }
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The command run as the `postgres` user when we are root. `setpriv` execs
/// the program itself (no intermediate process), so signals reach it.
fn as_postgres(program: PathBuf) -> Command {
    if running_as_root() {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn start_postgres(me: &Private) -> anyhow::Result<Child> {
    Ok(as_postgres(pg_tool("postgres")?)
        .args([
            "-D",
            me.dir.join("data").to_str().unwrap_or_default(),
            "-p",
            &me.port.to_string(),
        ])
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            &format!("unix_socket_directories={}", me.dir.display()),
        ])
        .args(["-c", "fsync=off", "-c", "max_connections=50"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// A Postgres server binary: on PATH, or in Debian's versioned folder.
fn pg_tool(name: &str) -> anyhow::Result<PathBuf> {
    if let Ok(out) = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
    {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !path.is_empty() {
            return Ok(path.into());
        }
    }
    let debian = std::fs::read_dir("/usr/lib/postgresql")?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin").join(name))
        .find(|p| p.exists());
    debian.with_context(|| format!("no {name} binary found (install postgresql)"))
}

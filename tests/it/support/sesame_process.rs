//! The real `sesame serve` binary as a child process, for tests of what only a process has:
//! signals, exit status, a crash. Killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Site;

/// How long `sesame serve` may take to print `listening on` (migrations included).
const START_LIMIT: Duration = Duration::from_secs(30);

pub const SIGINT: i32 = 2;
pub const SIGTERM: i32 = 15;

mod sys {
    use std::os::raw::c_int;
    extern "C" {
        pub fn kill(pid: c_int, sig: c_int) -> c_int;
    }
}

pub struct SesameProcess {
    child: Child,
    pub base: String,
    /// Its stderr: the log.
    log: tempfile::NamedTempFile,
}

impl SesameProcess {
    /// Starts `sesame serve` in `dir` with `env` (and no other `SESAME_*` variable of this
    /// process), listening on an ephemeral port of 127.0.0.1 unless `env` names
    /// `SESAME_LISTEN`; returns once it says where.
    pub async fn serve(dir: &Path, env: &[(&str, String)]) -> Self {
        Self::try_serve(Path::new(env!("CARGO_BIN_EXE_sesame")), dir, env).await.unwrap_or_else(|log| panic!("sesame serve exited before listening: {log}"))
    }

    /// `serve` with another build of the binary (a release build, say); its log when it exits
    /// before listening (its port is taken, say).
    pub async fn try_serve(binary: &Path, dir: &Path, env: &[(&str, String)]) -> Result<Self, String> {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut command = Command::new(binary);
        command.arg("serve").current_dir(dir);
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SESAME_")) {
            command.env_remove(name);
        }
        command
            .env("SESAME_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            // As for in-process test servers: a busy test machine is not an outage.
            .env("SESAME_STORE_TIMEOUT", "5s")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Read to the end, so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.to_string());
                    }
                }
            }
        });
        let mut process = Self { child, base: String::new(), log };
        match tokio::time::timeout(START_LIMIT, rx).await {
            Ok(Ok(addr)) => process.base = format!("http://{addr}"),
            Ok(Err(_)) => {
                let _ = process.child.wait();
                return Err(process.log());
            }
            Err(_) => panic!("sesame serve did not listen within {START_LIMIT:?}: {}", process.log()),
        }
        Ok(process)
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with the id of a child this process has not yet reaped.
        let done = unsafe { sys::kill(self.child.id() as i32, signal) };
        assert_eq!(done, 0, "kill({}, {signal}): {}", self.child.id(), std::io::Error::last_os_error());
    }

    /// SIGKILL: no chance to finish anything.
    pub fn crash(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Its exit status, once it exits within `limit`; None if it is still running.
    pub async fn exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for sesame serve") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Site for SesameProcess {
    fn base(&self) -> &str {
        &self.base
    }
}

impl Drop for SesameProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Child processes of the test bed (the IdP, the browser driver, and later
//! `headlamp-server`): spawned with their output captured, killed when their
//! handle is dropped, and their logs printed into the test output when the
//! test fails.
//!
//! A failing end-to-end test is only debuggable if the peers' logs are in its
//! output, and a test that panics must not leave an IdP or a Chromium behind
//! to collide with the next run. Dropping a [`ChildProcess`] during a panic
//! prints its captured output (the test harness shows a failed test's
//! output) and kills the process, whatever the test did.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::TestBedError;

/// How many log lines a process keeps; older lines are dropped so a chatty
/// peer in a long test cannot grow memory without bound.
const MAX_LOG_LINES: usize = 5_000;

/// Set to `1` to stream every child's output live to the test's stderr, in
/// addition to printing it when a test fails.
pub const SHOW_LOGS_ENV: &str = "HEADLAMP_TEST_SHOW_LOGS";

/// The captured output of one child, newest lines last.
#[derive(Debug, Default)]
struct LogBuffer {
    lines: VecDeque<String>,
    dropped: usize,
}

impl LogBuffer {
    fn push(&mut self, line: String) {
        if self.lines.len() == MAX_LOG_LINES {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back(line);
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if self.dropped > 0 {
            out.push_str(&format!("[{} earlier lines dropped]\n", self.dropped));
        }
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// A running child process of the test bed.
///
/// Its stdout and stderr are captured line by line into a log (see
/// [`ChildProcess::logs`]); stdout lines are also handed to
/// [`ChildProcess::wait_for_stdout_line`], which is how a harness waits for a
/// peer's "ready" line.
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Option<Child>,
    pid: Option<u32>,
    own_process_group: bool,
    logs: Arc<Mutex<LogBuffer>>,
    stdout_lines: mpsc::UnboundedReceiver<String>,
    readers: Vec<JoinHandle<()>>,
    /// Never written; held so the child sees EOF on stdin when the test
    /// process dies without running destructors (see [`ChildProcess::spawn`]).
    _lifeline: Option<ChildStdin>,
}

impl ChildProcess {
    /// Spawns `command` with piped stdout and stderr.
    ///
    /// Its stdin is a pipe nobody writes to: it reaches EOF only when this
    /// handle is gone, including when the test binary is killed outright and
    /// no destructor runs. A child that exits on stdin EOF (server.mjs with
    /// `--exit-with-stdin`) therefore never outlives its test.
    ///
    /// `name` labels its log lines and error messages (e.g. `"test-idp"`).
    /// With `own_process_group`, the child leads a new process group and the
    /// whole group is killed on drop: use it for programs that start their
    /// own children (Playwright starts Chromium).
    pub fn spawn(
        name: &str,
        mut command: Command,
        own_process_group: bool,
    ) -> Result<Self, TestBedError> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if own_process_group {
            command.process_group(0);
        }
        let program = command
            .as_std()
            .get_program()
            .to_string_lossy()
            .into_owned();
        let mut child = command
            .spawn()
            .map_err(|source| TestBedError::io(format!("starting {name} ({program})"), source))?;

        let lifeline = child.stdin.take();
        let logs = Arc::new(Mutex::new(LogBuffer::default()));
        let show_live = std::env::var(SHOW_LOGS_ENV).is_ok_and(|v| v == "1");
        let (stdout_tx, stdout_lines) = mpsc::unbounded_channel();
        let mut readers = Vec::with_capacity(2);
        if let Some(stdout) = child.stdout.take() {
            readers.push(capture(
                stdout,
                format!("{name} stdout"),
                logs.clone(),
                Some(stdout_tx),
                show_live,
            ));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(capture(
                stderr,
                format!("{name} stderr"),
                logs.clone(),
                None,
                show_live,
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            pid: child.id(),
            child: Some(child),
            own_process_group,
            logs,
            stdout_lines,
            readers,
            _lifeline: lifeline,
        })
    }

    /// The label given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operating-system process id, while the process runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Everything the process printed so far (stdout and stderr interleaved
    /// in arrival order, each line prefixed with its stream).
    pub fn logs(&self) -> String {
        self.logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .render()
    }

    /// Waits for the first stdout line for which `parse` returns `Some`,
    /// skipping (but logging) the others.
    ///
    /// Fails if the process closes stdout (exits) first or `timeout` passes;
    /// the error carries the captured logs so the cause is visible.
    pub async fn wait_for_stdout_line<T>(
        &mut self,
        timeout: Duration,
        mut parse: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, TestBedError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.stdout_lines.recv()).await {
                Ok(Some(line)) => {
                    if let Some(value) = parse(&line) {
                        return Ok(value);
                    }
                }
                Ok(None) => {
                    let status = self.wait_exit(Duration::from_secs(5)).await;
                    self.drain_readers().await;
                    return Err(TestBedError::ProcessExited {
                        name: self.name.clone(),
                        status: describe_status(status),
                        logs: self.logs(),
                    });
                }
                Err(_elapsed) => {
                    return Err(TestBedError::Timeout {
                        what: format!("{} to print its ready line", self.name),
                        after: timeout,
                        logs: self.logs(),
                    });
                }
            }
        }
    }

    /// Waits for the process to exit by itself, up to `timeout` (then kills it).
    pub async fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, TestBedError> {
        let Some(child) = self.child.as_mut() else {
            return Err(TestBedError::InvalidOption(format!(
                "{} was already stopped",
                self.name
            )));
        };
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => {
                let status = status.map_err(|source| {
                    TestBedError::io(format!("waiting for {}", self.name), source)
                })?;
                self.drain_readers().await;
                Ok(status)
            }
            Err(_elapsed) => {
                self.kill_now();
                Err(TestBedError::Timeout {
                    what: format!("{} to finish", self.name),
                    after: timeout,
                    logs: self.logs(),
                })
            }
        }
    }

    /// Kills the process (and its group, if it leads one) and waits for it.
    pub async fn stop(&mut self) {
        self.kill_now();
        if let Some(mut child) = self.child.take() {
            // A killed child exits at once; the bound only guards a wedged reaper.
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
        self.pid = None;
    }

    /// Lets the capture tasks read the pipes to their end, so the logs are
    /// complete once the process has exited.
    async fn drain_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
    }

    async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        tokio::time::timeout(timeout, child.wait()).await.ok()?.ok()
    }

    fn kill_now(&mut self) {
        if self.own_process_group
            && let Some(pid) = self.pid
        {
            // A negative pid names the process group (kill(1), POSIX). The
            // safe way to signal a group without `unsafe` libc calls.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The test harness shows a failed test's captured output: this is
            // how a peer's logs reach the report of the test that failed.
            #[allow(clippy::print_stderr, reason = "test output on failure is the point")]
            {
                eprintln!(
                    "\n----- captured output of {} (test failed) -----\n{}----- end of {} -----",
                    self.name,
                    self.logs(),
                    self.name
                );
            }
        }
        if self.child.is_some() {
            self.kill_now();
        }
    }
}

fn describe_status(status: Option<ExitStatus>) -> String {
    match status {
        Some(status) => status.to_string(),
        None => "closed its output but did not exit".to_owned(),
    }
}

fn capture(
    stream: impl AsyncRead + Unpin + Send + 'static,
    label: String,
    logs: Arc<Mutex<LogBuffer>>,
    lines_tx: Option<mpsc::UnboundedSender<String>>,
    show_live: bool,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let entry = format!("[{label}] {line}");
            if show_live {
                #[allow(clippy::print_stderr, reason = "opt-in live logs for debugging")]
                {
                    eprintln!("{entry}");
                }
            }
            logs.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(entry);
            if let Some(tx) = &lines_tx {
                // The receiver is gone once nobody waits for lines: fine.
                let _ = tx.send(line);
            }
        }
    })
}

/// Finds `program` in the directories of `PATH`, as a shell would.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The `node` executable from `PATH`, or [`TestBedError::ToolMissing`].
pub fn node_executable() -> Result<PathBuf, TestBedError> {
    find_in_path("node").ok_or_else(|| TestBedError::ToolMissing {
        tool: "node",
        path: PathBuf::from("node (in PATH)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_buffer_keeps_the_newest_lines_and_counts_the_rest() {
        let mut buffer = LogBuffer::default();
        for i in 0..MAX_LOG_LINES + 3 {
            buffer.push(format!("line {i}"));
        }
        let rendered = buffer.render();
        assert!(rendered.starts_with("[3 earlier lines dropped]\nline 3\n"));
        assert!(rendered.ends_with(&format!("line {}\n", MAX_LOG_LINES + 2)));
    }

    #[test]
    fn find_in_path_finds_sh_and_not_nonsense() {
        assert!(find_in_path("sh").is_some());
        assert!(find_in_path("no-such-program-headlamp-test").is_none());
    }
}

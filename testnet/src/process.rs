//! Node processes: spawning, signalling by pid (through the `kill`
//! command, so the crate stays free of `unsafe` and libc), and checking
//! that a pid still belongs to the node it was recorded for.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

/// Prefix of the line written into a node's log before each start, so the
/// output of one run can be told from the previous ones.
pub(crate) const START_MARKER: &str = "=== senatus-testnet: starting node";

/// Starts `exe node --config config`, stdout and stderr appended to `log`.
/// With `own_group` the child gets its own process group, so it outlives
/// the caller and the caller's terminal signals (Ctrl-C).
pub(crate) fn spawn_node(
    exe: &Path,
    config: &Path,
    log: &Path,
    log_filter: &str,
    own_group: bool,
    env: &[(String, String)],
) -> anyhow::Result<Child> {
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening log {}", log.display()))?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    writeln!(
        out,
        "{START_MARKER} --config {} (unix ms {now_ms}) ===",
        config.display()
    )
    .with_context(|| format!("writing log {}", log.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("opening log {}", log.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("node")
        .arg("--config")
        .arg(config)
        .env("SENATUS_LOG", log_filter)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    if own_group {
        cmd.process_group(0);
    }
    cmd.spawn().with_context(|| {
        format!(
            "starting {} node --config {}",
            exe.display(),
            config.display()
        )
    })
}

/// A signal sent by pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Ask to stop (the node shuts down cleanly).
    Term,
    /// Stop at once.
    Kill,
}

/// Sends `sig` to `pid` with the `kill` command.
pub(crate) fn signal(pid: u32, sig: Signal) -> anyhow::Result<()> {
    let name = match sig {
        Signal::Term => "TERM",
        Signal::Kill => "KILL",
    };
    let out = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .stdin(Stdio::null())
        .output()
        .context("running kill")?;
    // A process that exited between the check and the signal is fine.
    if !out.status.success() && proc_state(pid) == ProcState::Alive {
        anyhow::bail!(
            "kill -s {name} {pid} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// What `/proc` says about a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// No such process.
    Gone,
    /// Exited, not yet reaped by its parent.
    Zombie,
    /// Running (or stopped).
    Alive,
}

/// The state of `pid` from `/proc/<pid>/stat`.
pub fn proc_state(pid: u32) -> ProcState {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcState::Gone;
    };
    // "pid (comm) S ...": comm may hold spaces and parentheses, the state
    // follows the last ')'.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    match state {
        Some("Z") | Some("X") => ProcState::Zombie,
        _ => ProcState::Alive,
    }
}

/// True when `pid` is alive and one of its arguments is exactly `config`:
/// a recorded pid is signalled only while it still runs that node (pids
/// are reused).
pub fn runs_config(pid: u32, config: &Path) -> bool {
    if proc_state(pid) != ProcState::Alive {
        return false;
    }
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let want = config.as_os_str().as_encoded_bytes();
    raw.split(|b| *b == 0).any(|arg| arg == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_a_process_by_its_config_argument() {
        // One process whose command line holds the path (as argv[0]).
        let mut child = Command::new("sleep")
            .arg0("/some/node-1/node.toml")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        assert_eq!(proc_state(pid), ProcState::Alive);
        // The new program's command line can lag the spawn by a moment on a
        // loaded machine: wait for it, bounded.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !runs_config(pid, Path::new("/some/node-1/node.toml"))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(runs_config(pid, Path::new("/some/node-1/node.toml")));
        assert!(!runs_config(pid, Path::new("/some/node-2/node.toml")));
        assert!(!runs_config(pid, Path::new("/some/node-1/node.tom")));
        signal(pid, Signal::Kill).expect("kill");
        child.wait().expect("wait");
        assert_eq!(proc_state(pid), ProcState::Gone);
        assert!(!runs_config(pid, Path::new("/some/node-1/node.toml")));
    }
}

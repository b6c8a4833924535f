//! One writer per output folder. `sluice run` and a Slurm submission hold
//! `<output>/.sluice.lock` while they work: a second run started on the same
//! output (a repeated command, a second terminal) would otherwise write the
//! same shards and markers at the same time and mix two runs' output.
//!
//! The lock names its holder (host, pid, the process's start time). A lock
//! whose holder is gone (same host, no such process, or the pid now belongs
//! to a later process) is taken over with a note; one held on another host
//! cannot be checked from here, so the message says how to remove it.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::io::store;

pub const LOCK_FILE: &str = ".sluice.lock";

#[derive(Serialize, Deserialize)]
struct Holder {
    host: String,
    pid: u32,
    /// The process's start (clock ticks since boot, from /proc), which
    /// tells a reused pid from the holder; None where /proc is missing.
    process_start: Option<u64>,
    /// Seconds since the Unix epoch, for the message.
    since: u64,
}

/// Held until dropped (the file is removed then).
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    pub fn acquire(out: &Path) -> Result<RunLock> {
        store::check_writable(out)?;
        let path = out.join(LOCK_FILE);
        let me = Holder {
            host: hostname(),
            pid: std::process::id(),
            process_start: process_start(std::process::id()),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let bytes = serde_json::to_vec(&me)?;
        // Twice at most: once more after removing a dead holder's lock.
        for _ in 0..2 {
            if store::create_new(&path, &bytes)? {
                return Ok(RunLock { path });
            }
            let held = match store::read(&path) {
                Ok(bytes) => Some(bytes),
                // Released between our attempt and this look: try again.
                Err(_) if !store::exists(&path)? => continue,
                Err(_) => None,
            };
            let holder = held.and_then(|b| serde_json::from_slice::<Holder>(&b).ok());
            match holder {
                Some(h) if h.host == me.host && !alive(&h) => {
                    crate::msg::note(format!(
                        "{} was left by a run that has ended (pid {} on {}); taking it over",
                        path.display(),
                        h.pid,
                        h.host
                    ));
                    store::remove_file(&path)?;
                }
                Some(h) => bail!(
                    "{} is in use by another sluice run (pid {} on host {}, started {} s ago; \
                     lock {}). Wait for it to end; if it is no longer running, remove {}",
                    out.display(),
                    h.pid,
                    h.host,
                    me.since.saturating_sub(h.since),
                    path.display(),
                    path.display()
                ),
                // Being written this instant, or not ours: name it either way.
                None => bail!(
                    "{} is in use by another sluice run (lock {} exists). Wait for it to end; \
                     if none is running, remove {}",
                    out.display(),
                    path.display(),
                    path.display()
                ),
            }
        }
        bail!(
            "cannot take {} (another run took it at the same time)",
            path.display()
        )
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let Err(e) = store::remove_file(&self.path) {
            crate::msg::warning(format!("{e:#}"));
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer and its length are valid; gethostname writes at
    // most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Fields 3 on of /proc/<pid>/stat (state, ppid, …).
fn proc_stat(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Field 22 of /proc/<pid>/stat: when the process started.
fn process_start(pid: u32) -> Option<u64> {
    proc_stat(pid)?.get(19)?.parse().ok()
}

/// Whether the lock's holder (on this host) still runs.
fn alive(h: &Holder) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(h.pid as libc::pid_t, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    let stat = proc_stat(h.pid);
    // A killed run whose parent has not reaped it yet is a zombie: it
    // exists, with its start time, but runs no more (state Z, or X).
    if stat
        .as_ref()
        .and_then(|f| f.first())
        .is_some_and(|state| state == "Z" || state == "X")
    {
        return false;
    }
    let now = stat.and_then(|f| f.get(19)?.parse::<u64>().ok());
    match (h.process_start, now) {
        (Some(then), Some(now)) => then == now,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_and_a_dead_holders_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).err().unwrap().to_string();
        assert!(err.contains("in use by another sluice run"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(lock);
        assert!(!dir.path().join(LOCK_FILE).exists(), "released on drop");

        // A holder that has ended: a child process, waited for.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Holder {
            host: hostname(),
            pid,
            process_start: Some(1),
            since: 0,
        };
        std::fs::write(
            dir.path().join(LOCK_FILE),
            serde_json::to_vec(&dead).unwrap(),
        )
        .unwrap();
        let _lock = RunLock::acquire(dir.path()).unwrap();

        // The same pid started again later (pid reuse) is not the holder.
        let mut reused = Holder {
            host: hostname(),
            pid: std::process::id(),
            process_start: process_start(std::process::id()).map(|s| s + 1),
            since: 0,
        };
        assert!(!alive(&reused));
        reused.process_start = process_start(std::process::id());
        assert!(alive(&reused));

        // A holder killed but not yet reaped (a zombie: its parent has not
        // waited) exists with its start time, and is not alive.
        let mut zombie = std::process::Command::new("true").spawn().unwrap();
        let zpid = zombie.id();
        let started = process_start(zpid);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while proc_stat(zpid).and_then(|f| f.first().cloned()).as_deref() != Some("Z") {
            assert!(
                std::time::Instant::now() < deadline,
                "the child never became a zombie"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let holder = Holder {
            host: hostname(),
            pid: zpid,
            process_start: started,
            since: 0,
        };
        assert!(!alive(&holder), "a zombie holds no lock");
        zombie.wait().unwrap();

        // Another host's lock cannot be checked: refused.
        let other = tempfile::tempdir().unwrap();
        let remote = Holder {
            host: format!("{}-elsewhere", hostname()),
            pid: 1,
            process_start: None,
            since: 0,
        };
        std::fs::write(
            other.path().join(LOCK_FILE),
            serde_json::to_vec(&remote).unwrap(),
        )
        .unwrap();
        let err = RunLock::acquire(other.path()).err().unwrap().to_string();
        assert!(
            err.contains("-elsewhere") && err.contains("remove"),
            "{err}"
        );
    }
}

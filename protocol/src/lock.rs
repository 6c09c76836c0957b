//! One broker per bus: the broker holds an exclusive `flock(2)` on `/dev/shm/gos.BUS~lock` for
//! its whole life. The kernel drops the lock when the process dies, however it dies, so
//! staleness is never judged from a state word or a pid that may have been reused.
//!
//! The file holds the holder's pid as text, for messages. It is never removed while locked
//! except by `gos-bus clean`, which removes it while holding the lock; a broker that locked a
//! file that was removed meanwhile (its inode no longer the one at the path) tries again, so
//! two brokers can never hold locks on two different files for one bus.
//!
//! The `~` keeps the name out of every ring listing: no bus or ring name may contain it.

use crate::error::{Error, Result};
use crate::name;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

/// The shared-memory path of the broker lock of `bus`, e.g. `/dev/shm/gos.geometry~lock`.
pub fn path(bus: &str) -> Result<String> {
    name::check_bus(bus)?;
    Ok(format!("{}/{}{bus}~lock", name::SHM_DIR, name::SHM_PREFIX))
}

/// The broker lock of a bus, held until dropped (or the process ends).
#[derive(Debug)]
pub struct BrokerLock {
    file: File,
    path: String,
}

fn os(op: &'static str, path: &str, e: std::io::Error) -> Error {
    Error::Os {
        op,
        path: path.into(),
        source: e,
    }
}

/// The pid written in a lock file by its holder. The holder writes it just after taking the
/// lock, so a file still showing an earlier broker's pid (one that died holding it) or none
/// is read again for a moment; 0 when no live pid shows up.
fn holder(file: &mut File) -> u32 {
    let read = |file: &mut File| {
        let mut text = String::new();
        let _ = file.rewind();
        let _ = file.read_to_string(&mut text);
        text.trim().parse::<u32>().unwrap_or(0)
    };
    for _ in 0..100 {
        let pid = read(file);
        if pid != 0 && std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return pid;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    0
}

impl BrokerLock {
    /// Takes the broker lock of `bus` without waiting. [`Error::BrokerRunning`] names the
    /// holder when another process has it.
    pub fn acquire(bus: &str) -> Result<BrokerLock> {
        let lock = Self::try_lock(bus)?;
        let mut file = &lock.file;
        file.set_len(0).map_err(|e| os("write", &lock.path, e))?;
        file.rewind().map_err(|e| os("write", &lock.path, e))?;
        write!(file, "{}", std::process::id()).map_err(|e| os("write", &lock.path, e))?;
        Ok(lock)
    }

    /// Takes the lock without writing a pid into it (for `gos-bus clean`, which holds it only
    /// to know that no broker runs while it removes the bus).
    pub fn try_lock(bus: &str) -> Result<BrokerLock> {
        let path = path(bus)?;
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(|e| os("open", &path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    // The kernel's table names the holder at once; the pid it wrote into the
                    // file is the fallback (it writes it just after locking).
                    let meta = file.metadata().map_err(|e| os("stat", &path, e))?;
                    let listed = std::fs::read_to_string("/proc/locks")
                        .ok()
                        .and_then(|t| flock_holder(&t, meta.dev(), meta.ino()))
                        .filter(|&pid| pid != 0);
                    return Err(Error::BrokerRunning {
                        bus: bus.into(),
                        pid: listed.unwrap_or_else(|| holder(&mut file)),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(os("lock", &path, e)),
            }
            // Locked: but if `clean` removed the file between our open and our lock, the lock
            // is on an orphaned inode that another broker cannot see. Check, and retry.
            let ours = file.metadata().map_err(|e| os("stat", &path, e))?;
            match std::fs::metadata(&path) {
                Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => {
                    return Ok(BrokerLock { file, path })
                }
                _ => continue,
            }
        }
    }

    /// The pid of the broker holding the lock of `bus` now (0 when it cannot be told), or
    /// `None` when no process holds it. Takes no lock itself (a probe that did would make a
    /// broker starting at that moment think the bus taken): it reads the kernel's table of
    /// locks, `/proc/locks`, for an exclusive `flock` on the lock file's inode. Creates
    /// nothing: a bus that never had a broker has no lock file.
    pub fn is_held(bus: &str) -> Result<Option<u32>> {
        let path = path(bus)?;
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(os("stat", &path, e)),
        };
        let table =
            std::fs::read_to_string("/proc/locks").map_err(|e| os("read", "/proc/locks", e))?;
        Ok(flock_holder(&table, meta.dev(), meta.ino()))
    }

    /// Removes the lock file while holding the lock (`gos-bus clean`), then releases it.
    pub fn remove(self) -> Result<String> {
        std::fs::remove_file(&self.path).map_err(|e| os("remove", &self.path, e))?;
        Ok(self.path.clone())
    }

    /// Where the lock lives.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// The pid holding an exclusive `flock` on inode `ino` of device `dev`, from the text of
/// `/proc/locks` (`N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END`, device numbers in
/// hex, the inode in decimal; waiters' lines carry `->` and are skipped). `Some(0)` when the
/// line names no pid.
fn flock_holder(table: &str, dev: u64, ino: u64) -> Option<u32> {
    // Linux's encoding of a dev_t (the `major`/`minor` of glibc's sysmacros).
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let want = format!("{major:02x}:{minor:02x}:{ino}");
    table.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [_, "FLOCK", _, "WRITE", pid, id, ..] if *id == want => Some(pid.parse().unwrap_or(0)),
            _ => None,
        }
    })
}

impl Drop for BrokerLock {
    fn drop(&mut self) {
        // No pid left behind for the next reader (the kernel drops the lock itself).
        let _ = self.file.set_len(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bus() -> String {
        format!("locktest{}", std::process::id())
    }

    #[test]
    fn second_lock_names_the_holder_and_a_dropped_lock_is_free() {
        let bus = bus();
        let first = BrokerLock::acquire(&bus).unwrap();
        match BrokerLock::acquire(&bus) {
            Err(Error::BrokerRunning { pid, .. }) => assert_eq!(pid, std::process::id()),
            other => panic!("expected BrokerRunning, got {other:?}"),
        }
        assert_eq!(BrokerLock::is_held(&bus).unwrap(), Some(std::process::id()));
        drop(first);
        // Another test of this process that starts a program at this moment holds a copy of
        // the lock's descriptor from its fork until its exec closes it: wait for that.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while BrokerLock::is_held(&bus).unwrap().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "the dropped lock stays held"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        BrokerLock::try_lock(&bus).unwrap().remove().unwrap();
        assert!(!std::path::Path::new(&path(&bus).unwrap()).exists());
    }

    #[test]
    fn proc_locks_lines_name_the_holder() {
        let table = "1: FLOCK  ADVISORY  WRITE 9549 00:1b:5146 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 9550 00:1b:5146 0 EOF\n\
                     3: POSIX  ADVISORY  WRITE 77 00:1b:9 0 EOF\n";
        assert_eq!(flock_holder(table, 27, 5146), Some(9549));
        assert_eq!(flock_holder(table, 27, 9), None, "a POSIX lock is not ours");
        assert_eq!(flock_holder(table, 28, 5146), None, "another device");
    }

    #[test]
    fn a_lock_on_a_removed_file_is_not_kept() {
        let bus = format!("{}r", bus());
        let p = path(&bus).unwrap();
        // A file that is locked by an open description and then removed: a new broker must
        // lock the file now at the path, not keep a lock nobody else can see.
        let stale = BrokerLock::try_lock(&bus).unwrap();
        let stale_file = stale.remove().unwrap();
        assert_eq!(stale_file, p);
        let lock = BrokerLock::acquire(&bus).unwrap();
        let at_path = std::fs::metadata(&p).unwrap();
        assert_eq!(at_path.ino(), lock.file.metadata().unwrap().ino());
        drop(lock);
        BrokerLock::try_lock(&bus).unwrap().remove().unwrap();
    }
}

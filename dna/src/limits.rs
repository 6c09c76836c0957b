//! The limits a job runs under, and how a job ended.

use gos_layouts::records::{
    DNA_LIMIT_CPU_TIME, DNA_LIMIT_FILE_SIZE, DNA_LIMIT_FORBIDDEN, DNA_LIMIT_MEMORY, DNA_LIMIT_NONE,
    DNA_LIMIT_OPEN_FILES, DNA_LIMIT_OUTPUT, DNA_LIMIT_PROCESSES, DNA_LIMIT_WALL_TIME,
    DNA_LIMIT_WORK_FOLDER, DNA_STATUS_ERROR, DNA_STATUS_OK, DNA_STATUS_REJECTED,
    DNA_STATUS_TIMEOUT,
};
use std::time::Duration;

/// The limits of one job. Each is enforced by the kernel (rlimits, the tmpfs size) or by the
/// runner outside the sandbox (wall time, output, calls), never by the job. Memory is bounded
/// per process (`RLIMIT_AS`; the memory no rlimit counts, memfd files and SysV shared memory,
/// is refused by seccomp), so a job holds at most `processes` x `memory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time; the job is killed when it passes (default 30 s, the proposal's).
    pub wall: Duration,
    /// CPU seconds (`RLIMIT_CPU`; SIGXCPU at the limit, SIGKILL a second later). Default: the
    /// wall time rounded up.
    pub cpu_secs: u64,
    /// Address space in bytes (`RLIMIT_AS`; default 512 MiB).
    pub memory: u64,
    /// Processes and threads (`RLIMIT_NPROC`, counted in the job's own user namespace;
    /// default 32).
    pub processes: u64,
    /// Largest file the job may write, in bytes (`RLIMIT_FSIZE`; default 32 MiB).
    pub file_size: u64,
    /// Open file descriptors (`RLIMIT_NOFILE`; default 64).
    pub open_files: u64,
    /// Size of the private work folder `/work` (a tmpfs), in bytes (default 16 MiB).
    pub work_size: u64,
    /// Output (stdout and stderr together) kept, in bytes; a job that writes more is stopped
    /// (default 64 KiB).
    pub max_output: usize,
    /// API calls per job; later ones are refused (default 1000).
    pub max_calls: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall: Duration::from_secs(30),
            cpu_secs: 30,
            memory: 512 << 20,
            processes: 32,
            file_size: 32 << 20,
            open_files: 64,
            work_size: 16 << 20,
            max_output: 64 << 10,
            max_calls: 1000,
        }
    }
}

impl Limits {
    /// The defaults with a wall time of `wall` (and CPU seconds to match).
    pub fn with_wall(wall: Duration) -> Self {
        Limits {
            wall,
            cpu_secs: wall.as_secs_f64().ceil().max(1.0) as u64,
            ..Limits::default()
        }
    }
}

/// How a job ended (`DnaResult::status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit code 0.
    Ok,
    /// Another exit code, a signal, or a limit other than time.
    Error,
    /// The wall-clock or CPU time limit.
    Timeout,
    /// Not run: bad code, or a sandbox that could not be set up.
    Rejected,
}

impl Status {
    /// The `DNA_STATUS_*` code.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => DNA_STATUS_OK,
            Status::Error => DNA_STATUS_ERROR,
            Status::Timeout => DNA_STATUS_TIMEOUT,
            Status::Rejected => DNA_STATUS_REJECTED,
        }
    }

    /// Its name: ok, error, timeout, rejected.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Timeout => "timeout",
            Status::Rejected => "rejected",
        }
    }
}

/// The limit that ended a job (`DnaResult::limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// None did.
    None,
    /// [`Limits::wall`].
    WallTime,
    /// [`Limits::cpu_secs`].
    CpuTime,
    /// [`Limits::memory`].
    Memory,
    /// [`Limits::processes`].
    Processes,
    /// [`Limits::file_size`].
    FileSize,
    /// [`Limits::max_output`].
    Output,
    /// [`Limits::work_size`].
    WorkFolder,
    /// [`Limits::open_files`].
    OpenFiles,
    /// A system call or path the sandbox forbids.
    Forbidden,
}

impl Limit {
    /// The `DNA_LIMIT_*` code.
    pub fn code(self) -> u16 {
        match self {
            Limit::None => DNA_LIMIT_NONE,
            Limit::WallTime => DNA_LIMIT_WALL_TIME,
            Limit::CpuTime => DNA_LIMIT_CPU_TIME,
            Limit::Memory => DNA_LIMIT_MEMORY,
            Limit::Processes => DNA_LIMIT_PROCESSES,
            Limit::FileSize => DNA_LIMIT_FILE_SIZE,
            Limit::Output => DNA_LIMIT_OUTPUT,
            Limit::WorkFolder => DNA_LIMIT_WORK_FOLDER,
            Limit::OpenFiles => DNA_LIMIT_OPEN_FILES,
            Limit::Forbidden => DNA_LIMIT_FORBIDDEN,
        }
    }

    /// Its name, as results and the command print it.
    pub fn name(self) -> &'static str {
        match self {
            Limit::None => "none",
            Limit::WallTime => "wall-time",
            Limit::CpuTime => "cpu-time",
            Limit::Memory => "memory",
            Limit::Processes => "processes",
            Limit::FileSize => "file-size",
            Limit::Output => "output",
            Limit::WorkFolder => "work-folder",
            Limit::OpenFiles => "open-files",
            Limit::Forbidden => "forbidden",
        }
    }

    /// The limit an uncaught exception reported by the job points at: its class and `errno`
    /// (`MemoryError`; `EAGAIN` from fork; `ENOSPC`, `EFBIG`, `EMFILE`; `EPERM`, `EACCES` and
    /// `EROFS` from the sandbox's walls).
    pub fn from_exception(exception: &str, errno: Option<i64>) -> Limit {
        if exception == "MemoryError" || errno == Some(libc::ENOMEM as i64) {
            return Limit::Memory;
        }
        match errno.map(|e| e as i32) {
            Some(libc::EAGAIN) => Limit::Processes,
            Some(libc::ENOSPC) => Limit::WorkFolder,
            Some(libc::EFBIG) => Limit::FileSize,
            Some(libc::EMFILE) | Some(libc::ENFILE) => Limit::OpenFiles,
            Some(libc::EPERM) | Some(libc::EACCES) | Some(libc::EROFS) => Limit::Forbidden,
            _ => Limit::None,
        }
    }

    /// The limit a terminating signal means (`SIGXCPU`, or the `SIGKILL` that follows it;
    /// `SIGXFSZ`; `SIGSYS` from seccomp).
    pub fn from_signal(signal: i32) -> Limit {
        match signal {
            libc::SIGXCPU => Limit::CpuTime,
            libc::SIGXFSZ => Limit::FileSize,
            libc::SIGSYS => Limit::Forbidden,
            _ => Limit::None,
        }
    }
}

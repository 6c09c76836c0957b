//! The second wall, raised inside bubblewrap's namespaces just before the job's interpreter
//! starts: rlimits, `no_new_privs`, a Landlock ruleset and a seccomp filter, in that order,
//! then `execve`. Nothing of it can be undone by the job: rlimits are set hard, Landlock and
//! seccomp only ever tighten, and `no_new_privs` stays across `execve`.
//!
//! - Landlock (ABI 6, the `landlock` crate): read and execute beneath the interpreter's
//!   folders, everything beneath the work folder, no TCP bind or connect, no signals to
//!   processes outside the sandbox, no abstract Unix sockets outside it.
//! - seccomp (the `seccompiler` crate): the calls a job never needs fail with `EPERM`:
//!   sockets other than Unix ones, `ptrace`, `process_vm_*` and `pidfd_getfd`, `unshare`,
//!   `setns` and every mount call (old and new API), memory no rlimit counts (`memfd_create`,
//!   SysV shared memory, message queues), kernel keys, BPF, perf, modules, `io_uring`,
//!   clocks, reboot and the like. The default is to allow: the namespaces and Landlock hold
//!   the files, the network and the processes; the filter shrinks what is left of the kernel
//!   to reach. (`clone` with namespace flags is not filtered for a script: bubblewrap's
//!   `--disable-userns` and the job's lack of capabilities refuse it.) [`Profile::Worker`], for
//!   the WebAssembly worker that runs outside any namespace, also refuses every socket call,
//!   `execve` and `clone` with a namespace flag.

use crate::limits::Limits;
use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use nix::sys::resource::{setrlimit, Resource};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What to confine a process to.
#[derive(Debug, Clone, Default)]
pub struct Confinement {
    /// Folders (or files) readable and executable.
    pub read: Vec<PathBuf>,
    /// Folders (or files) fully writable.
    pub write: Vec<PathBuf>,
    /// Allow a Landlock that enforces less than ABI 6 asks (an older kernel), instead of
    /// refusing to run.
    pub weaker: bool,
    /// Which seccomp filter: a script's, or the stricter one of a process that needs no
    /// socket, no program and no namespace at all (the WebAssembly worker).
    pub profile: Profile,
}

/// The seccomp filter a confined process gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Profile {
    /// A script inside bubblewrap: [`DENIED`] and every socket but `AF_UNIX`.
    #[default]
    Job,
    /// A process outside any namespace that runs no program and talks only through the
    /// descriptors it has (the WebAssembly worker): also every socket call (Unix ones too),
    /// `execve`, `clone` with a namespace flag, and `clone3` (`ENOSYS`, so that the C library
    /// falls back to `clone`, whose flags the filter can read).
    Worker,
}

/// What was applied, reported to the runner before the job starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Landlock: "full", "partial" or "none" (enforced fully, partly, not at all).
    pub landlock: &'static str,
    /// The seccomp filter is loaded.
    pub seccomp: bool,
}

impl Applied {
    /// As the runner's `confined` line: `{"landlock": "full"|"partial"|"none", "seccomp": bool}`.
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({ "landlock": self.landlock, "seccomp": self.seccomp })
    }
}

/// Why a process could not be confined.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// An rlimit could not be set.
    #[error("cannot set {what}: {source}")]
    Rlimit {
        /// The limit.
        what: &'static str,
        /// The OS error.
        source: nix::Error,
    },
    /// Landlock refused the ruleset.
    #[error("Landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// Landlock enforces less than asked and the weaker mode was not chosen.
    #[error(
        "Landlock is enforced {0}ly on this kernel (ABI 6 needed); pass --weaker to run anyway"
    )]
    LandlockPartial(&'static str),
    /// The seccomp filter could not be built or loaded.
    #[error("seccomp: {0}")]
    Seccomp(String),
}

/// Sets every rlimit of `limits` that the kernel enforces for a process (soft = hard, except
/// CPU time: SIGXCPU at the soft limit, SIGKILL one second later), and no core dumps.
///
/// # Errors
/// The first limit the kernel refused.
pub fn set_rlimits(limits: &Limits) -> Result<(), ConfineError> {
    let set = |what, r, soft: u64, hard: u64| {
        setrlimit(r, soft, hard).map_err(|source| ConfineError::Rlimit { what, source })
    };
    set(
        "RLIMIT_CPU",
        Resource::RLIMIT_CPU,
        limits.cpu_secs,
        limits.cpu_secs + 1,
    )?;
    set(
        "RLIMIT_AS",
        Resource::RLIMIT_AS,
        limits.memory,
        limits.memory,
    )?;
    set(
        "RLIMIT_NPROC",
        Resource::RLIMIT_NPROC,
        limits.processes,
        limits.processes,
    )?;
    set(
        "RLIMIT_FSIZE",
        Resource::RLIMIT_FSIZE,
        limits.file_size,
        limits.file_size,
    )?;
    set(
        "RLIMIT_NOFILE",
        Resource::RLIMIT_NOFILE,
        limits.open_files,
        limits.open_files,
    )?;
    set("RLIMIT_CORE", Resource::RLIMIT_CORE, 0, 0)
}

/// Restricts this process (and everything it starts) with Landlock, then loads the seccomp
/// filter. Sets `no_new_privs` first (both need it).
///
/// # Errors
/// A layer that could not be applied, or Landlock enforcing less than ABI 6 without
/// `weaker`.
pub fn restrict(c: &Confinement) -> Result<Applied, ConfineError> {
    let abi = ABI::V6;
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))?
        .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)?
        .create()?
        .no_new_privs(true)
        .add_rules(path_beneath_rules(&c.read, AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(&c.write, AccessFs::from_all(abi)))?
        .restrict_self()?;
    let landlock = match status.ruleset {
        RulesetStatus::FullyEnforced => "full",
        RulesetStatus::PartiallyEnforced => "partial",
        RulesetStatus::NotEnforced => "none",
    };
    if landlock != "full" && !c.weaker {
        return Err(ConfineError::LandlockPartial(landlock));
    }
    if !status.no_new_privs {
        return Err(ConfineError::Seccomp(
            "no_new_privs could not be set".into(),
        ));
    }
    let programs = match c.profile {
        Profile::Job => seccomp_program().map(|p| vec![p]),
        Profile::Worker => worker_programs(),
    };
    let seccomp = programs.and_then(|programs| {
        programs.iter().try_for_each(|p| {
            seccompiler::apply_filter(p).map_err(|e| ConfineError::Seccomp(e.to_string()))
        })
    });
    match seccomp {
        Err(e) if !c.weaker => Err(e),
        r => Ok(Applied {
            landlock,
            seccomp: r.is_ok(),
        }),
    }
}

/// System calls a job never needs; each fails with `EPERM`.
const DENIED: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_fanotify_init,
    libc::SYS_quotactl,
    libc::SYS_vhangup,
    libc::SYS_syslog,
    libc::SYS_personality,
    libc::SYS_mknodat,
    // The new mount API.
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    // Memory no rlimit counts: memfd files and SysV shared memory outlive RLIMIT_AS, and
    // message queues hold kernel memory.
    libc::SYS_memfd_create,
    libc::SYS_memfd_secret,
    libc::SYS_shmget,
    libc::SYS_shmat,
    libc::SYS_shmctl,
    libc::SYS_msgget,
    libc::SYS_mq_open,
    // Reaching into other processes' descriptors and memory.
    libc::SYS_pidfd_getfd,
    libc::SYS_process_madvise,
    libc::SYS_kcmp,
];

/// The seccomp program: [`DENIED`] and every `socket` but `AF_UNIX` fail with `EPERM`; the rest
/// is allowed.
///
/// # Errors
/// The filter could not be compiled for this architecture.
pub fn seccomp_program() -> Result<BpfProgram, ConfineError> {
    let err = |e: seccompiler::BackendError| ConfineError::Seccomp(e.to_string());
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&n| (n, Vec::new())).collect();
    let not_unix = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Ne,
        libc::AF_UNIX as u64,
    )
    .map_err(err)?;
    rules.insert(
        libc::SYS_socket,
        vec![SeccompRule::new(vec![not_unix]).map_err(err)?],
    );
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e: seccompiler::BackendError| ConfineError::Seccomp(e.to_string()))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(err)?;
    filter.try_into().map_err(err)
}

/// What [`Profile::Worker`] denies beyond [`DENIED`], with `EPERM`.
const WORKER_DENIED: &[i64] = &[
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_connect,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_execve,
    libc::SYS_execveat,
];

/// The namespace flags `clone` may not carry in [`Profile::Worker`].
const CLONE_NAMESPACES: [i32; 7] = [
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWCGROUP,
];

/// The two filters of [`Profile::Worker`]: what `EPERM` refuses ([`DENIED`],
/// [`WORKER_DENIED`], `clone` with any of [`CLONE_NAMESPACES`]), and `clone3` with `ENOSYS`.
///
/// # Errors
/// A filter could not be compiled for this architecture.
pub fn worker_programs() -> Result<Vec<BpfProgram>, ConfineError> {
    let err = |e: seccompiler::BackendError| ConfineError::Seccomp(e.to_string());
    let arch: seccompiler::TargetArch = std::env::consts::ARCH.try_into().map_err(err)?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .chain(WORKER_DENIED)
        .map(|&n| (n, Vec::new()))
        .collect();
    let mut clone = Vec::new();
    for flag in CLONE_NAMESPACES {
        let set = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag as u64),
            flag as u64,
        )
        .map_err(err)?;
        clone.push(SeccompRule::new(vec![set]).map_err(err)?);
    }
    rules.insert(libc::SYS_clone, clone);
    let eperm = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(err)?;
    let enosys = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(err)?;
    Ok(vec![
        eperm.try_into().map_err(err)?,
        enosys.try_into().map_err(err)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_programs_compile_for_this_machine() {
        let p = worker_programs().unwrap();
        assert_eq!(p.len(), 2);
        assert!(p[0].len() > DENIED.len() + WORKER_DENIED.len() + CLONE_NAMESPACES.len());
    }

    #[test]
    fn the_seccomp_program_compiles_for_this_machine() {
        let p = seccomp_program().unwrap();
        // The architecture check, one comparison per denied call and socket's argument check.
        assert!(p.len() > DENIED.len(), "{} instructions", p.len());
    }
}

//! What the kernel and the machine offer the sandbox, asked once at start-up.
//!
//! Four layers: bubblewrap (`bwrap` on `PATH`), the namespaces it makes (user, mount, PID,
//! IPC, network, UTS: tried for real with `bwrap ... true`), Landlock (its ABI version, from
//! `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`; the sandbox asks for
//! ABI 6: files, TCP and signal scoping) and seccomp filters (`prctl(PR_GET_SECCOMP)`).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The Landlock ABI the sandbox's rules need (files with `truncate` and `ioctl_dev`, TCP
/// bind/connect, abstract-socket and signal scoping).
pub const LANDLOCK_ABI: i64 = 6;

/// One layer of the sandbox and whether it is there.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Short name: bubblewrap, namespaces, landlock, seccomp.
    pub name: &'static str,
    /// Whether it can be used.
    pub ok: bool,
    /// What was found, or why it cannot be used and what to do.
    pub detail: String,
}

/// The result of [`probe`].
#[derive(Debug, Clone)]
pub struct Probe {
    /// The `bwrap` found, if any.
    pub bwrap: Option<PathBuf>,
    /// Landlock's ABI version (0 = none).
    pub landlock_abi: i64,
    /// Every layer.
    pub layers: Vec<Layer>,
}

impl Probe {
    /// Whether every layer is there.
    pub fn complete(&self) -> bool {
        self.layers.iter().all(|l| l.ok)
    }

    /// The layers missing, as one line (empty when none is).
    pub fn missing(&self) -> String {
        self.layers
            .iter()
            .filter(|l| !l.ok)
            .map(|l| format!("{}: {}", l.name, l.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Finds `bwrap` on `PATH`.
pub fn find_bwrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("bwrap"))
        .find(|p| p.is_file())
}

/// Landlock's ABI version on this kernel, 0 when it has none or it is disabled.
pub fn landlock_abi() -> i64 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: landlock_create_ruleset with a null attribute, size 0 and the VERSION flag only
    // returns a number (or -1 with errno); it reads and writes no memory of ours.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    v.max(0)
}

/// Whether this kernel has seccomp filters.
pub fn seccomp_available() -> bool {
    // SAFETY: PR_GET_SECCOMP takes no pointer; it returns the calling thread's mode or -1.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    mode >= 0 && std::path::Path::new("/proc/sys/kernel/seccomp/actions_avail").exists()
}

/// Asks for every layer, trying the namespaces for real (one `bwrap ... true`, a few ms).
pub fn probe() -> Probe {
    let mut p = probe_quick();
    if let Some(b) = &p.bwrap {
        p.layers[1] = try_namespaces(b);
    }
    p
}

/// Asks for every layer without starting a process: the namespaces are reported as there
/// when `bwrap` is (a job whose sandbox cannot start is rejected with bwrap's own reason).
pub fn probe_quick() -> Probe {
    let bwrap = find_bwrap();
    let mut layers = vec![Layer {
        name: "bubblewrap",
        ok: bwrap.is_some(),
        detail: match &bwrap {
            Some(p) => p.display().to_string(),
            None => "bwrap is not on PATH: install it (apt-get install bubblewrap)".into(),
        },
    }];
    layers.push(Layer {
        name: "namespaces",
        ok: bwrap.is_some(),
        detail: if bwrap.is_some() {
            "not tried".into()
        } else {
            "not tried without bwrap".into()
        },
    });
    let abi = landlock_abi();
    layers.push(Layer {
        name: "landlock",
        ok: abi >= LANDLOCK_ABI,
        detail: if abi >= LANDLOCK_ABI {
            format!("ABI {abi}")
        } else if abi == 0 {
            "this kernel has no Landlock (Linux 6.12 or later with lsm=landlock is needed)".into()
        } else {
            format!("ABI {abi}, but the sandbox needs {LANDLOCK_ABI} (Linux 6.12 or later)")
        },
    });
    let sc = seccomp_available();
    layers.push(Layer {
        name: "seccomp",
        ok: sc,
        detail: if sc {
            "filters".into()
        } else {
            "this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)".into()
        },
    });
    Probe {
        bwrap,
        landlock_abi: abi,
        layers,
    }
}

fn try_namespaces(b: &std::path::Path) -> Layer {
    let out = Command::new(b)
        .args([
            "--unshare-all",
            "--unshare-user",
            "--die-with-parent",
            "--ro-bind",
            "/",
            "/",
            "true",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match out {
        Ok(o) if o.status.success() => Layer {
            name: "namespaces",
            ok: true,
            detail: "user, mount, PID, IPC, network, UTS, cgroup".into(),
        },
        Ok(o) => Layer {
            name: "namespaces",
            ok: false,
            detail: format!(
                "the kernel refused them ({}): enable unprivileged user namespaces \
                 (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0)",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        },
        Err(e) => Layer {
            name: "namespaces",
            ok: false,
            detail: format!("cannot run {}: {e}", b.display()),
        },
    }
}

//! POSIX shared-memory objects: create (exclusive, reserved), open, map, remove.
//!
//! Creation is `shm_open(O_CREAT | O_EXCL)` with the requested mode, `fchmod` (so the umask
//! cannot narrow it), `ftruncate`, then `posix_fallocate`, so that a full `/dev/shm` fails
//! here with [`Error::NoSpace`] instead of a SIGBUS later. Any failure after `shm_open`
//! removes the object again.

use crate::error::{Error, Result};
use crate::name;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode as FileMode;
use std::fs::File;
use std::os::fd::AsRawFd;

fn os(op: &'static str, path: &str, e: Errno) -> Error {
    Error::Os {
        op,
        path: path.to_string(),
        source: std::io::Error::from_raw_os_error(e as i32),
    }
}

/// Creates `object` (e.g. `/gos.geometry.events`) of `size` bytes with mode `perms`, reserved
/// and mapped read-write. `exists` makes the error for an object that is already there.
pub fn create(
    object: &str,
    size: u64,
    perms: u32,
    exists: impl FnOnce() -> Error,
) -> Result<memmap2::MmapRaw> {
    let path = name::object_path(object);
    if perms & !0o777 != 0 {
        return Err(Error::InvalidConfig(format!(
            "permissions {perms:#o} are not file mode bits (use e.g. 0600 or 0660)"
        )));
    }
    let mode = FileMode::from_bits_truncate(perms as _);
    let fd = nix::sys::mman::shm_open(
        object,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC,
        mode,
    )
    .map_err(|e| match e {
        Errno::EEXIST => exists(),
        Errno::EACCES => Error::PermissionDenied { path: path.clone() },
        e => os("create", &path, e),
    })?;
    let reserve = || -> Result<memmap2::MmapRaw> {
        nix::sys::stat::fchmod(fd.as_raw_fd(), mode).map_err(|e| os("chmod", &path, e))?;
        nix::unistd::ftruncate(&fd, size as i64).map_err(|e| os("resize", &path, e))?;
        match nix::fcntl::posix_fallocate(fd.as_raw_fd(), 0, size as i64) {
            Ok(()) => {}
            Err(Errno::ENOSPC) | Err(Errno::EFBIG) => {
                return Err(Error::NoSpace {
                    path: path.clone(),
                    bytes: size,
                })
            }
            Err(e) => return Err(os("reserve", &path, e)),
        }
        let file = File::from(fd);
        memmap2::MmapOptions::new()
            .len(size as usize)
            .map_raw(&file)
            .map_err(|e| Error::Os {
                op: "map",
                path: path.clone(),
                source: e,
            })
    };
    let mapped = reserve();
    if mapped.is_err() {
        let _ = nix::sys::mman::shm_unlink(object);
    }
    mapped
}

/// Opens and maps `object` (read-write or read-only); `missing` makes the error for an
/// object that does not exist. Returns the mapping and the file's length.
pub fn open(
    object: &str,
    writable: bool,
    missing: impl FnOnce() -> Error,
) -> Result<(memmap2::MmapRaw, u64)> {
    let path = name::object_path(object);
    let flags = if writable {
        OFlag::O_RDWR
    } else {
        OFlag::O_RDONLY
    };
    let fd = nix::sys::mman::shm_open(object, flags | OFlag::O_CLOEXEC, FileMode::empty())
        .map_err(|e| match e {
            Errno::ENOENT => missing(),
            Errno::EACCES => Error::PermissionDenied { path: path.clone() },
            e => os("open", &path, e),
        })?;
    let file = File::from(fd);
    let len = file
        .metadata()
        .map_err(|e| Error::Os {
            op: "stat",
            path: path.clone(),
            source: e,
        })?
        .len();
    if len == 0 {
        return Err(Error::Corrupt {
            path,
            problem: crate::error::Corrupt::Truncated {
                expected: 1,
                found: 0,
            },
        });
    }
    let mut opts = memmap2::MmapOptions::new();
    opts.len(len as usize);
    let map = if writable {
        opts.map_raw(&file)
    } else {
        opts.map_raw_read_only(&file)
    }
    .map_err(|e| Error::Os {
        op: "map",
        path: path.clone(),
        source: e,
    })?;
    Ok((map, len))
}

/// Removes `object`; `missing` makes the error for an object that does not exist.
pub fn unlink(object: &str, missing: impl FnOnce() -> Error) -> Result<()> {
    let path = name::object_path(object);
    nix::sys::mman::shm_unlink(object).map_err(|e| match e {
        Errno::ENOENT => missing(),
        Errno::EACCES | Errno::EPERM => Error::PermissionDenied { path },
        e => os("remove", &name::object_path(object), e),
    })
}

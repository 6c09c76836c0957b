//! Attaching to a bus and opening its rings.

use crate::layout::Layout;
use crate::{Publisher, Subscriber};
use gos_bus_protocol::ring::entry::{self, Claim, Identity};
use gos_bus_protocol::{name, proc, Error, Result, RingConfig, Segment};
use std::sync::Arc;

/// A bus: a name under which rings live in `/dev/shm`.
#[derive(Debug, Clone)]
pub struct Bus {
    name: String,
}

impl Bus {
    /// Attaches to bus `name` (the Geometry OS default is `geometry`), which a broker
    /// (`gos-bus serve`) must have set up: without its registry this fails with
    /// [`Error::BusNotRunning`], naming the bus, the path looked at and the command to run.
    /// The rings keep working while the broker restarts.
    ///
    /// A broker in another PID namespace than this process (a client in a container without
    /// `--pid=host`) is refused with [`Error::ForeignPidNamespace`]: it could not tell this
    /// process alive.
    pub fn attach(name: &str) -> Result<Bus> {
        let reg = gos_bus_protocol::registry::open(name)?;
        let broker = reg.header.broker_pid_ns;
        if let Some(ours) = proc::pid_namespace() {
            if broker != 0 && broker != ours {
                return Err(Error::ForeignPidNamespace {
                    bus: name.into(),
                    broker,
                    ours,
                });
            }
        }
        Ok(Bus { name: name.into() })
    }

    /// A bus without a broker: rings are created and removed by the caller
    /// ([`Bus::create_ring`], [`Bus::remove_ring`]) and nobody reclaims what a dead client
    /// held. For tests, benchmarks and self-contained programs.
    pub fn standalone(name: &str) -> Result<Bus> {
        name::check_bus(name)?;
        Ok(Bus { name: name.into() })
    }

    /// The bus name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates ring `ring` (fails if it exists).
    pub fn create_ring(&self, ring: &str, config: &RingConfig) -> Result<Ring> {
        Ok(Ring {
            seg: Arc::new(Segment::create(&self.name, ring, config)?),
        })
    }

    /// Opens the existing ring `ring`.
    pub fn open_ring(&self, ring: &str) -> Result<Ring> {
        Ok(Ring {
            seg: Arc::new(Segment::open(&self.name, ring)?),
        })
    }

    /// Removes ring `ring` from `/dev/shm`.
    pub fn remove_ring(&self, ring: &str) -> Result<()> {
        Segment::unlink(&self.name, ring)
    }

    /// The names of the rings of this bus.
    pub fn rings(&self) -> Result<Vec<String>> {
        name::list_rings(&self.name)
    }

    /// Opens `ring` and makes a publisher of `T` on it.
    pub fn publisher<T: Layout>(&self, ring: &str) -> Result<Publisher<T>> {
        self.open_ring(ring)?.publisher()
    }

    /// Opens `ring` and makes a subscriber (or, on a work queue, a worker) of `T` on it.
    pub fn subscriber<T: Layout>(&self, ring: &str) -> Result<Subscriber<T>> {
        self.open_ring(ring)?.subscriber()
    }
}

/// An open ring. Cheap to clone; publishers and subscribers keep it mapped.
#[derive(Clone)]
pub struct Ring {
    pub(crate) seg: Arc<Segment>,
}

impl Ring {
    /// The mapped segment (geometry, header snapshot, raw protocol access).
    pub fn segment(&self) -> &Segment {
        &self.seg
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// Refuses a layout whose fingerprint differs from the ring's (raw [`super::Bytes`] is
    /// accepted on any ring).
    pub(crate) fn check_layout<T: Layout>(&self) -> Result<()> {
        let g = self.seg.geometry();
        if T::LAYOUT.fingerprint == gos_layouts::BYTES.fingerprint
            || T::LAYOUT.fingerprint == g.layout_fingerprint
        {
            return Ok(());
        }
        Err(Error::LayoutMismatch {
            ring: self.name().into(),
            ring_layout: g.layout_name.clone(),
            ring_fingerprint: g.layout_fingerprint,
            wanted: T::LAYOUT.name.into(),
            wanted_fingerprint: T::LAYOUT.fingerprint,
        })
    }

    /// Takes an entry in the ring's client table.
    pub(crate) fn register(&self, role: u32) -> Result<Claim> {
        let pid = std::process::id();
        let name = crate::client_name::entry_name();
        let id = Identity {
            role,
            pid,
            start_time: proc::start_time(pid).unwrap_or(0),
            now_ns: proc::now_ns(),
            name,
        };
        entry::claim(&self.seg.ring(), &id).ok_or_else(|| Error::ClientTableFull {
            ring: self.name().into(),
            max: self.seg.geometry().max_clients,
        })
    }

    /// Makes a publisher of `T`; fails with [`Error::LayoutMismatch`] if the ring carries
    /// another layout.
    pub fn publisher<T: Layout>(&self) -> Result<Publisher<T>> {
        Publisher::new(self.clone())
    }

    /// Makes a subscriber of `T` (a competing worker on a work queue); fails with
    /// [`Error::LayoutMismatch`] if the ring carries another layout. A broadcast subscriber
    /// sees the messages published after it attached.
    pub fn subscriber<T: Layout>(&self) -> Result<Subscriber<T>> {
        Subscriber::new(self.clone())
    }
}

//! Where `gos-bus up` finds the programs it starts. The rule, and nothing else (it never
//! looks for a source checkout):
//!
//! - `gos-bus` (the broker), `gos-render-node`, `gos-dna-sandbox` and `gos-dna-wasm` (the DNA
//!   executor's sandbox and WebAssembly worker) and `libgos_bus_c.so`: in the program folder,
//!   `--bin-dir DIR`, by default the folder of the running `gos-bus` (so `target/release/`
//!   after `cargo build --release`, or wherever they were installed together);
//! - `frames`, the Rust frame producer (an example of `gos-bus-client`): `DIR/frames`, else
//!   `DIR/examples/frames` (where cargo puts examples);
//! - the Python daemons: `PYTHON -m gos_bus.daemons` (`--python`, default `python3`), which
//!   must import `gos_bus`: installed (`pip install ./clients/python`) or on `PYTHONPATH`
//!   (`./gos` sets it to the checkout's `clients/python`). They get `GOS_BUS_LIB` pointing at
//!   `DIR/libgos_bus_c.so`, `GOS_DNA_SANDBOX` at `DIR/gos-dna-sandbox` and `GOS_DNA_WASM` at
//!   `DIR/gos-dna-wasm`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The programs of one run.
pub struct Programs {
    bin: PathBuf,
    frames: PathBuf,
    python: String,
}

impl Programs {
    /// Finds every program by the rule above; an error names what is missing and how to get
    /// it.
    pub fn find(bin_dir: Option<&Path>, python: &str) -> Result<Programs, String> {
        let bin = match bin_dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find this executable: {e}"))?
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf(),
        };
        let build = "build them with `cargo build --release -p gos-bus -p gos-render-node -p gos-bus-c -p gos-dna -p gos-dna-wasm -p gos-bus-client --examples` (`./gos up` does), or pass --bin-dir DIR";
        for name in [
            "gos-bus",
            "gos-render-node",
            "gos-dna-sandbox",
            "gos-dna-wasm",
            "libgos_bus_c.so",
        ] {
            if !bin.join(name).is_file() {
                return Err(format!("{} is missing: {build}", bin.join(name).display()));
            }
        }
        let frames = [bin.join("frames"), bin.join("examples/frames")]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "the frame producer is missing (neither {0}/frames nor {0}/examples/frames): {build}",
                    bin.display()
                )
            })?;
        let programs = Programs {
            bin,
            frames,
            python: python.to_string(),
        };
        programs.check_python()?;
        Ok(programs)
    }

    /// Fails unless the Python interpreter imports `gos_bus`.
    fn check_python(&self) -> Result<(), String> {
        let out = self
            .python_cmd()
            .args(["-c", "import gos_bus"])
            .output()
            .map_err(|e| format!("cannot run {}: {e} (pass --python PATH)", self.python))?;
        if out.status.success() {
            return Ok(());
        }
        let why = String::from_utf8_lossy(&out.stderr);
        let last = why.lines().last().unwrap_or("").trim();
        Err(format!(
            "{} cannot import gos_bus ({last}): install it with `pip install ./clients/python`, or set PYTHONPATH to the folder that holds gos_bus (`./gos up` does)",
            self.python
        ))
    }

    fn python_cmd(&self) -> Command {
        let mut c = Command::new(&self.python);
        c.env("GOS_BUS_LIB", self.bin.join("libgos_bus_c.so"));
        c.env("GOS_DNA_SANDBOX", self.bin.join("gos-dna-sandbox"));
        c.env("GOS_DNA_WASM", self.bin.join("gos-dna-wasm"));
        c
    }

    /// `gos-bus` itself, from the program folder.
    pub fn gos_bus(&self) -> Command {
        Command::new(self.bin.join("gos-bus"))
    }

    /// The path `gos-bus` is run from, for the hints `up` prints.
    pub fn gos_bus_path(&self) -> PathBuf {
        self.bin.join("gos-bus")
    }

    /// The render node.
    pub fn render_node(&self) -> Command {
        Command::new(self.bin.join("gos-render-node"))
    }

    /// The Rust frame producer.
    pub fn frames(&self) -> Command {
        Command::new(&self.frames)
    }

    /// A Python daemon of `gos_bus.daemons` with `args`.
    pub fn python(&self, args: &[&str]) -> Command {
        let mut c = self.python_cmd();
        c.args(["-u", "-m", "gos_bus.daemons"]).args(args);
        c
    }
}

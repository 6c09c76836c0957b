"""Three Geometry OS daemons on the bus.

    python3 -m gos_bus.daemons rts-watch --folder assets/ [--bus geometry] [--every 0.5]
    python3 -m gos_bus.daemons dna-exec [--bus geometry]
    python3 -m gos_bus.daemons terrain --folder assets/ [--manifest map.json] [--bus geometry]

- `RtsWatcher` publishes every new or changed `.rts.png` of a folder on `rts.textures`, through
  the Rust loader. A file that is not usable PixelRTS is reported once (until it changes) and
  skipped. A file that carries Hybrid DNA (an `RTS_Logic` chunk or a Hybrid-DNA-v1 record)
  also becomes a `DnaJob` on `dna.jobs`, its `texture_id` naming the texture, granted the
  whole API; so does a Pixel Code Executor cartridge (its data a WebAssembly module), as a
  WebAssembly job that calls the module's entry point.
- `TerrainKeeper` lays the `.rts.png` files of a folder (and a map manifest's bricks) on the
  render node's neural terrain as bricks, through `NeuralTerrain`.
- `DnaExecutor` takes `DnaJob`s from `dna.jobs` (a work queue: run several to share the work),
  runs each script in the sandbox (`gos-dna-sandbox`: namespaces, Landlock, seccomp, rlimits)
  and each WebAssembly module in wasmtime (`gos-dna-wasm`), carries out the API calls the job is
  granted, and publishes a `DnaResult` (ok, error, timeout, rejected; the limit that ended it;
  the output; a module's returned values) on `dna.results`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import struct
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from .client import Bus, Message, set_client_name
from .daemon import BaseDaemon
from .errors import GosBusError, Timeout
from . import _native
from .layouts import by_name
from .dna import HybridDNARejectedError, Sandbox, WasmSandbox
from .rts import RtsAsset, RtsPublisher, extract_dna
from .terrain import MAP_CELLS, NeuralTerrain
from .terminal import TerminalWindow

# DnaJob / DnaResult codes, as the layouts define them (read from the library).
CODE_UTF8 = _native.constant("DNA_CODE_UTF8")
CODE_ZLIB = _native.constant("DNA_CODE_ZLIB")
CODE_HYBRID = _native.constant("DNA_CODE_HYBRID_V1")
LANG_UNKNOWN = _native.constant("DNA_LANG_UNKNOWN")
LANG_PYTHON = _native.constant("DNA_LANG_PYTHON")
STATUS_OK = _native.constant("DNA_STATUS_OK")
STATUS_ERROR = _native.constant("DNA_STATUS_ERROR")
STATUS_TIMEOUT = _native.constant("DNA_STATUS_TIMEOUT")
STATUS_REJECTED = _native.constant("DNA_STATUS_REJECTED")
DEFAULT_TIMEOUT_MS = _native.constant("DNA_DEFAULT_TIMEOUT_MS")
KIND_SCRIPT = _native.constant("DNA_KIND_SCRIPT")
KIND_WASM = _native.constant("DNA_KIND_WASM")
LANG_WASM = _native.constant("DNA_LANG_WASM")
MAX_VALUES = _native.constant("DNA_MAX_VALUES")
EXPORT_MAX = _native.constant("DNA_EXPORT_MAX")
# What a job carried by an RTS asset may call: every function of the API.
API_ALL = _native.constant("DNA_API_LOG") | _native.constant("DNA_API_SPAWN_BRICK") | _native.constant("DNA_API_DEPLOY_TO_MAP")
# The records themselves: sizes (where the code and output start), versions and magics.
_JOB = by_name("DnaJob")
_RESULT = by_name("DnaResult")
_FRAME = by_name("RenderFrame")
# Source ids of the windows `spawn_brick` makes (BRICK_SOURCE_BASE + brick number).
BRICK_SOURCE_BASE = 0xD7A0_0000


class RtsWatcher(BaseDaemon):
    """Publishes new and changed `.rts.png` files of `folder` on `rts.textures` (`textures_ring`),
    scanning every `every` seconds: a `BaseDaemon` without a ring, working in `on_tick`."""

    textures_ring = "rts.textures"

    def __init__(self, folder: str, bus: Any = "geometry", ring: str = "rts.textures", every: float = 0.5, **options: Any) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder to watch")
        super().__init__(bus, tick_interval=every, textures_ring=ring, **options)
        self.every = every
        self._pub: Optional[RtsPublisher] = None
        self._jobs: Optional[Any] = None
        self._seen: Dict[str, Tuple[int, int]] = {}
        self.published = 0
        self.errors = 0
        self.jobs = 0

    def on_start(self) -> None:
        self.scan()

    def on_tick(self) -> None:
        self.scan()

    def on_stop(self) -> None:
        if self._pub is not None:
            self._pub.close()
            self._pub = None

    def scan(self) -> int:
        """One pass over the folder; returns how many files were published."""
        n = 0
        for entry in sorted(os.scandir(self.folder), key=lambda e: e.name):
            if not entry.name.endswith(".rts.png") or not entry.is_file():
                continue
            st = entry.stat()
            key = (st.st_mtime_ns, st.st_size)
            if self._seen.get(entry.path) == key:
                continue
            if self._stopping:
                break
            if self._pub is None:
                self._pub = RtsPublisher(self.bus, self.textures_ring)
            try:
                # A full ring (its readers behind) must not keep the watcher from stopping:
                # wait a little, then leave the file for the next scan.
                p = self._pub.publish(entry.path, timeout=0.2)
            except Timeout:
                continue
            except GosBusError as e:
                self._seen[entry.path] = key
                self.errors += 1
                print(f"rts-watch: skipped {entry.name}: {e}", file=sys.stderr, flush=True)
                # Its texture is unusable, but the DNA it carries is still a job.
                self._submit_dna(entry.path, st.st_mtime_ns)
                continue
            self._seen[entry.path] = key
            n += 1
            self.published += 1
            print(f"rts-watch: published {entry.name} ({p.data_size} bytes, sha256 {p.sha256[:16]}...)", flush=True)
            self._submit_dna(entry.path, st.st_mtime_ns)
            self._submit_module(entry.path, st.st_mtime_ns)
        return n

    def _job_id(self, texture_id: int, mtime_ns: int, wasm: bool = False) -> int:
        """An asset job's id: the top bit set, the next one for a module; the rest follows from
        the texture and the file's version."""
        return (1 << 63) | (int(wasm) << 62) | ((texture_id ^ mtime_ns) & ((1 << 62) - 1))

    def _send(self, record: bytes, code: bytes) -> None:
        if self._jobs is None:
            self._jobs = self.bus.publisher("dna.jobs", layout="DnaJob")
        self._jobs.send(record + code, timeout=1.0)

    def _submit_module(self, path: str, mtime_ns: int) -> None:
        """Submits the WebAssembly module a cartridge carries, if any, as a job that calls its
        entry point, granted the whole API."""
        name = os.path.basename(path)
        try:
            with RtsAsset.load(path) as asset:
                module = asset.wasm_module
                if module is None:
                    return
                job_id = self._job_id(asset.texture_id, mtime_ns, wasm=True)
                record, code = make_wasm_job(job_id, module, api_mask=API_ALL, texture_id=asset.texture_id)
            self._send(record, code)
        except (GosBusError, ValueError, OSError) as e:
            self.errors += 1
            print(f"rts-watch: no WebAssembly job from {name}: {e}", file=sys.stderr, flush=True)
            return
        self.jobs += 1
        print(f"rts-watch: submitted WebAssembly job {job_id:#x} from {name} ({len(module)} bytes)", flush=True)

    def _submit_dna(self, path: str, mtime_ns: int) -> None:
        """Submits the Hybrid DNA `path` carries, if any, as a job on `dna.jobs`."""
        name = os.path.basename(path)
        try:
            dna = extract_dna(path)
            if dna is None:
                return
            if dna.language != "python":
                print(f"rts-watch: {name} carries {dna.language} DNA; not submitted", flush=True)
                return
            job_id = self._job_id(dna.texture_id, mtime_ns)
            record, code = make_job(job_id, dna.code, api_mask=API_ALL, texture_id=dna.texture_id)
            self._send(record, code)
        except (GosBusError, ValueError, OSError) as e:
            # A malformed carrier, code too large for a slot, a queue that stayed full: this
            # file's DNA is reported and skipped; the watcher goes on.
            self.errors += 1
            print(f"rts-watch: no DNA job from {name}: {e}", file=sys.stderr, flush=True)
            return
        self.jobs += 1
        print(f"rts-watch: submitted DNA job {job_id:#x} from {os.path.basename(path)} ({(dna.source or '').rsplit('(', 1)[-1].rstrip(')')})",
              flush=True)


class TerrainKeeper(BaseDaemon):
    """Lays the `.rts.png` files of `folder` on the neural terrain as bricks (`NeuralTerrain`),
    from the middle of the map outwards in rows, and each new one as it appears (the folder is
    scanned every `every` seconds); with `manifest`, the bricks a Geometry OS map manifest
    lists first. A file that is not usable PixelRTS is said once and skipped."""

    def __init__(self, folder: str, bus: Any = "geometry", manifest: Optional[str] = None, every: float = 2.0,
                 **options: Any) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder of bricks")
        super().__init__(bus, tick_interval=every, **options)
        self.manifest = manifest
        self.terrain: Optional[NeuralTerrain] = None
        self._tried: Dict[str, int] = {}

    def _cells(self) -> List[Tuple[int, int]]:
        """The map cells in the order bricks fill them: the middle rows first."""
        mid = MAP_CELLS // 2
        rows = sorted(range(MAP_CELLS), key=lambda y: (abs(y - mid + 0.5), y))
        return [(x, y) for y in rows for x in range(2, MAP_CELLS - 2)]

    def on_start(self) -> None:
        if self.manifest:
            self.terrain = NeuralTerrain.from_manifest(self.manifest, bricks=self.folder, bus=self.bus)
        else:
            self.terrain = NeuralTerrain(self.bus)
        self.scan()

    def on_tick(self) -> None:
        self.scan()

    def scan(self) -> int:
        """Lays the files not laid yet; returns how many were."""
        terrain = self.terrain
        if terrain is None:
            return 0
        laid = 0
        # Where each file lies already (the manifest's bricks too): a changed file is laid
        # again on its own cell, a new one on the next free cell.
        at = {os.path.realpath(path): cell for cell, path in terrain.placed().items()}
        free = [c for c in self._cells() if c not in terrain.bricks]
        for entry in sorted(os.scandir(self.folder), key=lambda e: e.name):
            if not entry.name.endswith(".rts.png") or not entry.is_file():
                continue
            mtime = entry.stat().st_mtime_ns
            real = os.path.realpath(entry.path)
            if self._tried.get(real) == mtime or (real in at and real not in self._tried):
                self._tried[real] = mtime
                continue
            self._tried[real] = mtime
            own = at.get(real)
            if own is None and not free:
                continue
            cell = own if own is not None else free.pop(0)
            try:
                terrain.add_brick(cell, entry.path)
            except GosBusError as e:
                if own is None:
                    free.insert(0, cell)
                print(f"terrain: skipped {entry.name}: {e}", file=sys.stderr, flush=True)
                continue
            laid += 1
            print(f"terrain: laid {entry.name} on cell {cell[0]},{cell[1]}", flush=True)
        return laid

    def on_stop(self) -> None:
        if self.terrain is not None:
            self.terrain.close()


class BrickWindows:
    """The windows DNA jobs asked for with `spawn_brick`: each an RTS texture shown at a
    position, republished on `render.frames` twice a second from a thread of its own (the
    render node fades a window whose source stops publishing). At most `keep`, oldest first
    out."""

    size = 128
    keep = 64

    def __init__(self, bus: Bus, ring: str = "render.frames") -> None:
        self._bus, self._ring = bus, ring
        self._bricks: List[Tuple[int, int, int, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next = 0
        self._thread = threading.Thread(target=self._refresh, name="brick-windows", daemon=True)
        self._thread.start()

    def add(self, x: int, y: int, texture_id: int) -> int:
        """Shows `texture_id` with its top-left corner at output pixel (x, y); returns the
        brick's number."""
        with self._lock:
            self._next += 1
            self._bricks.append((self._next, x, y, texture_id))
            del self._bricks[: -self.keep]
            return self._next

    def _frame(self, n: int, x: int, y: int, texture_id: int) -> bytes:
        f = _FRAME.struct()  # type: ignore[misc]
        f.magic[:] = list(_FRAME.schema["magic"].encode())
        f.version = _FRAME.schema["version"]
        f.source_id = BRICK_SOURCE_BASE + n
        f.kind = _native.constant("FRAME_PIXEL_WINDOW")
        f.flags = _native.constant("FRAME_FLAG_VISIBLE") | _native.constant("FRAME_FLAG_DECORATED")
        title = f"DNA brick {n}".encode()
        f.title[: len(title)] = list(title)
        f.width = f.height = self.size
        f.pos_x, f.pos_y = x, y
        f.zoom = 1.0
        f.z_order = 200
        f.texture_id = texture_id
        return bytes(f)

    def _refresh(self) -> None:
        pub = None
        try:
            pub = self._bus.publisher(self._ring, layout="RenderFrame")
            while not self._stop.is_set():
                with self._lock:
                    bricks = list(self._bricks)
                for b in bricks:
                    pub.send(self._frame(*b), timeout=0.2)
                self._stop.wait(0.5)
        except GosBusError as e:
            print(f"dna-exec: brick windows stopped: {e}", file=sys.stderr, flush=True)
        finally:
            if pub is not None:
                pub.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class DnaExecutor(BaseDaemon):
    """Runs Hybrid DNA jobs from `dna.jobs` in the sandbox and answers on `dna.results`.

    Each script runs under `gos-dna-sandbox` (namespaces, Landlock, seccomp, rlimits; see
    `gos_bus.dna`); each WebAssembly module (kind wasm) in the `gos-dna-wasm` worker (wasmtime;
    see `WasmSandbox`), its export's returned values in the result. Its API calls, as its `allowed_api_mask` grants them, are carried out
    here: `log` and `deploy_to_map` publish a JSON line on `events`, `spawn_brick` shows the
    texture as a window on `render.frames` (and says so on `events`). At start-up the
    executor asks which isolation layers the kernel offers and refuses to run (one line)
    when one is missing, unless `weaker_sandbox` (Landlock or seccomp may be missing) or
    `no_sandbox` (no isolation at all: trusted code only) is chosen.
    """

    ring = "dna.jobs"
    layout = "DnaJob"
    results_ring = "dna.results"
    events_ring = "events"
    frames_ring = "render.frames"
    max_output = 60_000
    max_attempts = 1
    weaker_sandbox = False
    no_sandbox = False
    python = "auto"
    sandbox_limits: Optional[Dict[str, str]] = None
    #: Where to show the Neural Console, a terminal window printing each job's result
    #: (top-left output pixel; None: no console), its grid and its style.
    console_at: Optional[Tuple[int, int]] = None
    console_grid = (72, 12)
    console_style: Optional[str] = "crt_cyan"

    def __init__(self, bus: Optional[str] = None, ring: Optional[str] = None, **options: Any) -> None:
        super().__init__(bus, ring, **options)
        self.sandbox = Sandbox(isolated=not self.no_sandbox, weaker=self.weaker_sandbox, python=self.python,
                               limits={k: v for k, v in (self.sandbox_limits or {}).items() if k != "wasm-memory"})
        self.layers = "no sandbox (trusted code only)"
        if not self.no_sandbox:
            missing = self.sandbox.probe()
            text = "; ".join(f"{k}: {v}" for k, v in missing.items())
            if {"bubblewrap", "namespaces", "probe"} & set(missing):
                raise HybridDNARejectedError(
                    f"the sandbox cannot isolate jobs here ({text}); refusing to run them "
                    "(--no-sandbox runs them unisolated, for trusted code only)"
                )
            if missing and not self.weaker_sandbox:
                raise HybridDNARejectedError(
                    f"the sandbox is incomplete ({text}); refusing to run jobs "
                    "(--weaker-sandbox runs them with the layers there are)"
                )
            self.layers = f"weaker sandbox, missing {text}" if missing else "namespaces, Landlock, seccomp, rlimits"
        # One trial job, so that a setting that cannot work (an interpreter the sandbox cannot
        # reach, a limit that is not one) stops the executor now, in one line, instead of
        # rejecting every job later.
        try:
            trial = self.sandbox.run("pass", lambda name, args: None, timeout=30)
        except HybridDNARejectedError as e:
            raise HybridDNARejectedError(f"cannot run jobs with these settings: {e}") from None
        if not trial.ok:
            raise HybridDNARejectedError(f"cannot run jobs with these settings: {trial.status}: {trial.reason}")
        # The API as Rust defines it (bits and argument types), to check each call again.
        self.api = self.sandbox.api()
        # The WebAssembly worker: started now, so that one that cannot start is said at once;
        # without it the executor still runs scripts and rejects modules, saying why.
        self.wasm = WasmSandbox(weaker=self.weaker_sandbox or self.no_sandbox)
        self.wasm_missing: Optional[str] = None
        try:
            confined = self.wasm.start()
            seccomp = "seccomp" if confined.get("seccomp") else "no seccomp"
            self.wasm_layers = f"wasmtime, worker confined by Landlock ({confined.get('landlock')}) and {seccomp}"
        except (HybridDNARejectedError, FileNotFoundError) as e:
            self.wasm_missing = str(e)
            self.wasm_layers = f"none ({e}); WebAssembly jobs are rejected"

    def on_start(self) -> None:
        self._results = self.bus.publisher(self.results_ring, layout="DnaResult")
        try:
            self._events: Optional[Any] = self.bus.publisher(self.events_ring, layout="Bytes")
        except GosBusError as e:
            print(f"dna-exec: no events ring ({e}); API calls are only printed", file=sys.stderr, flush=True)
            self._events = None
        self._bricks = BrickWindows(self.bus, self.frames_ring)
        self._console: Optional[TerminalWindow] = None
        if self.console_at is not None:
            self._console = TerminalWindow(self.bus, "Neural Console", grid=self.console_grid,
                                           position=self.console_at, style=self.console_style, ring=self.frames_ring)
            self._console.write("\x1b[1;36mNeural Console\x1b[0m  Hybrid DNA results\n")

    def _show(self, job: Any, status: int, exit_code: int, output: bytes, values: Tuple[Dict[str, Any], ...],
              ms: float) -> None:
        """One line on the console: the job, its outcome in colour, and what it returned."""
        if self._console is None:
            return
        name, colour = {STATUS_OK: ("ok", 32), STATUS_ERROR: ("error", 31), STATUS_TIMEOUT: ("timeout", 33),
                        STATUS_REJECTED: ("rejected", 35)}.get(status, (f"status {status}", 37))
        try:
            said = ", ".join(str(v.get("value", v.get("bits"))) for v in values)
            last = output.decode(errors="replace").strip().splitlines()[-1:] if output else []
            detail = f"returned {said}" if said else (last[0] if last else f"exit {exit_code}")
            # The job's output is untrusted: no escape sequence of its own reaches the console.
            detail = "".join(c if c.isprintable() else "?" for c in detail[:40])
            line = f"job {job.job_id & 0xFFFF:>5} \x1b[{colour}m{name:<8}\x1b[0m {detail}  \x1b[90m{ms:.0f} ms\x1b[0m\n"
            self._console.write(line, timeout=0.2)
        except Exception as e:  # noqa: BLE001 - the result is out already: never run the job again
            print(f"dna-exec: console: {e}", file=sys.stderr, flush=True)

    def on_stop(self) -> None:
        if self._console is not None:
            self._console.close()
        self.wasm.close()
        self._bricks.close()
        self._results.close()
        if self._events is not None:
            self._events.close()

    def _raw(self, job: Any, code: bytes) -> Optional[bytes]:
        """The job's code, decoded (None when it does not match its CRC-32 or encoding)."""
        if zlib.crc32(code) & 0xFFFFFFFF != job.code_crc32:
            return None
        if job.code_encoding == CODE_UTF8:
            return code
        if job.code_encoding == CODE_ZLIB:
            return zlib.decompress(code)
        if job.code_encoding == CODE_HYBRID:
            return zlib.decompress(base64.b64decode(code))
        return None

    def _event(self, event: str, job: Any, **fields: Any) -> None:
        line = json.dumps({"event": event, "job_id": job.job_id, "texture_id": job.texture_id, **fields})
        print(f"dna-exec: {line}", flush=True)
        if self._events is not None:
            self._events.send(line.encode(), timeout=1.0)

    def _api(self, job: Any) -> Callable[[str, List[Any]], Any]:
        """The calls of one job, carried out. Their arguments were checked in Rust; the grant
        and the argument types are checked again here, so that a runner that was subverted
        (a WebAssembly worker checks its module's calls in the module's own process) still
        cannot call what the job was not granted."""

        def call(name: str, args: List[Any]) -> Any:
            bit, types = self.api.get(name, (0, ()))
            if not job.allowed_api_mask & bit:
                raise PermissionError(f"{name} is not granted to this job")
            if not (isinstance(args, list) and len(args) == len(types)
                    and all(isinstance(a, t) and not isinstance(a, bool) for a, t in zip(args, types))):
                raise ValueError(f"{name}: malformed arguments {args!r}"[:200])
            if name == "log":
                self._event("dna_log", job, message=args[0])
                return None
            if name == "spawn_brick":
                x, y, texture_id = args
                texture_id = texture_id or job.texture_id
                if not texture_id:
                    raise ValueError("this job has no texture of its own: pass a texture_id")
                brick = self._bricks.add(x, y, texture_id)
                self._event("spawn_brick", job, x=x, y=y, shown_texture=texture_id, brick=brick)
                return brick
            if name == "deploy_to_map":
                x, y, brick = args
                self._event("deploy_to_map", job, x=x, y=y, brick=brick)
                return True
            raise ValueError(f"{name} has no implementation in this executor")

        return call

    def run_job(self, job: Any, code: bytes) -> Tuple[int, int, bytes, int, int, int, Tuple[Dict[str, Any], ...]]:
        """Runs one job: (status, exit code, output, limit, API calls, refused calls, values)."""
        def rejected(why: str) -> Tuple[int, int, bytes, int, int, int, Tuple[Dict[str, Any], ...]]:
            return STATUS_REJECTED, -1, why.encode(), 0, 0, 0, ()

        wasm = job.kind == KIND_WASM or job.language == LANG_WASM
        if not wasm and job.kind != KIND_SCRIPT:
            return rejected(f"job kind {job.kind} is not run here (scripts and WebAssembly modules only)")
        if not wasm and job.language not in (LANG_UNKNOWN, LANG_PYTHON):
            return rejected(f"language {job.language} is not supported (Python scripts and WebAssembly modules)")
        try:
            raw = self._raw(job, code)
            source = None if raw is None or wasm else raw.decode("utf-8")
        except Exception as e:  # noqa: BLE001 - a broken job is rejected, not fatal
            return rejected(f"cannot decode the code: {e}")
        if raw is None:
            return rejected("the code does not match its CRC-32 or encoding")
        timeout = (job.timeout_ms or DEFAULT_TIMEOUT_MS) / 1000
        try:
            if wasm:
                if self.wasm_missing:
                    return rejected(f"no WebAssembly worker here: {self.wasm_missing}")
                if job.arg_count > MAX_VALUES:
                    return rejected(f"the job says it has {job.arg_count} arguments; a DnaJob carries at most {MAX_VALUES}")
                try:
                    export = bytes(job.export).split(b"\0", 1)[0].decode("utf-8")
                except UnicodeDecodeError:
                    return rejected("the job's export name is not UTF-8")
                args = [{"code": job.arg_types[i], "bits": job.args[i]} for i in range(job.arg_count)]
                limits = self.sandbox_limits or {}
                r = self.wasm.run(raw, self._api(job), export=export, args=args, api_mask=job.allowed_api_mask,
                                  timeout=timeout, memory=limits.get("wasm-memory"),
                                  max_calls=int(limits["max-calls"]) if "max-calls" in limits else None)
            else:
                assert source is not None
                r = self.sandbox.run(source, self._api(job), api_mask=job.allowed_api_mask, timeout=timeout)
        except HybridDNARejectedError as e:
            return rejected(str(e))
        output = r.output.encode()
        if wasm:
            # The worker's output is the line that says how the job ended; never leave it out.
            output = output or f"{r.reason}\n".encode()
            values = _checked_values(r.values)
            if values is None:
                return STATUS_ERROR, -1, b"the WebAssembly worker returned values no DnaResult can hold\n", 0, r.calls, r.refused, ()
            return r.status_code, r.exit_code, output, r.limit_code, r.calls, r.refused, values
        if not r.ok:
            output += f"\n{r.status}: {r.reason}".encode()
        return r.status_code, r.exit_code, output, r.limit_code, r.calls, r.refused, r.values

    def on_brick(self, msg: Message) -> None:
        job = msg.header
        code = bytes(msg.payload[_JOB.size : _JOB.size + job.code_len])
        started = time.time_ns()
        status, exit_code, output, limit, calls, refused, values = self.run_job(job, code)
        output = output[-self.max_output :] if len(output) > self.max_output else output
        with self._results.loan() as r:
            h = r.header
            h.magic[:] = list(_RESULT.schema["magic"].encode())
            h.version = _RESULT.schema["version"]
            h.status = status
            h.job_id = job.job_id
            h.started_ns = started
            h.finished_ns = time.time_ns()
            h.exit_code = exit_code
            h.limit = limit
            h.api_calls = calls
            h.api_refused = refused
            h.value_count = len(values)
            for i, v in enumerate(values):
                h.value_types[i] = v["code"]
                h.values[i] = v["bits"]
            h.output_len = len(output)
            r.payload[_RESULT.size : _RESULT.size + len(output)] = output
            r.commit(_RESULT.size + len(output))
        self._show(job, status, exit_code, output, values, (time.time_ns() - started) / 1e6)


def make_job(
    job_id: int,
    source: str,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    encoding: int = CODE_UTF8,
    api_mask: int = 0,
    texture_id: int = 0,
) -> Tuple[bytes, bytes]:
    """The bytes of a DnaJob record and its code, for publishing (used by tests and tools).
    `api_mask`: the `DNA_API_*` bits the job may call; `texture_id`: its texture (0: none)."""
    raw = source.encode()
    code = {CODE_UTF8: raw, CODE_ZLIB: zlib.compress(raw), CODE_HYBRID: base64.b64encode(zlib.compress(raw))}[encoding]
    job = _job_record(job_id, code, timeout_ms, api_mask, texture_id)
    job.language = LANG_PYTHON
    job.code_encoding = encoding
    return bytes(job), code


def _job_record(job_id: int, code: bytes, timeout_ms: int, api_mask: int, texture_id: int) -> Any:
    """A DnaJob record for `code`, its magic, version, id, limits, grant and CRC-32 set."""
    job = _JOB.struct()  # type: ignore[misc]
    job.magic[:] = list(_JOB.schema["magic"].encode())
    job.version = _JOB.schema["version"]
    job.job_id = job_id
    job.texture_id = texture_id
    job.allowed_api_mask = api_mask
    job.timeout_ms = timeout_ms
    job.submitted_ns = time.time_ns()
    job.code_len = len(code)
    job.code_crc32 = zlib.crc32(code) & 0xFFFFFFFF
    return job


def _checked_values(values: Tuple[Dict[str, Any], ...]) -> Optional[Tuple[Dict[str, Any], ...]]:
    """The values a worker reported, when a DnaResult can hold them (at most DNA_MAX_VALUES,
    each a known type code and 64 bits); None otherwise."""
    codes = {_native.constant(f"DNA_VALUE_{t}") for t in ("I32", "I64", "F32", "F64")}
    if not isinstance(values, tuple) or len(values) > MAX_VALUES:
        return None
    for v in values:
        if not (isinstance(v, dict) and v.get("code") in codes and isinstance(v.get("bits"), int)
                and 0 <= v["bits"] < 1 << 64):
            return None
    return values


def make_wasm_job(
    job_id: int,
    module: bytes,
    export: str = "",
    args: Tuple[Tuple[str, Any], ...] = (),
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    api_mask: int = 0,
    texture_id: int = 0,
) -> Tuple[bytes, bytes]:
    """The bytes of a WebAssembly `DnaJob` and its module: call `export` (empty: the module's
    entry point) with `args`, each `(type, value)` with type 'i32', 'i64', 'f32' or 'f64'
    (at most DNA_MAX_VALUES of them). ValueError for an export name longer than DNA_EXPORT_MAX
    bytes, too many arguments, or a value its type cannot hold."""
    name = export.encode()
    if len(name) > EXPORT_MAX or b"\0" in name:
        raise ValueError(f"the export name {export!r} is longer than {EXPORT_MAX} bytes or holds a NUL")
    if len(args) > MAX_VALUES:
        raise ValueError(f"{len(args)} arguments; a DnaJob carries at most {MAX_VALUES}")
    job = _job_record(job_id, module, timeout_ms, api_mask, texture_id)
    job.kind = KIND_WASM
    job.language = LANG_WASM
    job.code_encoding = CODE_UTF8
    job.export[: len(name)] = list(name)
    job.arg_count = len(args)
    for i, arg in enumerate(args):
        if not (isinstance(arg, tuple) and len(arg) == 2):
            raise ValueError(f"argument {i + 1} is {arg!r}, not a (type, value) pair such as ('i32', 21)")
        job.arg_types[i], job.args[i] = _bits(*arg)
    return bytes(job), bytes(module)


def _bits(kind: str, value: Any) -> Tuple[int, int]:
    """A value's type code and 64-bit slot, as `DnaJob::args` stores it (integers two's
    complement, floats their IEEE 754 bits)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind in ("i32", "i64") and not isinstance(value, int)):
        raise ValueError(f"{value!r} is not an {kind}")
    try:
        if kind in ("i32", "i64"):
            width = 32 if kind == "i32" else 64
            v = int(value)
            if not -(1 << (width - 1)) <= v < (1 << width):
                raise ValueError(f"{value!r} is out of the range of an {kind}")
            v &= (1 << width) - 1
            if kind == "i32" and v >= 1 << 31:
                v -= 1 << 32  # sign-extended, as the layouts say
            return _native.constant(f"DNA_VALUE_{kind.upper()}"), v & ((1 << 64) - 1)
        if kind == "f32":
            return _native.constant("DNA_VALUE_F32"), struct.unpack("<I", struct.pack("<f", float(value)))[0]
        if kind == "f64":
            return _native.constant("DNA_VALUE_F64"), struct.unpack("<Q", struct.pack("<d", float(value)))[0]
    except (TypeError, OverflowError, struct.error) as e:
        raise ValueError(f"{value!r} is not an {kind}: {e}") from None
    raise ValueError(f"argument type {kind!r} is not one of i32, i64, f32, f64")


# The limits `dna-exec --limit NAME=VALUE` passes on to `gos-dna-sandbox run --NAME VALUE`.
LIMITS = ("cpu", "memory", "processes", "file-size", "open-files", "work-size", "max-output", "max-calls", "wasm-memory")


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(prog="python3 -m gos_bus.daemons", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("rts-watch", help="publish new and changed .rts.png files of a folder")
    w.add_argument("--folder", required=True)
    w.add_argument("--bus", default="geometry", help="the bus to attach to (default: geometry)")
    w.add_argument("--every", type=float, default=0.5, help="seconds between scans")
    w.add_argument("--seconds", type=float, default=None, help="stop after this long")
    t = sub.add_parser("terrain", help="lay the .rts.png files of a folder on the neural terrain as bricks")
    t.add_argument("--folder", required=True, help="the bricks (new files are laid as they appear)")
    t.add_argument("--manifest", default=None, help="a Geometry OS map manifest to lay first ({\"x,y\": {\"brick\": name}})")
    t.add_argument("--bus", default="geometry", help="the bus to attach to (default: geometry)")
    t.add_argument("--every", type=float, default=2.0, help="seconds between scans of the folder")
    d = sub.add_parser("dna-exec", help="run Hybrid DNA jobs from dna.jobs in the sandbox",
                       description="Runs each job of dna.jobs in the sandbox (gos-dna-sandbox), within the job's "
                                   "own timeout_ms (default 30 s), and publishes its DnaResult on dna.results.")
    d.add_argument("--bus", default="geometry", help="the bus to attach to (default: geometry)")
    d.add_argument("--jobs", type=int, default=None, help="stop after this many jobs")
    d.add_argument("--python", default="auto", help="interpreter for jobs (default: /usr/bin/python3 when there is one)")
    d.add_argument("--weaker-sandbox", action="store_true",
                   help="run jobs even where Landlock or seccomp is missing (bubblewrap's namespaces are still required)")
    d.add_argument("--no-sandbox", action="store_true", help="run jobs with no isolation at all (trusted code only)")
    d.add_argument("--console", default=None, metavar="X,Y",
                   help="show the Neural Console, a terminal window printing each job's result, with its top-left "
                        "corner at output pixel X,Y of the render node")
    d.add_argument("--console-grid", default="72x12", metavar="COLUMNSxROWS",
                   help="the console's size in character cells of 8x16 pixels (default 72x12)")
    d.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                   help=f"a sandbox limit, repeatable: {', '.join(LIMITS)} (as `gos-dna-sandbox run --help` "
                        "describes them; e.g. --limit memory=256M --limit cpu=5). Scripts get all but wasm-memory; "
                        "WebAssembly modules get max-calls and wasm-memory (bytes of linear memory, default 64 MiB)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "terrain":
            keeper = TerrainKeeper(args.folder, bus=args.bus, manifest=args.manifest, every=args.every)
            print("ready", flush=True)
            keeper.run()
        elif args.cmd == "rts-watch":
            print("ready", flush=True)
            RtsWatcher(args.folder, bus=args.bus, every=args.every).run(seconds=args.seconds)
        else:
            limits = {}
            for item in args.limit:
                name, _, value = item.partition("=")
                if name not in LIMITS or not value:
                    ap.error(f"--limit {item!r}: expected NAME=VALUE with NAME one of {', '.join(LIMITS)}")
                limits[name] = value
            console = None
            if args.console is not None:
                try:
                    cx, cy = (int(v) for v in args.console.split(","))
                except ValueError:
                    ap.error(f"--console {args.console!r}: expected X,Y in output pixels, such as 40,300")
                console = (cx, cy)
            try:
                cols, rows = (int(v) for v in args.console_grid.lower().split("x"))
            except ValueError:
                ap.error(f"--console-grid {args.console_grid!r}: expected COLUMNSxROWS, such as 72x12")
            ex = DnaExecutor(bus=args.bus, python=args.python, weaker_sandbox=args.weaker_sandbox,
                             no_sandbox=args.no_sandbox, sandbox_limits=limits, console_at=console,
                             console_grid=(cols, rows))
            print(f"dna-exec: sandbox: {ex.layers}", file=sys.stderr, flush=True)
            print(f"dna-exec: WebAssembly: {ex.wasm_layers}", file=sys.stderr, flush=True)
            print("ready", flush=True)
            stats = ex.run(max_messages=args.jobs)
            print(f"dna-exec: {stats.handled} jobs done, {stats.failed} failed", flush=True)
    except (GosBusError, FileNotFoundError, ValueError) as e:
        sys.exit(f"{ap.prog} {args.cmd}: {e}")


if __name__ == "__main__":
    main()

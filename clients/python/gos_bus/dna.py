"""Hybrid DNA, the Geometry OS proposal's API: untrusted scripts run under kernel isolation.

    from gos_bus import HybridDNA, HybridDNATimeoutError

    dna = HybridDNA("spawn_brick(3, 4)\\nprint('placed')")
    result = dna.execute(sandbox=True, api={"spawn_brick": lambda x, y, texture_id: 1}, timeout=30)
    print(result.output)                    # 'placed\\n'

The isolation itself is Rust (`gos-dna-sandbox`, crate `dna/`): bubblewrap namespaces (user,
mount, PID, IPC, network, UTS), Landlock, seccomp, `no_new_privs` and rlimits; this module starts
it, answers the job's API calls and turns its result into a value or an exception. The API a
job may be granted (`log`, `spawn_brick`, `deploy_to_map`) is defined once, in the Rust crate;
`gos-dna-sandbox api` lists it. A job sees the granted functions as builtins and in the module
`gos`; each call is checked (name, grant, arity, types, ranges) before `api`'s function is
called, and what it returns goes back to the job (JSON values only).
"""

from __future__ import annotations

import base64
import collections
import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _native
from .errors import GosBusError

SANDBOX_TOOL = "gos-dna-sandbox"
SANDBOX_ENV = "GOS_DNA_SANDBOX"
WASM_TOOL = "gos-dna-wasm"
WASM_ENV = "GOS_DNA_WASM"


class HybridDNAError(GosBusError):
    """A Hybrid DNA job did not succeed; `.result` says how it ended (None if it never ran)."""

    def __init__(self, message: str, result: Optional["ExecutionResult"] = None) -> None:
        super().__init__(message)
        self.result = result


class HybridDNATimeoutError(HybridDNAError):
    """The job ran past its wall-clock or CPU-time limit and was stopped."""


class HybridDNAExecutionError(HybridDNAError):
    """The job raised, exited non-zero, or hit a limit (memory, processes, output...)."""


class HybridDNARejectedError(HybridDNAError):
    """The job was not run: the sandbox is missing a layer, or the code cannot be used."""


@dataclass(frozen=True)
class ExecutionResult:
    """How a job ended, as `gos-dna-sandbox` reports it.

    `status` is 'ok', 'error', 'timeout' or 'rejected'; `limit` names the limit that ended the
    job ('none', 'wall-time', 'cpu-time', 'memory', 'processes', 'file-size', 'output',
    'work-folder', 'open-files', 'forbidden') and `limit_code` is its `DNA_LIMIT_*` value;
    `reason` is one line; `output` is stdout and stderr together (at most the output limit);
    `calls` and `refused` count API calls carried out and refused; `confined` says what the
    sandbox applied (`{"landlock": "full", "seccomp": True}`), None without a sandbox.
    `values` are what a WebAssembly export returned, each a dict `{"type": "i32", "value": 42,
    "code": 1, "bits": 42}` (`code` and `bits` as a `DnaResult` stores them); empty for scripts.
    """

    status: str
    status_code: int
    exit_code: int
    limit: str
    limit_code: int
    reason: str
    output: str
    calls: int
    refused: int
    wall_ms: float
    confined: Optional[Dict[str, Any]]
    values: Tuple[Dict[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Sandbox:
    """How jobs are run: where `gos-dna-sandbox` is, the interpreter, the isolation, limits.

    `python`: 'auto' (the system's /usr/bin/python3 when there is one) or a path; jobs use the
    standard library only. `weaker`: run where Landlock or seccomp is missing (namespaces are
    still required). `isolated=False`: a plain child process, for trusted code only.
    `limits`: extra `gos-dna-sandbox run` options by name, e.g. `{"memory": "256M", "cpu": 2}`.
    """

    isolated: bool = True
    weaker: bool = False
    python: str = "auto"
    tool: Optional[Path] = None
    limits: Optional[Mapping[str, Any]] = None

    def program(self) -> Path:
        return self.tool or _native.tool(SANDBOX_TOOL, SANDBOX_ENV)

    def probe(self) -> Dict[str, str]:
        """The layers this kernel lacks, by name ('bubblewrap', 'namespaces', 'landlock',
        'seccomp'), each with what to do; empty when every layer is there."""
        done = subprocess.run([str(self.program()), "probe"], capture_output=True, text=True)
        missing = {}
        for line in done.stdout.splitlines():
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[1] == "MISSING":
                missing[parts[0]] = parts[2]
        if done.returncode != 0 and not missing:
            missing["probe"] = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[0]
        return missing

    def api(self) -> Dict[str, Tuple[int, Tuple[type, ...]]]:
        """The injected API as the Rust crate defines it (`gos-dna-sandbox api --json`): each
        function's `allowed_api_mask` bit and its arguments' Python types."""
        done = subprocess.run([str(self.program()), "api", "--json"], capture_output=True, text=True, check=True)
        return {f["name"]: (int(f["bit"]), tuple(int if p["kind"].startswith(("Int", "Id")) else str for p in f["params"]))
                for f in json.loads(done.stdout)["functions"]}

    def run(
        self,
        code: str,
        handler: Callable[[str, List[Any]], Any],
        grant: str = "",
        api_mask: int = 0,
        timeout: float = 30.0,
    ) -> ExecutionResult:
        """Runs `code`; every checked API call becomes `handler(name, args)`, whose return
        value (JSON) goes back to the job and whose exception is raised in the job as
        `gos.ApiError`. Raises HybridDNARejectedError when the sandbox refuses to start."""
        cmd = [str(self.program()), "run", "-", "--relay", "--timeout", repr(float(timeout)),
               "--python", self.python, "--api-mask", str(api_mask)]
        if grant:
            cmd += ["--grant", grant]
        if not self.isolated:
            cmd.append("--no-sandbox")
        elif self.weaker:
            cmd.append("--weaker")
        for k, v in (self.limits or {}).items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, bufsize=1) as p:
            assert p.stdin is not None and p.stdout is not None and p.stderr is not None
            # stderr is read aside so a chatty failure can never block the runner.
            err: List[str] = []
            reader = threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)  # type: ignore[union-attr]
            reader.start()
            result = None
            try:
                p.stdin.write(json.dumps(code) + "\n")
                p.stdin.flush()
                result = _relay(p.stdin, p.stdout, handler)
            except (BrokenPipeError, ValueError):
                pass
            finally:
                try:
                    p.stdin.close()
                except BrokenPipeError:
                    pass
            p.wait()
            reader.join()
        if result is None:
            lines = [line.strip() for line in "".join(err).splitlines() if line.strip()]
            why = next((line for line in lines if not line.startswith(("Usage:", "For more information"))), None)
            raise HybridDNARejectedError(why or f"{SANDBOX_TOOL} exited with {p.returncode}")
        return _result(result)


def _result(result: Dict[str, Any]) -> ExecutionResult:
    fields = {k: result[k] for k in ExecutionResult.__dataclass_fields__ if k in result}
    fields["values"] = tuple(result.get("values") or ())
    return ExecutionResult(**fields)


def _fire(fired: threading.Event, p: "subprocess.Popen[str]") -> None:
    """The watchdog's shot: says it fired, then kills the worker."""
    fired.set()
    p.kill()


def _relay(to: IO[str], lines: IO[str], handler: Callable[[str, List[Any]], Any]) -> Optional[Dict[str, Any]]:
    """Answers the job's API calls read from `lines` (each checked in Rust) with `handler`,
    writing each answer to `to`, until the result line; returns the result (None when the
    stream ends first)."""
    for line in lines:
        msg = json.loads(line)
        if "call" in msg:
            to.write(_answer(handler, msg["call"]) + "\n")
            to.flush()
        elif "result" in msg:
            return msg["result"]  # type: ignore[no-any-return]
    return None


class WasmSandbox:
    """Runs WebAssembly jobs in one long-lived `gos-dna-wasm serve` worker (crate `wasm/`):
    wasmtime with an epoch time limit and a memory limit, each module compiled once (cached by
    SHA-256), no import but the API functions a job is granted (no WASI). The worker confines
    itself (Landlock with no file access, seccomp, `no_new_privs`) before its first job and
    dies with this process. A worker that stops answering is killed and started again.

    `run(module, handler, export=..., args=..., api_mask=..., timeout=...)` runs one job and
    returns its ExecutionResult (`values` holds what the export returned); `handler(name, args)`
    carries out each checked API call. `tool`: the `gos-dna-wasm` to run (default: the
    GOS_DNA_WASM environment variable, else the one installed with this package, else the
    newest in the repository's target folders). `weaker`: run where Landlock or seccomp is
    missing. `grace`: seconds a job may take beyond its own time limit (compiling a large
    module) before the worker is given up on.
    """

    def __init__(self, tool: Optional[Path] = None, weaker: bool = False, grace: float = 20.0) -> None:
        self.tool = tool
        self.weaker = weaker
        self.grace = grace
        self.confined: Optional[Dict[str, Any]] = None
        self._p: Optional["subprocess.Popen[str]"] = None
        self._lock = threading.Lock()
        self._said: "collections.deque[str]" = collections.deque(maxlen=4)
        self._drain: Optional[threading.Thread] = None

    def program(self) -> Path:
        return self.tool or _native.tool(WASM_TOOL, WASM_ENV, package="gos-dna-wasm")

    def start(self) -> Dict[str, Any]:
        """Starts the worker (if it is not running); returns what it confined itself with.
        Raises HybridDNARejectedError, in one line, when it cannot start."""
        with self._lock:
            return self._start()

    def _start(self) -> Dict[str, Any]:
        if self._p is not None and self._p.poll() is None:
            return self.confined or {}
        cmd = [str(self.program()), "serve"] + (["--weaker"] if self.weaker else [])
        try:
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, bufsize=1)
        except OSError as e:
            raise HybridDNARejectedError(f"the WebAssembly worker {cmd[0]} cannot be started: {e}") from None
        assert p.stdout is not None and p.stderr is not None
        # A worker that never says it is ready is given up on (it only warms wasmtime up).
        timer = threading.Timer(self.grace, p.kill)
        timer.start()
        try:
            line = p.stdout.readline()
        finally:
            timer.cancel()
        try:
            self.confined = json.loads(line)["ready"]["confined"]
        except (ValueError, KeyError, TypeError):
            p.kill()
            why = (p.stderr.read().strip().splitlines() or [f"exit status {p.wait()}"])[-1]
            raise HybridDNARejectedError(f"the WebAssembly worker did not start: {why}") from None
        self._p = p
        # Its stderr is drained aside (a worker that says much must never block on it); the
        # last lines explain a worker that dies.
        said: "collections.deque[str]" = collections.deque(maxlen=4)
        self._said = said
        self._drain = threading.Thread(target=lambda: said.extend(p.stderr), daemon=True)  # type: ignore[arg-type]
        self._drain.start()
        return self.confined or {}

    def run(
        self,
        module: bytes,
        handler: Callable[[str, List[Any]], Any],
        export: str = "",
        args: Sequence[Dict[str, Any]] = (),
        api_mask: int = 0,
        timeout: float = 30.0,
        memory: "Optional[int | str]" = None,
        max_calls: Optional[int] = None,
    ) -> ExecutionResult:
        """Calls `export` (empty: the module's entry point: run, main, _start, or its one
        export without parameters) with `args` (each `{"type": "i32", "value": 21}` or, as a
        `DnaJob` stores it, `{"code": 1, "bits": 21}`); every checked API call becomes
        `handler(name, args)` (an exception traps the module). `memory`: bytes of linear
        memory (default 64 MiB; a number, or text such as '256M'); `max_calls`: API calls (default 1000). A worker that ends
        mid-job is an error naming how it ended, one that does not answer within `timeout`
        plus `grace` a timeout; either way it is started again for the next job. Raises
        HybridDNARejectedError when the worker cannot start."""
        if not (isinstance(timeout, (int, float)) and 0.001 <= timeout <= 7 * 24 * 3600):
            raise ValueError(f"timeout must be a number of seconds from 0.001 to 604800 (a week), not {timeout!r}")
        job: Dict[str, Any] = {"module": base64.b64encode(module).decode(), "export": export, "args": list(args),
                               "api_mask": api_mask, "timeout_ms": max(1, int(timeout * 1000))}
        if memory is not None:
            job["memory"] = memory if isinstance(memory, str) else int(memory)
        if max_calls is not None:
            job["max_calls"] = int(max_calls)
        with self._lock:
            self._start()
            p = self._p
            assert p is not None and p.stdin is not None and p.stdout is not None
            fired = threading.Event()
            watchdog = threading.Timer(timeout + self.grace, lambda: _fire(fired, p))
            watchdog.start()
            result, code = None, None
            started = time.monotonic()
            try:
                p.stdin.write(json.dumps({"job": job}) + "\n")
                p.stdin.flush()
                result = _relay(p.stdin, p.stdout, handler)
            except (BrokenPipeError, ValueError, OSError):
                result = None
            finally:
                watchdog.cancel()
                if result is None:
                    # Whatever ended the exchange (the worker, a broken line, an exception
                    # here), a worker whose exchange is not finished cannot take the next job.
                    code = p.poll()
                    self._stop_worker(p)
            if result is None:
                return self._lost(fired.is_set(), code, timeout, time.monotonic() - started)
        return _result(result)

    def _stop_worker(self, p: "subprocess.Popen[str]") -> None:
        p.kill()
        p.wait()
        if self._drain is not None:
            self._drain.join(timeout=1.0)  # its last words, if it said any
        self._p = None

    def _lost(self, timed_out: bool, code: Optional[int], timeout: float, took: float) -> ExecutionResult:
        """The result of a job whose worker was lost."""
        last = f": {self._said[-1].strip()}" if self._said else ""
        c = _native.constant
        if timed_out:
            status, limit = "timeout", "wall-time"
            reason = f"the WebAssembly worker did not answer within {timeout + self.grace:.0f} s{last}; it was stopped"
        elif code is None:
            status, limit = "error", "none"
            reason = f"the WebAssembly worker broke off the exchange{last}; it was stopped"
        else:
            status, limit = "error", "none"
            how = f"signal {-code}" if code < 0 else f"exit status {code}"
            reason = f"the WebAssembly worker ended mid-job ({how}){last}"
        reason += " and is started again for the next job"
        return _result({"status": status, "status_code": c(f"DNA_STATUS_{status.upper()}"), "exit_code": -1,
                        "limit": limit, "limit_code": c("DNA_LIMIT_WALL_TIME") if timed_out else c("DNA_LIMIT_NONE"),
                        "reason": reason, "output": reason + "\n", "calls": 0, "refused": 0, "wall_ms": took * 1e3,
                        "confined": self.confined})

    def close(self) -> None:
        """Stops the worker (it ends when its input does; killed after 5 s)."""
        with self._lock:
            p, self._p = self._p, None
            if p is not None:
                if p.stdin is not None:
                    p.stdin.close()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def _answer(handler: Callable[[str, List[Any]], Any], call: Dict[str, Any]) -> str:
    try:
        return json.dumps({"ok": handler(call["name"], call["args"])})
    except Exception as e:  # noqa: BLE001 - the job is told, the executor goes on
        return json.dumps({"error": f"{call['name']}: {type(e).__name__}: {e}"})


class HybridDNA:
    """A piece of Hybrid DNA: Python source, where it came from, and what it belongs to.

    `code`: the source. `source`: where it came from (a path, 'RTS_Logic iTXt', ...), for
    messages. `language`: only 'python' runs. `texture_id`: the RTS texture it belongs to
    (0 = none); `spawn_brick(x, y)` without a texture id means this one.
    """

    def __init__(self, code: str, source: Optional[str] = None, language: str = "python", texture_id: int = 0) -> None:
        if not isinstance(code, str):
            raise TypeError(f"HybridDNA code must be str, not {type(code).__name__}")
        self.code = code
        self.source = source
        self.language = language
        self.texture_id = texture_id

    def __repr__(self) -> str:
        return f"HybridDNA({len(self.code)} chars, language={self.language!r}, source={self.source!r})"

    def execute(
        self,
        sandbox: bool = True,
        api: Optional[Mapping[str, Callable[..., Any]]] = None,
        timeout: float = 30.0,
        check: bool = True,
        runner: Optional[Sandbox] = None,
    ) -> ExecutionResult:
        """Runs the code and returns its ExecutionResult.

        `sandbox=True` runs it under every isolation layer (and refuses, with
        HybridDNARejectedError, where the kernel lacks one); `sandbox=False` runs a plain child
        process (trusted code only). `api` maps API names to the functions that carry them out;
        only those are granted to the job (an unknown name is a ValueError). `timeout` is the
        wall-clock limit in seconds (HybridDNATimeoutError past it). With `check` (the
        default) a job that does not end ok raises HybridDNAExecutionError (or the timeout
        error); the exception's `.result` has the output.
        """
        if self.language != "python":
            raise HybridDNARejectedError(f"{self.language} Hybrid DNA is not run here (python only; WebAssembly modules run in "
                                         "the DNA executor's gos-dna-wasm worker, or with `gos-dna-wasm run`)")
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        functions = dict(api or {})
        runner = runner or Sandbox(isolated=sandbox)

        def call(name: str, args: List[Any]) -> Any:
            if name == "spawn_brick" and args[2] == 0:
                args[2] = self.texture_id  # "this texture"
            return functions[name](*args)

        try:
            result = runner.run(self.code, call, grant=",".join(functions), timeout=timeout)
        except HybridDNARejectedError as e:
            if "unknown API function" in str(e):
                raise ValueError(str(e).split(": ", 1)[-1]) from None
            raise
        if check and not result.ok:
            where = f" ({self.source})" if self.source else ""
            message = f"Hybrid DNA{where}: {result.status}: {result.reason}"
            if result.status == "timeout":
                raise HybridDNATimeoutError(message, result)
            if result.status == "rejected":
                raise HybridDNARejectedError(message, result)
            raise HybridDNAExecutionError(message, result)
        return result

"""A Python worker process for the tests: `worker.py BUS RING take|hold`.

take: takes jobs until none comes for 2 s, prints one seq per line, then `done`.
hold: takes one job, prints `holding SEQ`, and sleeps (the test kills it).
"""

import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

import gos_bus  # noqa: E402
from conftest import decode  # noqa: E402


def main() -> None:
    bus_name, ring, mode = sys.argv[1:4]
    sub = gos_bus.Bus.attach(bus_name).subscriber(ring)
    print("ready", flush=True)
    if mode == "hold":
        msg = sub.recv(timeout=30)
        print(f"holding {decode(bytes(msg.payload))[1]}", flush=True)
        time.sleep(3600)
        return
    seqs = []
    while True:
        try:
            with sub.recv(timeout=2) as msg:
                seqs.append(decode(bytes(msg.payload))[1])
        except gos_bus.Timeout:
            break
    print("\n".join(str(s) for s in seqs), flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()

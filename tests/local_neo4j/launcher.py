"""A real Neo4j Community 5.26 on this machine, from Maven Central, without Docker.

    python tests/local_neo4j/launcher.py up [--port 7687] [--data DIR]  # in the background
    python tests/local_neo4j/launcher.py down [--data DIR]
    python tests/local_neo4j/launcher.py run -- COMMAND...  # a throwaway Neo4j around COMMAND

The jars are fetched once with Maven (``pom.xml`` here) into ``.neo4j/lib`` and
reused; ``Launcher.java`` runs Neo4j embedded with its Bolt connector on a
loopback port, authentication off. ``run`` starts one on a free port with a
temporary data dir, exports ``IDGRAPH_TEST_NEO4J_URI`` to the command and stops
Neo4j afterwards; the test suite uses it. Any failure to start is an error
with the launcher's output, never a silent skip.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LIB = ROOT / ".neo4j" / "lib"
STARTUP_SECONDS = 180


class Neo4jFailed(RuntimeError):
    pass


def fetch_jars() -> Path:
    """Neo4j's jars in ``.neo4j/lib``, downloaded by Maven the first time."""
    stamp = LIB / ".complete"
    if stamp.exists():
        return LIB
    if shutil.which("mvn") is None:
        raise Neo4jFailed("Maven (mvn) is needed to fetch Neo4j from Maven Central")
    LIB.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(HERE / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={LIB}",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise Neo4jFailed(f"Maven could not fetch Neo4j:\n{done.stdout}\n{done.stderr}")
    stamp.touch()
    return LIB


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(data: Path, port: int, log: Path, password: str | None = None) -> subprocess.Popen[bytes]:
    """Start Neo4j and return once Bolt answers; raise with its output if it does not.

    With ``password`` authentication is on, for the user ``neo4j``.
    """
    if shutil.which("java") is None:
        raise Neo4jFailed("Java 17 is needed to run Neo4j")
    lib = fetch_jars()
    data.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                "java",
                # As the stock neo4j launcher starts it: the heap sized once (Neo4j
                # warns when the initial size is left to the JVM), and the JDK opened
                # to it, without which the page cache runs in a slower "fallback mode"
                # and transaction logs can be neither preallocated nor advised.
                "-Xms1g",
                "-Xmx1g",
                "--add-opens=java.base/java.nio=ALL-UNNAMED",
                "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
                "--add-opens=java.base/java.io=ALL-UNNAMED",
                "-cp",
                f"{lib}/*",
                str(HERE / "Launcher.java"),
                str(data),
                str(port),
                *([password] if password else []),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if b"READY" in log.read_bytes():
            return process
        if process.poll() is not None:
            break
        time.sleep(0.5)
    stop(process)
    raise Neo4jFailed(f"Neo4j did not start on port {port}:\n{log.read_text(errors='replace')}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def cmd_up(args: argparse.Namespace) -> int:
    data = Path(args.data).resolve()
    pid_file = data / "neo4j.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pid_file.unlink()  # left by a Neo4j that died: start a new one
        else:
            print(f"Neo4j already runs from {data} (pid {pid})")
            return 0
    process = start(data, args.port, data.parent / f"{data.name}.log", args.password or None)
    pid_file.write_text(str(process.pid))
    uri = f"bolt://127.0.0.1:{args.port}"
    print(f"Neo4j is up: {uri}, data in {data}")
    if args.password:
        print("Authentication is on: user neo4j, the password in NEO4J_PASSWORD.")
        print(f"  .venv/bin/idgraph serve --neo4j-uri {uri} --neo4j-user neo4j \\")
        print('      --neo4j-password "$NEO4J_PASSWORD"')
    else:
        print("Authentication is off: no user or password is needed (any are accepted).")
        print(f"  .venv/bin/idgraph serve --neo4j-uri {uri}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    pid_file = Path(args.data).resolve() / "neo4j.pid"
    if not pid_file.exists():
        print("no Neo4j started from", args.data)
        return 0
    pid = int(pid_file.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(120):
            os.killpg(pid, 0)
            time.sleep(0.5)
    except ProcessLookupError:
        pass
    pid_file.unlink()
    print("Neo4j stopped")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    command = [c for c in args.command if c != "--"]
    with tempfile.TemporaryDirectory(prefix="idgraph-neo4j-") as scratch:
        port = free_port()
        try:
            process = start(Path(scratch) / "data", port, Path(scratch) / "neo4j.log")
        except Neo4jFailed as exc:
            print(f"launcher: {exc}", file=sys.stderr)
            return 3
        try:
            env = {**os.environ, "IDGRAPH_TEST_NEO4J_URI": f"bolt://127.0.0.1:{port}"}
            return subprocess.call(command, env=env)
        finally:
            stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command_name", required=True)
    up = sub.add_parser("up")
    up.add_argument("--port", type=int, default=int(os.environ.get("NEO4J_BOLT_PORT", "7687")))
    up.add_argument("--data", default=os.environ.get("NEO4J_DATA", ".neo4j/data"))
    up.add_argument(
        "--password",
        default=os.environ.get("NEO4J_PASSWORD", ""),
        help="turn authentication on, for user neo4j (default: NEO4J_PASSWORD; empty: off)",
    )
    up.set_defaults(run=cmd_up)
    down = sub.add_parser("down")
    down.add_argument("--data", default=os.environ.get("NEO4J_DATA", ".neo4j/data"))
    down.set_defaults(run=cmd_down)
    run = sub.add_parser("run")
    run.add_argument("command", nargs=argparse.REMAINDER)
    run.set_defaults(run=cmd_run)
    args = parser.parse_args()
    try:
        code: int = args.run(args)
    except Neo4jFailed as exc:
        print(f"launcher: {exc}", file=sys.stderr)
        return 3
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Start the app on a free local port (headless, no file watcher) for a benchmark, the screenshots or the browser
tests, and stop it afterwards."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(*extra: str, log: Path | None = None, xsrf: bool = False) -> Iterator[tuple[str, subprocess.Popen]]:
    """``(url, process)`` of a running ``streamlit run app.py``. XSRF protection is off unless ``xsrf``: the
    classroom benchmark's script client uploads without a browser's XSRF cookie."""
    port = free_port()
    out = open(log or os.devnull, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless=true",
         "--server.fileWatcherType=none", "--browser.gatherUsageStats=false", "--server.address=127.0.0.1",
         f"--server.port={port}", f"--server.enableXsrfProtection={str(xsrf).lower()}", *extra],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "SEDENSENET_MODELS"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"streamlit did not become healthy{f'; see {log}' if log else ''}")
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(30)
        out.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

"""Classroom load: N sessions on one server act in the same instant (upload a new image, or switch SE ⇄
baseline); each action is timed server-side from the message sent to ``script_finished`` received.

No browser: every session is a websocket client speaking Streamlit's own protocol (``BackMsg``/``ForwardMsg``
protobufs on ``/_stcore/stream``; uploads go to ``/_stcore/upload_file`` as the browser does), so the measuring
side costs almost no CPU. Every prediction the app shows is checked against the library's own answer.

Run: ``nice -n 10 python benchmarks/bench_classroom.py --sessions 8 24 --rounds 3``
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import statistics
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch
import websockets
from app_server import ROOT, app_server, cpu_seconds
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from sedensenet.analysis.pipeline import run_capture
from sedensenet.data.demo import make_sample
from sedensenet.data.images import load_image
from sedensenet.models.checkpoint import load_checkpoint

PRED = re.compile(r"^\*\*(.+?)\*\* \((\d+\.\d)%\)")
VARIANT_LABEL = {"se": "SE model", "baseline": "Baseline (no SE)"}


def default_family() -> str:
    models = ROOT / "assets" / "models"
    return "weather" if all((models / f"weather-{v}.pt").is_file() for v in ("se", "baseline")) else "demo"


@dataclass
class Session:
    """One simulated student: a websocket, the widget states the browser would resend, what it last saw."""

    url: str
    query: str
    ws: websockets.ClientConnection | None = None
    session_id: str = ""
    widgets: dict[str, object] = field(default_factory=dict)  # label/key → element proto
    states: dict[str, object] = field(default_factory=dict)  # widget id → WidgetState
    prediction: tuple[str, float] | None = None

    async def connect(self) -> float:
        self.ws = await websockets.connect(self.url.replace("http", "ws") + "/_stcore/stream",
                                           subprotocols=["streamlit"], max_size=None)
        return await self.rerun()

    async def rerun(self) -> float:
        msg = BackMsg()
        msg.rerun_script.query_string = self.query
        msg.rerun_script.page_script_hash = ""
        msg.rerun_script.widget_states.widgets.extend(self.states.values())
        start = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        self.prediction = None
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(await self.ws.recv())
            kind = fwd.WhichOneof("type")
            if kind == "new_session":
                self.session_id = fwd.new_session.initialize.session_id
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                el = fwd.delta.new_element
                which = el.WhichOneof("type")
                if which == "markdown" and (m := PRED.match(el.markdown.body)):
                    self.prediction = (m.group(1), float(m.group(2)))
                elif which in ("radio", "file_uploader", "selectbox"):
                    proto = getattr(el, which)
                    self.widgets[proto.label] = proto
            elif kind == "script_finished":
                return time.perf_counter() - start

    async def switch(self, variant: str) -> float:
        radio = self.widgets["Variant"]
        state = msg_state(radio.id)
        state.string_value = VARIANT_LABEL[variant]
        self.states[radio.id] = state
        return await self.rerun()

    async def upload(self, name: str, data: bytes) -> float:
        uploader = next(w for label, w in self.widgets.items() if label.startswith("Upload images"))
        start = time.perf_counter()
        file_id = uuid.uuid4().hex
        await asyncio.to_thread(_put, f"{self.url}/_stcore/upload_file/{self.session_id}/{file_id}", name, data)
        state = msg_state(uploader.id)
        info = state.file_uploader_state_value.uploaded_file_info.add()
        info.file_id, info.name, info.size = file_id, name, len(data)
        self.states[uploader.id] = state
        await self.rerun()
        return time.perf_counter() - start


def msg_state(widget_id: str):
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    state = WidgetState()
    state.id = widget_id
    return state


def _put(url: str, name: str, data: bytes) -> None:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, data=body, method="PUT",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    urllib.request.urlopen(req, timeout=120).read()


def png(seed: int, index: int) -> bytes:
    buf = io.BytesIO()
    make_sample(seed, index, 160).pil.save(buf, "PNG")
    return buf.getvalue()


class Oracle:
    """The library's own top-1 for (variant, image bytes), to check what the app showed."""

    def __init__(self, family: str) -> None:
        models = ROOT / "assets" / "models"
        self.models = {v: load_checkpoint(models / f"{family}-{v}.pt", device="cpu") for v in ("se", "baseline")}

    def top1(self, variant: str, data: bytes) -> tuple[str, float]:
        loaded = self.models[variant]
        cap = run_capture(loaded, [load_image(data)])
        i, p = cap.top_k(1)[0]
        return loaded.classes[i], round(100 * p, 1)


async def classroom(url: str, n: int, rounds: int, oracle: Oracle, family: str) -> dict[str, list[float]]:
    sessions = [Session(url, f"model=shipped:{family}") for _ in range(n)]
    await asyncio.gather(*(s.connect() for s in sessions))
    times: dict[str, list[float]] = {"upload": [], "switch": []}
    checks = mismatches = 0
    variant = {id(s): "se" for s in sessions}
    images = {id(s): b"" for s in sessions}
    for r in range(rounds):
        # everybody uploads a new image at once …
        payloads = [png(1000 * n + i, r) for i in range(n)]
        dts = await asyncio.gather(*(s.upload(f"s{i}-r{r}.png", payloads[i]) for i, s in enumerate(sessions)))
        times["upload"] += dts
        for i, s in enumerate(sessions):
            images[id(s)] = payloads[i]
        # … then everybody switches SE ⇄ baseline at once
        for s in sessions:
            variant[id(s)] = "baseline" if variant[id(s)] == "se" else "se"
        times["switch"] += await asyncio.gather(*(s.switch(variant[id(s)]) for s in sessions))
        for s in sessions:
            checks += 1
            expected = oracle.top1(variant[id(s)], images[id(s)])
            if s.prediction is None or s.prediction[0] != expected[0] or abs(s.prediction[1] - expected[1]) > 0.11:
                mismatches += 1
    for s in sessions:
        await s.ws.close()
    times["checks"], times["mismatches"] = [checks], [mismatches]
    return times


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[8, 24])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    family = default_family()
    oracle = Oracle(family)
    print(f"model pair: {family} (the app's default); {args.rounds} rounds of upload + switch per session")
    print("| sessions | action | n | median s | p95 s | max s | checks (mismatches) | server CPU s / rerun |")
    print("|---|---|---|---|---|---|---|---|")
    with app_server(log=Path("/tmp/bench_classroom_server.log")) as (url, proc):
        asyncio.run(classroom(url, 2, 1, oracle, family))  # warm: models loaded, imports done
        for n in args.sessions:
            cpu0 = cpu_seconds(proc.pid)
            t = asyncio.run(classroom(url, n, args.rounds, oracle, family))
            reruns = n * (1 + 2 * args.rounds)
            per_rerun = (cpu_seconds(proc.pid) - cpu0) / reruns
            for action in ("upload", "switch"):
                v = t[action]
                print(f"| {n} | {action} | {len(v)} | {statistics.median(v):.2f} | {pct(v, 95):.2f} | {max(v):.2f} | "
                      f"{t['checks'][0]} ({t['mismatches'][0]}) | {per_rerun:.3f} |", flush=True)


if __name__ == "__main__":
    main()

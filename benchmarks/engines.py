"""Engines compared on one outline: the embedded model in process (transformers) versus one vLLM
CPU server versus two vLLM replicas, and longwriter's overhead against the server's own
throughput on the same requests.

    python -m benchmarks.engines [--chapters 4] [--per-chapter 2] [--tokens 128]

Every side writes the same outline with fixed seeds and fixed lengths (min = max new tokens,
checker off), so each generates the same number of tokens. The single server computes on every
core; the two replicas get one core each (this machine has two), so the replica row shows what
routing and failover cost rather than a speed-up, which needs more machines.

Overhead: the single server writes the outline twice more with the ``independent`` policy (every
section ready at once; the first run only warms vLLM's prefix cache, which the replay would
otherwise meet warm and longwriter cold); every request of the second run is recorded with the section it belongs to,
then replayed straight to the same server with the SDK (each section's requests in order, all
sections at once, as many in flight as longwriter had, each generating exactly as many tokens
as it did). Overhead = longwriter's wall time / the replay's - 1 (the same tokens on both sides): what
longwriter adds on top of the engine (prompt building, scheduling, the wait between a section's
requests, saving) on exactly the same work. llama.cpp's llama-server is included when ``make
llama`` has built it (from the llama.cpp sources in llama-cpp-python's source distribution, about
10 minutes on 2 cores); it serves the embedded model's own GGUF file (Q4_1), so its row compares
engines and quantisation together."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from longwriter.backends.dialects import chat_call
from longwriter.backends.embedded import EMBEDDED_NAME, embedded_model_dir
from longwriter.backends.openai_backend import OpenAIServerBackend
from longwriter.pipeline import expand
from longwriter.writer import WriterSettings

from .common import coffee_outline


class Recorded(OpenAIServerBackend):
    """The server backend, recording (section task, request, completion tokens) per call."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[int, object, int]] = []

    async def complete(self, request):
        reply = await super().complete(request)
        self.calls.append((id(asyncio.current_task()), request, reply.completion_tokens))
        return reply


def write(backend, outline, tokens: int, concurrency: int, policy: str = "chapter") -> dict:
    settings = WriterSettings(check=False, fixed_tokens=tokens, summarize="all", seed=1)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = expand(outline, out, backend=backend, settings=settings, concurrency=concurrency, policy=policy)
        wall = time.perf_counter() - started
    r = result.report
    return {"wall": wall, "words": r.produced_words, "tokens": r.completion_tokens,
            "words_s": r.produced_words / wall, "tokens_s": r.completion_tokens / wall}  # section tokens only


async def replay(backend: Recorded, concurrency: int) -> dict:
    """The recorded requests straight to the server: sections' chains in order, all at once."""
    chains: dict[int, list] = {}
    for task, request, tokens in backend.calls:
        chains.setdefault(task, []).append((request, tokens))
    gate, replica = asyncio.Semaphore(concurrency), backend.pool.replicas[0]
    total = 0

    async def chain(items) -> None:
        nonlocal total
        for request, tokens in items:
            fixed = request.model_copy(update={"sampling": request.sampling.model_copy(
                update={"min_new_tokens": max(1, tokens), "max_new_tokens": max(1, tokens)})})
            async with gate:
                reply = await replica.client.chat.completions.create(
                    **chat_call(backend.dialect, backend.name, fixed, max(1, tokens), None))
            total += reply.usage.completion_tokens

    started = time.perf_counter()
    await asyncio.gather(*(chain(items) for items in chains.values()))
    wall = time.perf_counter() - started
    return {"wall": wall, "tokens": total, "tokens_s": total / wall, "requests": len(backend.calls)}


def show(name: str, r: dict, base: dict | None) -> None:
    ratio = f"  x{r['words_s'] / base['words_s']:.2f} vs in-process" if base else ""
    print(f"{name:>25}: {r['wall']:6.1f} s, {r['words_s']:5.2f} words/s, {r['tokens']} section tokens{ratio}",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chapters", type=int, default=4)
    ap.add_argument("--per-chapter", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128, help="new tokens per section draft (min = max)")
    args = ap.parse_args()
    outline = coffee_outline(args.chapters, args.per_chapter, 90)
    warm = coffee_outline(1, 2, 30)
    print(f"outline: {args.chapters}x{args.per_chapter} sections, {args.tokens} tokens per draft, chapter policy")
    rows = {"in-process": in_process(outline, warm, args.tokens)}
    show(f"in-process ({rows['in-process']['engine']})", rows["in-process"], None)
    rows["one"] = one_server(outline, warm, args.tokens, rows["in-process"])
    rows["two"] = two_replicas(outline, warm, args.tokens, Path(tempfile.gettempdir()))
    show("two replicas, 1 core each", rows["two"], rows["in-process"])
    llama = llama_cpp(outline, warm, args.tokens, Path(tempfile.gettempdir()))
    if llama:
        show("llama.cpp llama-server", llama, rows["in-process"])


def llama_cpp(outline, warm, tokens: int, logs: Path) -> dict | None:
    """The same outline on llama.cpp's server, on the embedded model's own GGUF (Q4_1) file."""
    from longwriter.backends.embedded import gguf_location
    from tests.servers import LLAMA_SERVER, LlamaServer

    if not LLAMA_SERVER.exists():
        print("llama.cpp: not built here (make llama builds llama-server from llama-cpp-python's sources)")
        return None
    folder, name = gguf_location()
    server = LlamaServer(folder / name, logs / "llama.log").start()
    try:
        backend = OpenAIServerBackend([server.url])
        print(f"llama-server started in {server.start_seconds:.0f} s; {backend.notes[-1]}", flush=True)
        write(backend, warm, 8, backend.concurrency)
        return write(backend, outline, tokens, backend.concurrency)
    finally:
        server.stop()


def one_server(outline, warm, tokens: int, base: dict) -> dict:
    """One vLLM server on every core: the outline as written, then the overhead measurement."""
    from tests.servers import VllmServer

    with tempfile.TemporaryDirectory() as logs:
        server = VllmServer(embedded_model_dir(), Path(logs) / "a.log").start()
        print(f"vLLM server started in {server.start_seconds:.0f} s", flush=True)
        try:
            one = Recorded([server.url])
            write(one, warm, 8, one.concurrency)
            row = write(one, outline, tokens, one.concurrency)
            show("one vLLM server", row, base)
            # the overhead run: every section ready at once, as in the replay; run twice and the
            # second recorded, so that longwriter and the replay both meet a warm prefix cache
            write(one, outline, tokens, one.concurrency, policy="independent")
            one.calls.clear()
            independent = write(one, outline, tokens, one.concurrency, policy="independent")
            show("same, independent", independent, None)
            engine = asyncio.run(replay(one, one.concurrency))
        finally:
            server.stop()
    print(f"{'vLLM alone, same work':>25}: {engine['wall']:6.1f} s, {engine['tokens_s']:6.1f} tokens/s "
          f"({engine['requests']} requests, {engine['tokens']} tokens)")
    # the same requests and tokens on both sides: the overhead is the extra wall time
    print(f"longwriter's overhead over the engine: {independent['wall'] / engine['wall'] - 1:+.1%} of the engine's "
          "time on the same work (target <= 10%)", flush=True)
    return row


def in_process(outline, warm, tokens: int) -> dict:
    from longwriter.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(str(embedded_model_dir()), device="cpu", name=EMBEDDED_NAME)
    write(backend, warm, 8, backend.batch_size)  # the first calls are slower
    result = write(backend, outline, tokens, backend.concurrency)
    result["engine"] = backend.engine
    del backend
    return result


def two_replicas(outline, warm, tokens: int, logs: Path) -> dict:
    from tests.servers import VllmServer

    servers = [VllmServer(embedded_model_dir(), logs / f"replica{i}.log", cores=[i]) for i in range(2)]
    try:
        for server in servers:
            server.start()
        backend = OpenAIServerBackend([s.url for s in servers])
        write(backend, warm, 8, backend.concurrency)
        return write(backend, outline, tokens, backend.concurrency)
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()

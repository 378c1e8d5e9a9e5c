"""Lock-step versus request-level scheduling on the embedded model, same engine, same requests.

    python -m benchmarks.scheduling [--chapters 4] [--batch N] [--engine stepping|padded|vllm] [--dtype float32]
                                    [--repeats 1] [--previous]

Lock-step is the previous scheduler's shape, kept here only as the comparison: it takes one
request from every section in flight, sends them together and waits for the longest before any
section moves on. Request-level is longwriter's scheduler: each section's next request goes out
the moment its previous one returns, and a finished section starts its dependants at once.

The outline mixes budgets (60 to 420 words), so drafts, continuations and summaries differ in
length; the checker is off and every request has a fixed seed, and a section's token limits
depend only on its own output, so both sides send the same requests (the script checks how
many). Both sides run on the same engine (``--engine``: stepping, where a finished row leaves
the batch at once and a new request joins it; or padded, one generate per batch). Printed:
words/s and their ratio, the delay from a section's dependencies finishing to its first
request going out (mean, p90), the engine's occupancy (the mean number of rows per decode
step, time-weighted, against the rows allowed) and the share of engine time in which requests
waited although rows were free (engine calls that ended with requests queued and room in the
batch: those requests came during the call and waited for it).

``--previous`` adds a third side, the design this scheduler replaced as a whole: lock-step on
the padded engine (one padded ``generate`` per round, every row held until the longest is
done), in a second copy of the model. Lock-step on the stepping engine never shipped; it
isolates the scheduler's share, and the third side shows what the change bought in all."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

from longwriter.defaults import DTYPES
from longwriter.graph import ready
from longwriter.outline import parse_outline
from longwriter.pipeline import Silent, expand
from longwriter.scheduler import Scheduler
from longwriter.writer import Compute, WriterSettings

BUDGETS = [60, 260, 120, 420, 90, 200, 340, 70, 160, 300, 110, 240]


class LockStep(Scheduler):
    """The previous scheduler: every section in flight sends one request, all wait for all."""

    async def run(self) -> None:
        started, active = set(self.done), {}
        limit = self.concurrency or self.backend.concurrency
        while True:
            for node in ready(self.graph, self.done, started):
                started.add(node)
                self.timeline[node] = [asyncio.get_running_loop().time()]
                self._advance(active, node, self.start(node), None)
            if not active:
                return
            order = sorted(active, key=self._order)[:limit]
            for node in order:
                if len(self.timeline[node]) == 1:
                    self.timeline[node].append(asyncio.get_running_loop().time())
            replies = await asyncio.gather(*(self.backend.complete(
                active[n][1].model_copy(update={"priority": self._order(n)})) for n in order))
            for node, reply in zip(order, replies):
                self._advance(active, node, active[node][0], reply)

    def _advance(self, active: dict, node: str, task, reply) -> None:
        try:
            step = task.send(reply)
            while isinstance(step, Compute):
                step = task.send(step.run())
        except StopIteration as stop:
            active.pop(node, None)
            self.on_done(stop.value)
            self.done.add(node)
            return
        active[node] = (task, step)


class Stats(Silent):
    def __init__(self) -> None:
        self.batches = []

    def batch(self, stats) -> None:
        self.batches.append(stats)


def mixed_outline(chapters: int):
    sections, k = [], 0
    for c in range(chapters):
        kids = []
        for s in range(3):
            kids.append({"id": f"c{c}s{s}", "title": f"Coffee era {c + 1}, part {s + 1}",
                         "brief": f"What happened to coffee in era {c + 1}, aspect {s + 1}.",
                         "words": BUDGETS[k % len(BUDGETS)]})
            k += 1
        sections.append({"id": f"c{c}", "title": f"Era {c + 1}", "words": sum(x["words"] for x in kids),
                         "children": kids})
    return parse_outline({"title": "Coffee", "topic": "The history of coffee",
                          "words": sum(x["words"] for x in sections), "sections": sections})


def run(backend, outline, scheduler_class, batch: int, seed: int = 0) -> dict:
    import longwriter.pipeline as pipeline

    schedulers, stats = [], Stats()

    class Recording(scheduler_class):
        async def run(self) -> None:
            schedulers.append(self)
            await super().run()

    pipeline.Scheduler = Recording  # the pipeline builds its scheduler through this name
    try:
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            result = expand(outline, out, backend=backend, settings=WriterSettings(check=False, seed=seed), concurrency=batch,
                            progress=stats)
            wall = time.perf_counter() - started
    finally:
        pipeline.Scheduler = Scheduler
    delays = [t[1] - t[0] for t in schedulers[0].timeline.values() if len(t) > 1]
    return {"wall": wall, "words": result.report.produced_words, "requests": len(result.report.sections),
            "tokens": result.report.completion_tokens, "delays": delays, "waited": waited_share(stats.batches, batch),
            "rows": occupancy(stats.batches), "batches": len(stats.batches)}


def occupancy(batches: list) -> float:
    """Rows doing useful work per engine call, time-weighted: a padded batch's finished rows
    only pad (tokens / longest)."""
    busy = sum(b.seconds for b in batches)
    return sum(b.seconds * b.completion_tokens / max(1, b.longest) for b in batches) / busy if busy else 0.0


def waited_share(batches: list, rows: int) -> float:
    """The share of engine time in calls that ended with requests queued although the batch
    had room for them: they came during the call and waited for it to end."""
    busy = sum(b.seconds for b in batches)
    return sum(b.seconds for b in batches if b.waiting and b.size < rows) / busy if busy else 0.0


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else (values[0] if values else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", type=int, default=4)
    parser.add_argument("--batch", type=int, default=None, help="requests in flight (default: the engine's batch size)")
    parser.add_argument("--engine", default="stepping", choices=["stepping", "padded", "vllm"],
                        help="vllm: a vLLM server of the embedded model, started here (make vllm)")
    # float32 by default: both sides must send the same requests, and in bfloat16 a request's
    # text can change with its batch-mates, which differ between the two schedulers
    parser.add_argument("--dtype", default="float32", choices=DTYPES,
                        help="in-process weights' type (default float32: the same text on both sides)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs per side, each with its own seed (where the sides' texts differ, as in "
                        "bfloat16, the totals average their different work out)")
    parser.add_argument("--previous", action="store_true",
                        help="also run the replaced design: lock-step on the padded engine (in-process only)")
    args = parser.parse_args()
    if args.previous and args.engine == "vllm":
        parser.error("--previous compares in-process engines; it needs --engine stepping")
    with engine(args.engine, args.dtype) as backend, \
            (engine("padded", args.dtype) if args.previous else nullcontext()) as padded:
        compare(backend, args, padded)


@contextmanager
def engine(kind: str, dtype: str = "auto"):
    """The embedded model in process, or behind a vLLM server started for the benchmark."""
    from longwriter.backends.embedded import EMBEDDED_NAME, embedded_model_dir

    if kind != "vllm":
        from longwriter.backends.transformers_backend import TransformersBackend

        yield TransformersBackend(str(embedded_model_dir()), device="cpu", name=EMBEDDED_NAME, engine=kind, dtype=dtype)
        return
    from longwriter.backends.openai_backend import OpenAIServerBackend
    from tests.servers import VllmServer

    server = VllmServer(embedded_model_dir(), Path(tempfile.gettempdir()) / "longwriter-scheduling-vllm.log").start()
    print(f"vLLM log: {server.log}")
    try:
        backend = OpenAIServerBackend([server.url])
        backend.batch_size, backend.engine = backend.concurrency, "vllm"
        yield backend
    finally:
        server.stop()


def compare(backend, args, padded=None) -> None:
    outline = mixed_outline(args.chapters)
    batch = args.batch or backend.batch_size
    print(f"{len(outline.leaves())} sections, {outline.words} words, 'chapter' policy, {batch} requests in flight, "
          f"{backend.engine} engine" + (f", {backend.report()['dtype']} weights" if hasattr(backend, "dtype") else ""))
    sides = [("lock-step", backend, LockStep), ("request-level", backend, Scheduler)]
    if padded is not None:
        sides.insert(0, ("previous", padded, LockStep))
    rows = {name: [] for name, _, _ in sides}
    for seed in range(args.repeats):  # the sides alternate, so a slow minute of the machine hits all
        for name, engine_, cls in sides:
            rows[name].append(r := run(engine_, outline, cls, batch, seed))
            print(f"{name:>14}{f' (seed {seed})' if args.repeats > 1 else ''}: {r['wall']:6.1f} s, "
                  f"{r['words'] / r['wall']:5.2f} words/s, {r['words']} words, "
                  f"{r['tokens']} tokens, start delay mean {statistics.mean(r['delays']):.2f} s / "
                  f"p90 {p90(r['delays']):.2f} s"
                  + (f", {r['batches']} engine calls, rows working per step {r['rows']:.1f} of {batch}, "
                     f"requests waiting beside free rows {100 * r['waited']:.1f}% of engine time"
                     if r["batches"] else " (the server's steps are not visible here)"), flush=True)
    seeds = f" over {args.repeats} seeds" if args.repeats > 1 else ""
    print(f"request-level / lock-step{seeds}: {ratio(rows['request-level'], rows['lock-step'])}")
    if padded is not None:
        print(f"request-level on {backend.engine} / previous (lock-step on padded){seeds}: "
              f"{ratio(rows['request-level'], rows['previous'])}")


def ratio(new: list[dict], old: list[dict]) -> str:
    """The totals' ratio in words/s and tokens/s (totals, so each seed counts by its work)."""
    a, b = ({k: sum(r[k] for r in runs) for k in ("wall", "words", "tokens")} for runs in (old, new))
    return (f"x{(b['words'] / b['wall']) / (a['words'] / a['wall']):.2f} in words/s, "
            f"x{(b['tokens'] / b['wall']) / (a['tokens'] / a['wall']):.2f} in tokens/s")


if __name__ == "__main__":
    main()

"""kill -9 at random moments, then resume: is anything finished lost, regenerated or left stale?

    python -m benchmarks.kill_resume [--trials 30] [--kills 2] [--seed 0]

Each trial runs a real ``longwriter`` writing process (a scripted model that takes a few
milliseconds per request, so writing lasts about half a second), SIGKILLs it ``--kills`` times
at a random moment after writing began (mid-batch, between a section file and its state, while
assembling), resumes each time, and finally lets it finish.
After every kill it records the sections the state lists as finished; at the end it checks:

- lost: a section finished before a kill that is missing or different afterwards;
- regenerated: such a section whose file was written again (its mtime changed);
- stale: files in sections/ that belong to no section (moved-aside copies included), or
  temporary files left behind;
- incomplete: a final run that did not finish with every section and the document.

The figures are counts over all trials; all four should be 0."""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHAPTERS, PER_CHAPTER, WORDS = 3, 4, 1200


def child(out: str) -> None:
    """The process that gets killed: expand a fixed outline with a slow scripted model."""
    import re

    from longwriter.backends.fake import ScriptedBackend
    from longwriter.outline import parse_outline
    from longwriter.pipeline import expand
    from longwriter.writer import WriterSettings

    def respond(request):
        time.sleep(0.004)
        m = re.search(r"Write about (\d+) words", request.messages[-1].content)
        n = int(m.group(1)) if m else 12
        return " ".join(f"Coffee fact {i} for {len(request.messages[-1].content)}." for i in range(n // 5 + 1))

    sections = [{"id": f"c{i}", "title": f"Chapter {i}", "words": 1,
                 "children": [{"id": f"c{i}s{j}", "title": f"Part {i}.{j}", "words": 1} for j in range(PER_CHAPTER)]}
                for i in range(CHAPTERS)]
    outline = parse_outline({"title": "Coffee", "topic": "Coffee", "words": WORDS, "sections": sections})
    expand(outline, out, backend=ScriptedBackend(respond, batch_size=2), settings=WriterSettings(check=False))


def finished(out: Path) -> dict[str, tuple[int, bytes]]:
    """Section files the state lists as finished: name -> (mtime, bytes)."""
    try:
        state = json.loads((out / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    names = {Path(rel).name for rel in state.get("files", {}) if rel.startswith("sections/")}
    done = {f"{sid}.md" for sid in state.get("sections", {})}
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "sections").glob("*.md")
            if p.name in names & done}


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "benchmarks.kill_resume", "--child", str(out)]


def _wait_for_writing(out: Path, proc: subprocess.Popen) -> float:
    """Wait until the child has saved its outline (start-up over, writing begins)."""
    started = time.perf_counter()
    while not (out / "state.json").exists() and proc.poll() is None:
        time.sleep(0.002)
    return time.perf_counter() - started


def writing_seconds() -> float:
    """How long one uninterrupted child writes here, start-up excluded: kills land within it."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(_command(Path(tmp) / "run"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_writing(Path(tmp) / "run", proc)
        started = time.perf_counter()
        proc.wait()
        return time.perf_counter() - started


def trial(out: Path, kills: int, rng: random.Random, window: float) -> dict[str, int]:
    """One run killed ``kills`` times while writing, then finished; returns each failure's count."""
    command = _command(out)
    seen: dict[str, tuple[int, bytes]] = {}
    for _ in range(kills):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_writing(out, proc)
        time.sleep(rng.uniform(0.0, window))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen.update(finished(out))
    final = subprocess.run(command, capture_output=True, text=True)
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "sections").glob("*.md")}
    expected = {f"c{i}s{j}.md" for i in range(CHAPTERS) for j in range(PER_CHAPTER)}
    temporaries = [p for p in out.rglob(".*") if p.name not in (".longwriter.lock", ".longwriter.owner")]
    strays = {p.name for p in (out / "sections").iterdir()} - expected
    return {"saved before a kill": len(seen),
            "lost": sum(1 for k, v in seen.items() if k not in after or after[k][1] != v[1]),
            "regenerated": sum(1 for k, v in seen.items() if k in after and after[k][0] != v[0]),
            "stale": len(strays) + len(temporaries) + len(list(out.glob("*.~*~"))),
            "incomplete": int(final.returncode != 0 or set(after) != expected or not (out / "document.md").exists())}


def run(trials: int, kills: int, seed: int) -> dict[str, int]:
    """All trials; the totals of every count."""
    rng, totals, window = random.Random(seed), {}, writing_seconds()
    for _ in range(trials):
        with tempfile.TemporaryDirectory() as tmp:
            for key, value in trial(Path(tmp) / "run", kills, rng, window).items():
                totals[key] = totals.get(key, 0) + value
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    started = time.perf_counter()
    totals = run(args.trials, args.kills, args.seed)
    print(f"{args.trials} trials x {args.kills} SIGKILLs at random moments, then resumed "
          f"({time.perf_counter() - started:.0f} s)")
    for key, value in totals.items():
        print(f"  {key:>20}: {value}")


if __name__ == "__main__":
    main()

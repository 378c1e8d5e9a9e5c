"""Shared fixtures: a scripted backend for logic tests, and the real embedded model and
embedding checker, each loaded once per test session."""

from __future__ import annotations

import os
import random
import re

import pytest

# Nothing in the suite may download: model ids resolve against the local cache only. (The
# suite also runs with pytest-socket: connections go to this machine or nowhere.)
os.environ["HF_HUB_OFFLINE"] = "1"

from longwriter.backends.fake import ScriptedBackend
from longwriter.outline import parse_outline

TOPIC = "The history of coffee"


_VOCAB = ("coffee beans roasted Ethiopia Yemen merchants Venice ports trade coffeehouses Ottoman brewing "
          "arabica robusta farmers plantations Brazil Java harvest cherries growers espresso cafes London "
          "Vienna sailors caravans Mocha markets pilgrims monks drink caffeine grinders kettles cups "
          "traders ships spices sugar milk prices taxes guilds newspapers debates writers scholars").split()


def prose(words: int, seed: str = "coffee") -> str:
    """Seeded, varied sentences about coffee: relevant to the test topic, without loops, and
    different for different seeds (so the checker sees neither repetition nor copying)."""
    rng = random.Random(seed)
    out: list[str] = []
    while sum(len(s.split()) for s in out) < words:
        body = " ".join(rng.choice(_VOCAB) for _ in range(9))
        out.append(body[0].upper() + body[1:] + ".")
    return " ".join(out)


def smart_responder(request) -> str:
    """Answers like a cooperative model: titles for list prefills, briefs, sections of the
    asked length (from the prompt's 'Write about N words'), short summaries."""
    user = request.messages[-1].content
    if request.prefill.rstrip().endswith(".") and re.search(r"(\d+)\.$", request.prefill.strip()):
        k = int(re.search(r"(\d+)\.$", request.prefill.strip()).group(1))
        parent = chapter_asked(user)
        if re.search(r"[\u4e00-\u9fff]", user):  # a Chinese topic gets Chinese titles
            return f" {parent}之{k}" if parent else f" 第{k}部分"
        return f" {parent} detail {k}" if parent else f" Part {k} of the story"
    if "say what this section should explain" in user or "这一节应当讲什么" in user:
        return "It explains one part of the story of coffee."
    if is_title_request(user):
        return "A Short History of Coffee"
    if "summarize" in user.lower() or "概括" in user:
        return "Coffee spread from Ethiopia to the world."
    m = re.search(r"Write about (\d+) words|写约 (\d+) 字", user)
    if m:
        return prose(int(m.group(1) or m.group(2)))
    return "yes"


def chapter_asked(user: str) -> str | None:
    """The parent chapter a title-list request asks subsections for (English or Chinese prompt)."""
    m = re.search(r'has a chapter titled "([^"]+)"|有一章题为“([^”]+)”', user)
    return (m.group(1) or m.group(2)) if m else None


def is_title_request(user: str) -> bool:
    """The planner's request for the document's title (English or Chinese prompt)."""
    return "short, specific title" in user or "拟一个简短" in user


@pytest.fixture
def fake():
    return ScriptedBackend(smart_responder, batch_size=8)


def make_outline(chapters: int = 2, per: int = 2, words: int = 800, **extra):
    sections = [
        {"id": f"c{i}", "title": f"Chapter {i}", "brief": f"coffee chapter {i}", "words": 1,
         "children": [{"id": f"c{i}s{j}", "title": f"Coffee part {i}.{j}", "brief": f"coffee in era {i}.{j}",
                       "words": 1} for j in range(1, per + 1)] if per > 1 else []}
        for i in range(1, chapters + 1)
    ]
    return parse_outline({"title": "Coffee", "topic": TOPIC, "words": words, "sections": sections, **extra})


@pytest.fixture(scope="session")
def checker():
    from longwriter.pipeline import make_checker

    return make_checker()


@pytest.fixture(scope="session")
def real_backend():
    from longwriter.backends import load_backend

    return load_backend(None)


@pytest.fixture(autouse=True)
def _fast_tests_never_load_the_embedded_model(request, monkeypatch):
    """A fast test that reaches the real model by accident (a broken loader, a missing
    backend=) fails at once instead of silently loading 135M parameters."""
    if request.node.get_closest_marker("model"):
        return
    import longwriter.pipeline as pipeline

    real = pipeline.load_backend

    def guarded(name=None, **kwargs):
        if name is None:
            pytest.fail("a fast test tried to load the embedded model; pass backend= or mark it 'model'")
        return real(name, **kwargs)

    monkeypatch.setattr(pipeline, "load_backend", guarded)


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    """A real vLLM server of the embedded model, started once (~55 s) for the module that uses
    it and stopped after it, so it holds no memory or CPU while the rest of the suite runs.
    Without `make vllm` these tests skip locally; in CI (CI=true) that is a failure."""
    from longwriter.backends.embedded import embedded_model_dir
    from tests.servers import VLLM_PYTHON, VllmServer

    if not VLLM_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{VLLM_PYTHON} is missing: `make test` installs it with `make vllm`")
        pytest.skip("no vLLM virtualenv: run `make vllm`")
    server = VllmServer(embedded_model_dir(), tmp_path_factory.mktemp("vllm") / "vllm.log").start()
    print(f"\nvLLM started in {server.start_seconds:.0f} s on {server.url}")
    yield server
    server.stop()

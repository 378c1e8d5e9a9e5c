"""longwriter: long, coherent documents from a local language model.

    from longwriter import plan, expand, draft
    outline = plan("The history of coffee", words=1200)
    result = expand(outline, "coffee/")
    print(result.document)

Names are imported on first use, so ``import longwriter`` (and the CLI's --help) stay instant;
torch and transformers load only when a model is needed."""

from importlib import import_module

_EXPORTS = {
    "LongwriterError": "errors", "Outline": "outline", "Section": "outline", "dump_outline": "outline",
    "load_outline": "outline", "DraftResult": "pipeline", "Report": "pipeline", "draft": "pipeline",
    "expand": "pipeline", "plan": "pipeline", "rescore": "pipeline", "SectionResult": "writer",
    "WriterSettings": "writer", "aplan": "pipeline", "aexpand": "pipeline", "adraft": "pipeline",
    "RunControl": "pipeline", "ModelSpec": "backends", "export_run": "pipeline", "batch": "batch",
    "abatch": "batch", "BatchJob": "batch", "BatchResult": "batch", "Template": "templates",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'longwriter' has no attribute {name!r}")

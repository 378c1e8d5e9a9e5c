"""The run directory: the outline used, one file per finished section (written atomically the
moment it is accepted), a state file recording what is done and from which outline node, the
assembled document and the report. A lock keeps two runs out of one directory."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import filelock

from .errors import LockedError, OutputError
from .outline import Outline, dump_outline, slugify
from .writer import SectionResult

STATE = "state.json"
LOCK = ".longwriter.lock"
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    """One output directory. Use as a context manager to hold its lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"output path '{self.path}' is a file, not a directory")
        try:
            (self.path / "sections").mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise OutputError(f"output directory '{self.path}' is not writable ({err.strerror})") from None
        # An OS-level lock: the kernel drops it when the holder dies, so a lock left by a killed
        # run is stale by construction and the next run simply takes it over.
        self._lock = filelock.FileLock(str(self.path / LOCK), timeout=0)

    def __enter__(self) -> RunDir:
        try:
            self._lock.acquire()
        except filelock.Timeout:
            owner = (self.path / ".longwriter.owner").read_text().strip() if (self.path / ".longwriter.owner").exists() else "?"
            raise LockedError(f"'{self.path}' is in use by another longwriter run (pid {owner}); wait for it or use another --out") from None
        atomic_write(self.path / ".longwriter.owner", str(os.getpid()))
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()

    # ------------------------------------------------------------------ state

    def load_state(self) -> dict[str, Any]:
        """The state file's content ({} when the directory is new or the file is unreadable)."""
        try:
            return json.loads((self.path / STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def section_file(self, order: int, section_id: str) -> Path:
        return self.path / "sections" / f"{order + 1:03d}-{slugify(section_id, 'section')}.md"

    def finished(self, outline: Outline) -> dict[str, SectionResult]:
        """Sections already written from an unchanged outline node, with their text on disk."""
        saved = self.load_state().get("sections", {})
        out = {}
        for order, leaf in enumerate(outline.leaves()):
            entry = saved.get(leaf.id)
            if not entry or entry.get("node_hash") != leaf.content_hash():
                continue
            try:
                text = self.section_file(order, leaf.id).read_text(encoding="utf-8")
            except OSError:
                continue
            out[leaf.id] = SectionResult.model_validate({**entry, "text": text})
        return out

    def save_section(self, order: int, result: SectionResult, others: dict[str, SectionResult]) -> None:
        """Persist one finished section, then the state that lists it (in that order)."""
        atomic_write(self.section_file(order, result.id), result.text)
        sections = {sid: r.model_dump(exclude={"text"}) for sid, r in others.items()}
        sections[result.id] = result.model_dump(exclude={"text"})
        atomic_write(self.path / STATE, json.dumps({"sections": sections}, ensure_ascii=False, indent=1))

    def save_outline(self, outline: Outline) -> None:
        atomic_write(self.path / "outline.yaml", dump_outline(outline))

    def save_json(self, name: str, data: Any) -> None:
        atomic_write(self.path / name, json.dumps(data, ensure_ascii=False, indent=2))

    def assemble(self, outline: Outline, results: dict[str, SectionResult]) -> Path:
        """Write document.md: headings follow the outline (# title, ## top level, ### below)."""
        parts = [f"# {outline.title}\n"]
        for number, node in outline.walk():
            parts.append(f"{'#' * min(6, len(number) + 1)} {'.'.join(map(str, number))} {node.title}\n")
            if not node.children and node.id in results:
                parts.append(results[node.id].text.strip() + "\n")
        path = self.path / "document.md"
        atomic_write(path, "\n".join(parts))
        return path

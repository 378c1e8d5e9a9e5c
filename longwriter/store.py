"""The run directory: the outline used, one file per finished section (named by its id and
written atomically the moment it is accepted), a state file recording what is done and from
which outline node, the assembled document and the report. A lock keeps two runs out of one
directory.

Ownership: ``state.json`` records the hash of every file longwriter wrote. A file whose
content is not one of those hashes was made or edited by someone else, and is never
overwritten: an edited section is kept as the section's text, anything else is first moved
aside to ``NAME.~N~`` (as ``cp --backup=numbered`` does). A non-empty directory that holds no
run is refused outright."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import filelock
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import blocks, citations
from .errors import LockedError, OutputError
from .files import TooLarge, read_regular
from .outline import Outline, dump_outline, normal_topic, slugify
from .writer import SectionResult

STATE = "state.json"
LOCK = ".longwriter.lock"
OWNER = ".longwriter.owner"
SECTIONS = "sections"
CACHES = ("sources-index",)  # folders of derived data a run keeps (re-made from the inputs at will)
OUTLINE = "outline.yaml"
DOCUMENT = "document.md"
EXPORTS = {"html": "document.html", "docx": "document.docx"}  # document.md in other formats
REPORT = "report.json"
_OUTPUTS = (STATE, OUTLINE, DOCUMENT, REPORT, *EXPORTS.values())
_UMASK = os.umask(0)
os.umask(_UMASK)
# Temporary files carry a prefix no user file has, so cleaning up after a killed run can
# never take a user's ``.notes.md.backup01`` for one of ours.
TEMP_PREFIX = ".longwriter-tmp-"
MAX_STATE_BYTES = 64 * 2**20  # far above any real run's state (a few KB a section)
MAX_FILE_BYTES = 64 * 2**20  # a section or document file; 200,000 CJK characters are 0.6 MB
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

Notify = Callable[[str], None]


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def digest(data: bytes | str) -> str:
    """Content hash used to recognise files longwriter wrote."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()[:32]


def section_name(section_id: str) -> str:
    """``sections/<id>.md`` for a plain id; an id that is not already a safe lower-case slug
    gets its slug, an underscore and a hash of the id (``Intro`` -> ``intro_1a2b3c4d.md``). No
    slug has an underscore, so no id escapes and two ids never share a file: not even an id
    ``intro-1a2b3c4d`` and an id ``Intro``."""
    slug = slugify(section_id, "section")
    if slug != section_id:
        slug = f"{slug[:40]}_{digest(section_id)[:8]}"
    return f"{SECTIONS}/{slug}.md"


def default_out(topic: str) -> str:
    """The default output folder for a topic: its slug, with a hash of the topic when the
    slug drops letters (Chinese, Arabic, emoji...), so different topics never share one."""
    slug = slugify(topic, "document")
    lossless = re.fullmatch(r"[A-Za-z0-9\s\-_.,:;!?'\"()&/]+", topic) is not None
    return slug if lossless else f"{slug}-{digest(topic)[:8]}"


class RunState(BaseModel):
    """What ``state.json`` holds. Entries are validated one by one when read, so one bad entry
    costs that section only."""

    model_config = ConfigDict(extra="ignore")

    format: int = 2
    topic: str = ""
    files: dict[str, list[str]] = Field(default_factory=dict, description="path -> hashes longwriter wrote")
    sections: dict[str, Any] = Field(default_factory=dict)


def _read_state(path: Path, notify: Notify) -> RunState:
    """The state file, or an empty state (and one warning) when it is missing or damaged."""
    try:
        raw = read_regular(path, MAX_STATE_BYTES)
    except FileNotFoundError:
        return RunState()
    except TooLarge:
        raw = b""  # damaged, as below
    except OSError as err:  # a FIFO, a device, no permission...
        raise OutputError(f"cannot read '{path}' ({err.strerror}); remove it") from None
    try:
        return RunState.model_validate(json.loads(raw.decode("utf-8")))
    except (ValueError, ValidationError, RecursionError):  # RecursionError: JSON nested 100,000 deep
        notify(f"'{path}' is damaged; every section counts as unfinished (your files are kept)")
        return RunState()


class RunDir:
    """One output directory. Enter it (``with RunDir(path) as run``) to create it, take its lock
    and load its state; ``RunDir.read_only(path)`` reads a run without touching it."""

    def __init__(self, path: str | Path, *, topic: str = "", accept: Iterable[str | Path] = (),
                 notify: Notify = lambda text: None) -> None:
        self.path = Path(path)
        if not str(path).strip():  # Path("") is the current folder: never taken by accident
            raise OutputError("the output path is empty")
        try:
            if self.path.exists() and not self.path.is_dir():
                raise OutputError(f"output path '{self.path}' is a file, not a directory")
        except (OSError, ValueError) as err:  # a name too long, a loop of links, a NUL
            raise OutputError(f"output path '{self.path}': {getattr(err, 'strerror', None) or 'invalid'}") from None
        self.topic, self.notify = topic, notify
        self.accept = {Path(p).resolve() for p in accept}  # the user's input files that may sit inside
        self.state = RunState()
        self._created: list[Path] = []  # folders this run made
        self._caches: list[Path] = []  # cache folders this run made
        self._new: list[str] = []  # files this run made, relative to the run folder
        self._had_state = True  # until seen absent: a refused start never removes a run's state
        self._lock: filelock.BaseFileLock | None = None

    @classmethod
    def read_only(cls, path: str | Path, notify: Notify = lambda text: None) -> RunDir:
        """A run opened for reading (``check``): no lock, no directory made, nothing written."""
        run = cls(path, notify=notify)
        if not (run.path / OUTLINE).is_file():
            raise OutputError(f"'{run.path}' is not a longwriter run directory (no {OUTLINE})")
        run.state = _read_state(run.path / STATE, notify)
        return run

    # ------------------------------------------------------------------ opening

    def __enter__(self) -> RunDir:
        self._check_strangers()  # before anything is created in a folder that may be the user's
        self._make_dirs()
        try:
            self._take_lock()
            self._preflight()
            self._remove_temporaries()
            self._had_state = (self.path / STATE).exists()
            self.state = _read_state(self.path / STATE, self.notify)
            self._check_strangers()  # again under the lock: nothing changed meanwhile
            self._check_topic()
        except BaseException:
            self._release(failed=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._release(failed=exc_type is not None)

    def _make_dirs(self) -> None:
        try:
            for folder in (self.path, self.path / SECTIONS):
                if not folder.exists():
                    self._created.extend(p for p in [folder, *folder.parents] if not p.exists())
                    folder.mkdir(parents=True)
        except OSError as err:
            raise OutputError(f"cannot create '{self.path}' ({err.strerror})") from None

    def _take_lock(self) -> None:
        lock = self.path / LOCK
        if lock.is_symlink() or (lock.exists() and not lock.is_file()):
            raise OutputError(f"'{lock}' is not a regular file; remove it")
        # An OS-level lock: the kernel drops it when the holder dies, so a lock left by a killed
        # run is stale by construction and the next run simply takes it over.
        self._lock = filelock.FileLock(str(lock), timeout=0)
        try:
            self._lock.acquire()
        except filelock.Timeout:
            self._lock = None
            owner = _read_small(self.path / OWNER).strip() or "?"
            raise LockedError(f"'{self.path}' is in use by another longwriter run (pid {owner}); "
                              "wait for it or use another --out") from None
        except OSError as err:
            self._lock = None
            raise OutputError(f"cannot lock '{lock}' ({err.strerror})") from None
        self._write_file(self.path / OWNER, str(os.getpid()))

    def _preflight(self) -> None:
        """Refuse now, before any model loads, what would fail after minutes of work."""
        for name in _OUTPUTS:
            if (self.path / name).is_dir():
                raise OutputError(f"'{self.path / name}' is a directory; move it away")
        sections = self.path / SECTIONS
        if sections.is_symlink() or not sections.is_dir():
            raise OutputError(f"'{sections}' must be a plain directory")
        try:
            fd, probe = tempfile.mkstemp(dir=sections, prefix=f"{TEMP_PREFIX}probe.")
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            raise OutputError(f"'{sections}' is not writable ({err.strerror})") from None

    def _remove_temporaries(self) -> None:
        """Remove half-written temporary files a killed run left (``atomic_write`` names them
        ``.longwriter-tmp-NAME.XXXXXXXX``); only ours, and only under the lock."""
        for folder in (self.path, self.path / SECTIONS):
            for p in folder.iterdir():
                if p.name.startswith(TEMP_PREFIX) and p.is_file() and not p.is_symlink():
                    p.unlink(missing_ok=True)

    def _check_strangers(self) -> None:
        """A folder without a run must be new or empty (but for our own lock and the user's
        input file): anything else may be the user's, and is never written over."""
        if not self.path.is_dir() or ((self.path / STATE).is_file() and (self.path / SECTIONS).is_dir()):
            return
        strangers = [p.name for p in self._entries() if not self._ours_when_new(p)]
        if strangers:
            raise OutputError(f"'{self.path}' is not empty and holds no longwriter run (found "
                              f"'{strangers[0]}'); pass a new or empty --out directory")

    def _check_topic(self) -> None:
        """A run may only be resumed by the same job."""
        mine, theirs = normal_topic(self.topic), normal_topic(self.state.topic)
        if mine and theirs and mine != theirs:
            raise OutputError(f"'{self.path}' holds the run for another topic ('{theirs[:80]}'); "
                              "pass another --out")

    def _entries(self) -> list[Path]:
        return sorted(self.path.iterdir())

    def _ours_when_new(self, p: Path) -> bool:
        if p.name in (LOCK, OWNER) or p.name.startswith(TEMP_PREFIX) or p.resolve() in self.accept:
            return True
        if p.name in CACHES and p.is_dir() and not p.is_symlink():
            return True  # left by a run killed before its first save
        return p.name == SECTIONS and p.is_dir() and not any(p.iterdir())

    def _release(self, failed: bool) -> None:
        """Drop the lock. A run that failed or was stopped before finishing any section removes
        what it created (its outline copy, headings-only document, state, folders), so a failed
        start leaves no folder behind; files it found there are never touched."""
        held = self._lock is not None
        if failed and held and not self.state.sections:  # held: never another run's files
            self._remove_new_files()
        if held:
            self._lock.release()
            self._lock = None
        if failed and held and not (self.path / STATE).exists():
            for cache in self._caches:
                shutil.rmtree(cache, ignore_errors=True)
            for name in (LOCK, OWNER):
                (self.path / name).unlink(missing_ok=True)
            for folder in sorted(self._created, key=lambda p: len(p.parts), reverse=True):
                try:
                    folder.rmdir()  # only if empty: never removes anything else
                except OSError:
                    pass

    def cache_dir(self, name: str) -> Path:
        """The run's cache folder ``name`` (one of CACHES), made if missing; a failed start
        removes it with the rest of what it made."""
        folder = self.path / name
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise OutputError(f"'{folder}' must be a plain directory; move it away")
        if not folder.exists():
            folder.mkdir()
            self._caches.append(folder)
        return folder

    def _remove_new_files(self) -> None:
        for rel in self._new:
            if self.owns(rel):
                (self.path / rel).unlink(missing_ok=True)
        if not self._had_state:
            (self.path / STATE).unlink(missing_ok=True)

    # ------------------------------------------------------------------ writing

    def _write_file(self, path: Path, text: str | bytes) -> None:
        try:
            atomic_write(path, text)
        except OSError as err:
            raise OutputError(f"cannot write '{path}' ({err.strerror}); finished sections are kept in "
                              f"'{self.path / SECTIONS}'") from None

    def write(self, rel: str, text: str | bytes) -> None:
        """Write one output file. A file there that longwriter did not write is moved aside
        first. The new hash is recorded before the write and confirmed after it, so a kill in
        between never makes longwriter's own file look like the user's."""
        if not (self.path / rel).exists() and rel not in self._new:
            self._new.append(rel)
        self._make_room(rel)
        sha = digest(text)
        if sha not in self.state.files.get(rel, []):
            self.state.files.setdefault(rel, []).append(sha)
            self.save_state()
        self._write_file(self.path / rel, text)
        self.state.files[rel] = [sha]

    def _make_room(self, rel: str) -> None:
        path = self.path / rel
        if path.is_dir() and not path.is_symlink():
            raise OutputError(f"'{path}' is a directory; move it away")
        if not path.is_symlink() and (not path.exists() or self.owns(rel)):
            return
        n = 1
        while Path(f"{path}.~{n}~").exists():
            n += 1
        try:
            path.rename(f"{path}.~{n}~")
        except OSError as err:
            raise OutputError(f"cannot move '{path}' aside ({err.strerror})") from None
        self.notify(f"'{path}' was not written by longwriter; kept it as '{path.name}.~{n}~'")

    def owns(self, rel: str) -> bool:
        """True when the file at ``rel`` holds content longwriter wrote there."""
        try:
            data = read_regular(self.path / rel, MAX_FILE_BYTES)
        except (OSError, ValueError):  # missing, a FIFO, too large...: not ours
            return False
        return digest(data) in self.state.files.get(rel, [])

    def save_state(self) -> None:
        self._write_file(self.path / STATE, self.state.model_dump_json(indent=1))

    def save_outline(self, outline: Outline) -> None:
        """Save the outline in use, unless it is the user's own file in this directory."""
        self.state.topic = self.state.topic or outline.topic
        path = self.path / OUTLINE
        if not (path.is_file() and path.resolve() in self.accept):  # the user's own file stays as written
            self.write(OUTLINE, dump_outline(outline))
        self.save_state()

    def save_section(self, result: SectionResult) -> None:
        """Persist one finished section, then the state that lists it (in that order)."""
        self.write(section_name(result.id), result.text)
        self.state.sections[result.id] = result.model_dump(mode="json", exclude={"text"})
        self.save_state()

    def save_json(self, name: str, data: Any) -> None:
        self.write(name, json.dumps(data, ensure_ascii=False, indent=2))

    # ------------------------------------------------------------------ reading

    def finished(self, outline: Outline) -> dict[str, SectionResult]:
        """Sections already written from an unchanged outline node, with their text on disk.
        A section whose file was edited by hand keeps the edit; a missing, empty or unreadable
        one is written again (and said so)."""
        out = {}
        for leaf in outline.leaves():
            entry = self.state.sections.get(leaf.id)
            if not isinstance(entry, dict) or entry.get("node_hash") != leaf.content_hash():
                continue
            result = self._load_section(leaf.id, entry)
            if result is not None:
                out[leaf.id] = result
        return out

    def _load_section(self, section_id: str, entry: dict[str, Any]) -> SectionResult | None:
        rel = section_name(section_id)
        text = self._section_text(rel)
        if text is None:
            return None
        try:
            result = SectionResult.model_validate({**entry, "text": text, "id": section_id})
        except (TypeError, ValidationError):  # an entry of the wrong shape (a list, a number...)
            self.notify(f"the state of section '{section_id}' is damaged; writing it again")
            return None
        if not self.owns(rel):
            self.notify(f"'{self.path / rel}' was edited by hand; keeping your text")
            from .length import count_words

            result.words = count_words(text)
            self.state.files.setdefault(rel, []).append(digest(text))
        return result

    def _section_text(self, rel: str) -> str | None:
        """The text of a section file, or None (with a warning) when it cannot serve."""
        path = self.path / rel
        try:
            text = read_regular(path, MAX_FILE_BYTES).decode("utf-8")
        except FileNotFoundError:
            self.notify(f"'{path}' is missing; writing it again")
            return None
        except (OSError, UnicodeDecodeError) as err:
            why = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else err.strerror
            self.notify(f"'{path}' is unreadable ({why}); writing it again")
            return None
        if not text.strip() or _CONTROL.search(text):
            self.notify(f"'{path}' is {'empty' if not text.strip() else 'corrupt'}; writing it again")
            return None
        return text

    def forget_removed(self, outline: Outline) -> None:
        """Delete the files of sections no longer in the outline (only unedited ones)."""
        current = {section_name(leaf.id) for leaf in outline.leaves()}
        ours = [r for r in self.state.files if re.fullmatch(rf"{SECTIONS}/[a-z0-9][a-z0-9_-]*\.md", r)]
        for rel in [r for r in ours if r not in current]:
            if self.owns(rel):
                (self.path / rel).unlink()
            elif (self.path / rel).exists():
                self.notify(f"'{self.path / rel}' belongs to no section any more and was edited; left as is")
            del self.state.files[rel]
        ids = {leaf.id for leaf in outline.leaves()}
        self.state.sections = {k: v for k, v in self.state.sections.items() if k in ids}

    def assemble(self, outline: Outline, results: dict[str, SectionResult]) -> str:
        """Write document.md and return its text: headings follow the outline (# title,
        ## top level, ### below); citations are numbered across the document and a References
        list of the sources cited ends it."""
        done = [(leaf.id, results[leaf.id]) for leaf in outline.leaves() if leaf.id in results]
        # sealed: a section file (perhaps edited) that ends inside a code fence must not turn
        # every heading after it into code
        texts, cited = citations.number([(blocks.sealed(r.text.strip()), r.sources) for _, r in done])
        text_of = {sid: text for (sid, _), text in zip(done, texts)}
        parts = []
        for node, heading in outline.headings():
            parts.append(heading + "\n")
            if node is not None and node.id in text_of:
                parts.append(text_of[node.id] + "\n")
        refs = citations.references(cited, citations.heading_for(outline.language))
        document = "\n".join(parts + ([refs] if refs else []))
        self.write(DOCUMENT, document)
        self.save_state()
        return document

    def export(self, outline: Outline, document: str, formats: Iterable[str]) -> list[Path]:
        """Write the document in each of ``formats`` besides Markdown (html, docx) next to
        document.md; returns the files written."""
        from . import export

        makers = {"html": lambda: export.to_html(document, outline.title, outline.language),
                  "docx": lambda: export.to_docx(document, outline.title)}
        written = []
        for fmt in (f for f in formats if f in EXPORTS):
            self.write(EXPORTS[fmt], makers[fmt]())
            written.append(self.path / EXPORTS[fmt])
        if written:
            self.save_state()
        return written


def _read_small(path: Path) -> str:
    """A short file's text (the lock owner's pid), or "" when it cannot be read."""
    try:
        return read_regular(path, 64).decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return ""

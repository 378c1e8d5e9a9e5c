"""Prompt templates: jinja2 files in ``prompts/``, shipped inside the package and overridable
with a user directory (``--prompts-dir``; only the files it holds are overridden). Templates
render in jinja2's sandbox, since a user-supplied template is untrusted input."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .errors import PromptError


def builtin_dir() -> Path:
    """The shipped templates: inside the installed package, or the repository's prompts/."""
    packaged = Path(str(resources.files("longwriter"))) / "prompts"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "prompts"


class Prompts:
    """Renders named templates (``section`` -> ``section.j2``) into message text."""

    def __init__(self, override_dir: str | Path | None = None) -> None:
        search = [str(builtin_dir())]
        if override_dir is not None:
            folder = Path(override_dir)
            if not folder.is_dir():
                raise PromptError(f"prompts directory '{folder}' does not exist or is not a directory")
            try:
                list(folder.iterdir())
            except OSError as err:
                raise PromptError(f"prompts directory '{folder}' cannot be read ({err.strerror})") from None
            search.insert(0, str(folder))
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(search),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )

    def render(self, name: str, **values) -> str:
        """Render ``name``.j2 with ``values``; any template problem is a one-line PromptError."""
        try:
            return self.env.get_template(f"{name}.j2").render(**values).strip()
        except jinja2.TemplateNotFound:
            raise PromptError(f"prompt template '{name}.j2' not found") from None
        except jinja2.TemplateError as err:
            raise PromptError(f"prompt template '{name}.j2': {err}") from None
        except OSError as err:
            raise PromptError(f"prompt template '{name}.j2' cannot be read ({err.strerror})") from None

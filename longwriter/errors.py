"""The project's own error types. Each carries the process exit code the CLI uses for it,
so a script driving longwriter can tell one failure from another without parsing text."""

from __future__ import annotations


class LongwriterError(Exception):
    """Base class: a user-facing problem with a one-line message."""

    exit_code = 1


class OutlineError(LongwriterError):
    """The outline file is malformed or inconsistent (unknown field, cycle, bad budget...)."""

    exit_code = 3


class ModelError(LongwriterError):
    """The model could not be found or loaded."""

    exit_code = 4


class InputError(LongwriterError):
    """A bad argument: empty or absurd topic, impossible word target..."""

    exit_code = 5


class OutputError(LongwriterError):
    """The output directory cannot be used (it is a file, or not writable)."""

    exit_code = 6


class PromptError(LongwriterError):
    """The prompts directory or a template in it cannot be read or rendered."""

    exit_code = 7


class LockedError(LongwriterError):
    """Another live longwriter run holds the output directory."""

    exit_code = 8


class PlanningError(LongwriterError):
    """The model failed to produce a usable outline within the allowed attempts."""

    exit_code = 9


class RequestRefused(LongwriterError):
    """A server refused a request as malformed (a 4xx other than auth or model): retrying the
    same request elsewhere cannot help. Finished sections are saved."""

    exit_code = 10


class Interrupted(LongwriterError):
    """The run was stopped by the user; finished sections are saved."""

    exit_code = 130


class TemplateError(LongwriterError):
    """A document template cannot be found, read or validated."""

    exit_code = 11


class BatchIncomplete(LongwriterError):
    """A batch finished, but some of its lines were refused or its documents failed (each was
    reported in one line; the others were written)."""

    exit_code = 12

"""The section writer's parts, one job each. ``longwriter.writer`` puts them together:

- ``settings``: how sections are written (bounded) and what a finished one is;
- ``prompts``: every text the model is shown, rendered from templates;
- ``sampling``: each request's sampling parameters and its own seed;
- ``ratio``: tokens per word, so budgets in words become token limits;
- ``drafting``: length control (draft, continue while short, trim when long);
- ``revision``: when and how a rejected draft is rewritten, and which draft is kept;
- ``summary``: the rolling summary later sections read.
"""

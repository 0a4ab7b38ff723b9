"""Error types. Every user-facing error says what is wrong, where, and what is allowed."""

from __future__ import annotations


class BertftError(Exception):
    """A usage error: bad config, spec, data file or argument. The CLI prints it and exits 2."""

    exit_code = 2


class ConfigError(BertftError):
    """One or more problems found while validating settings; all are reported at once."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__(f"{source}: {len(self.problems)} {noun}:\n{lines}")


class DataError(BertftError):
    """A data file or dataset that cannot be used as given."""


class TrialDiverged(RuntimeError):
    """Training loss became NaN or infinite; the trial is stored as `diverged`."""

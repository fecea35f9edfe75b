"""Exceptions the harness raises for bad input; the CLI prints them as one line."""


class MsabenchError(Exception):
    """Base class: a user-facing error whose message is a single line."""


class ConfigError(MsabenchError):
    """params.yaml (or a CLI argument) is malformed: names the key and what was expected."""


class UnknownNameError(MsabenchError, KeyError):
    """A method/dataset/format name that is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class DataError(MsabenchError):
    """A feature file or feature store is missing or malformed."""


class NonFiniteLossError(MsabenchError):
    """A training loss became NaN or Inf."""

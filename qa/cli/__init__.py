"""Command line: `qa index | retrieve | ask | fetch-model | chat | mcp | eval | fit | bench | db`.

Thin: arguments -> Settings -> API -> output. One module per command group, each adding its commands to the one
group (`base.cli`); `serve` is the only module that imports the page (`ui`), the tools load inside their commands.
"""

from qa.cli import ask, bench, db, evaluate, serve  # noqa: F401 - each adds its commands to `cli`
from qa.cli.base import cli

__all__ = ["cli"]

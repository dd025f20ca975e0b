"""Start-up cost: a command imports only what it needs."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner


def test_eval_does_not_import_unrelated_heavy_packages() -> None:
    """`facelens eval` loads neither scipy nor facelens.cluster (clustering) nor PyAV (video),
    nor the search indexes' faiss and usearch (13 MB and more of memory)."""
    code = (
        "import sys\n"
        "from facelens.cli.main import cli\n"
        "assert cli.get_command(None, 'eval') is not None\n"
        "heavy = ('scipy', 'av', 'facelens.cluster', 'faiss', 'usearch')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_every_command_is_listed_and_runs_its_help() -> None:
    from facelens.cli.main import cli

    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("analyze-video", "cluster", "eval", "ingest", "serve", "video"):
        assert name in result.output
        assert CliRunner().invoke(cli, [name, "--help"]).exit_code == 0

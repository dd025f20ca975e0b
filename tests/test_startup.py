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


def test_the_command_list_imports_no_command() -> None:
    """`facelens --help` lists every command from its summary and imports none of their
    modules (it had imported them all: 2.5-2.9 s and 159 MB, against 0.7-0.9 s and 74 MB in
    benchmarks/cli_startup.py)."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from facelens.cli.main import cli\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'anonymize' in result.output and 'search' in result.output\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('facelens.cli.')"
        " and m not in ('facelens.cli.main', 'facelens.cli.output'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_each_listed_summary_is_the_start_of_its_commands_help() -> None:
    """The summaries `facelens --help` shows (kept in cli/main.py so that listing imports
    nothing) read exactly as each command's own help would, at any terminal width."""
    import click

    from facelens.cli.main import _COMMANDS, cli

    for name, entry in _COMMANDS.items():
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        listed = click.Command(name, help=entry.summary)
        for limit in (20, 45, 62, 80, 1000):
            assert listed.get_short_help_str(limit) == command.get_short_help_str(limit), name

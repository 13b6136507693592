"""``python -m slmplan``: the same as the ``slmplan`` command."""

from slmplan.cli.main import run

if __name__ == "__main__":
    run()

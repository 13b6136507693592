"""The ``slmplan`` console entry point (``slmplan.cli.main:run``); the app is in ``slmplan.cli.app``."""

from slmplan.cli.app import app, run

__all__ = ["app", "run"]

if __name__ == "__main__":
    run()

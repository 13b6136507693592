"""Typer commands only: parse, call the library, print. Nothing imports this package."""

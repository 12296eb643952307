"""Placeholder until the terminal app lands."""


def run_app(checkpoint, explicit: bool = False) -> None:
    import click

    raise click.ClickException("the interactive app is not built yet; use 'charlstm-tui generate' for now")

"""The ``charlstm-tui`` command line.

Only parsing and printing live here. Heavy imports (torch, textual) happen inside the
commands that need them, so ``--help`` and most bad input answer instantly. Every
domain error (``core.errors.CharLSTMError``) becomes one ``Error: ...`` line on stderr
and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import click

from . import BUNDLED_CHECKPOINT, __version__
from .train_cli import DATA_HELP, data_source
from .adapt_cli import adapt_config, adapt_options, read_both

CHECKPOINT_ENV = "CHARLSTM_CHECKPOINT"


@contextlib.contextmanager
def domain_errors() -> Iterator[None]:
    """Turn core's errors into a ClickException: one line, exit status 1."""
    from core.errors import CharLSTMError

    try:
        yield
    except CharLSTMError as e:
        raise click.ClickException(str(e)) from None


def checkpoint_option(f: Any, must_exist: bool = True) -> Any:
    """``--checkpoint``. ``must_exist``: click checks the path first, so a missing file is
    one line without importing torch. The app's group option leaves that to the app, which
    says what is wrong with any path (missing, a folder) in its checkpoint dialog."""
    return click.option(
        "--checkpoint", "-c", type=click.Path(exists=must_exist, dir_okay=not must_exist, path_type=Path),
        envvar=CHECKPOINT_ENV, default=None, show_envvar=True,
        help="Checkpoint file [default: the bundled Tiny Shakespeare model].",
    )(f)


def resolve_checkpoint(path: Path | None) -> Path:
    """The command's --checkpoint, else the group's (``charlstm-tui -c P generate``; click
    fills both from $CHARLSTM_CHECKPOINT), else the bundled model."""
    if path is None:
        ctx = click.get_current_context(silent=True)
        path = ctx.find_root().params.get("checkpoint") if ctx is not None else None
    return path if path is not None else BUNDLED_CHECKPOINT


def drop_unknown_option(f: Any) -> Any:
    """``--drop-unknown``: the same option, and the same words, on every command that reads text."""
    return click.option("--drop-unknown", is_flag=True,
                        help="Drop the characters the model does not know (a note names them) instead of failing.")(f)


def known_text(vocab: Any, text: str, drop_unknown: bool, what: str, empty_ok: bool = False) -> str:
    """``text`` as the model can read it (``vocab``: a core.vocab.CharVocab). Characters it
    lacks are an error naming them and ``--drop-unknown``; with that option they are dropped
    and a note on stderr names them (nothing left is an error unless ``empty_ok``). ``what``
    names the text ("the prompt", a path)."""
    from core.vocab import describe_chars

    unknown = vocab.unknown_chars(text)
    if not unknown:
        return text
    if not drop_unknown:
        raise click.ClickException(f"{what} has {len(unknown)} character(s) the model does not know: "
                                   f"{describe_chars(unknown)}; remove them, or pass --drop-unknown to drop them")
    ids, dropped = vocab.encode_lenient(text)
    if not ids and not empty_ok:
        raise click.ClickException(f"{what} has no characters the model knows (only {describe_chars(dropped)}); "
                                   "use a text in its vocabulary")
    click.echo(f"note: dropped {len(dropped)} character(s) the model does not know: {describe_chars(dropped)}",
               err=True)
    return vocab.decode(ids)


def load(path: Path | None):  # -> core.checkpoint.Checkpoint
    from core.checkpoint import load_checkpoint

    with domain_errors():
        return load_checkpoint(resolve_checkpoint(path))


class _Group(click.Group):
    """The command group; a closed pipe (``| head``) ends any command quietly with
    status 0, as Unix tools do (click's own handling would exit 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _silence_stdout()
            raise click.exceptions.Exit(0) from None


@click.group(cls=_Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@functools.partial(checkpoint_option, must_exist=False)
@click.version_option(__version__, prog_name="charlstm-tui")
@click.pass_context
def cli(ctx: click.Context, checkpoint: Path | None) -> None:
    """A terminal playground for a character-level LSTM language model.

    With no command, opens the interactive app on the bundled checkpoint
    (or --checkpoint / $CHARLSTM_CHECKPOINT).
    """
    if ctx.invoked_subcommand is None:
        from .app import run_app

        run_app(resolve_checkpoint(checkpoint), explicit=checkpoint is not None)


# -- generate ---------------------------------------------------------------------------

class OptionType(click.ParamType):
    """A :class:`core.options.Option` as a click type: the range and the parsing are core's."""

    def __init__(self, option: Any) -> None:
        self.option = option
        self.name = option.kind.__name__

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        o = self.option
        return "[" + "|".join(o.choices) + "]" if o.choices else {int: "INTEGER", float: "FLOAT"}[o.kind]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from core.errors import ConfigError

        try:
            return self.option.parse(str(value))
        except ConfigError as e:
            self.fail(str(e), param, ctx)


SHORT = {"temperature": "-t", "length": "-n", "seed": "-s"}


def sampling_options(f: Any) -> Any:
    """``generate``'s sampling options, one per :data:`core.options.SAMPLING` entry."""
    from core.options import SAMPLING

    for option in reversed(SAMPLING):
        flags = [option.flag] + ([SHORT[option.name]] if option.name in SHORT else [])
        help_text = f"{option.help[0].upper()}{option.help[1:]}"
        if not option.choices:
            help_text += f": {option.range_text(blank=False)}"
        help_text += "." + (f" [default: {option.off}]" if option.off else "")
        f = click.option(*flags, type=OptionType(option), default=option.default, help=help_text,
                         show_default=option.default is not None)(f)
    return f


@cli.command()
@checkpoint_option
@click.option("--prompt", "-p", default=None, help="Seed text. [default: start from a newline, as the lab does]")
@click.option("--prompt-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Read the seed text from a file.")
@sampling_options
@click.option("--num-samples", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Independent samples, drawn together in one batched pass.")
@drop_unknown_option
@click.option("--echo/--no-echo", default=True, show_default=True, help="Print the prompt before the generated text.")
@click.option("--verbose", "-v", is_flag=True, help="Report chars/s on stderr.")
def generate(checkpoint: Path | None, prompt: str | None, prompt_file: Path | None, length: int, temperature: float,
             top_k: int | None, top_p: float | None, seed: int | None, mode: str, num_samples: int,
             drop_unknown: bool, echo: bool, verbose: bool) -> None:
    """Generate text, streamed to stdout as it is sampled."""
    if prompt is not None and prompt_file is not None:
        raise click.UsageError("--prompt and --prompt-file cannot be used together; pick one")
    if prompt_file is not None:
        with domain_errors():
            from core.data import load_text

            prompt = load_text(prompt_file, min_chars=1, what="prompt file")
    ckpt = load(checkpoint)
    prompt = known_text(ckpt.vocab, prompt or "", drop_unknown,
                        f"prompt file {prompt_file}" if prompt_file is not None else "the prompt", empty_ok=True)
    from core.sampling import SampleConfig, Sampler

    with domain_errors():
        sampler = Sampler(ckpt.build_model(), ckpt.vocab)
        config = SampleConfig(temperature=temperature, top_k=top_k, top_p=top_p, length=length, seed=seed, mode=mode,
                              block_size=ckpt.block_size)
        start = time.perf_counter()
        if num_samples == 1:
            count = _stream(sampler.stream(prompt, config), prompt if echo else "")
        else:
            count = 0
            for i, text in enumerate(sampler.generate_batch(prompt, config, num_samples)):
                sys.stdout.write(f"{'' if i == 0 else chr(10)}--- sample {i + 1} ---\n{prompt if echo else ''}{text}\n")
                count += len(text)
            sys.stdout.flush()
        elapsed = time.perf_counter() - start
    if verbose:
        click.echo(f"{count:,} chars in {elapsed:.2f} s: {count / max(elapsed, 1e-9):,.0f} chars/s ({mode})", err=True)


def _stream(chars: Iterator[str], head: str) -> int:
    """Write characters as they come: flushed each character on a TTY, in blocks in a pipe."""
    out = sys.stdout
    tty = out.isatty()
    out.write(head)
    count = 0
    for ch in chars:
        out.write(ch)
        count += 1
        if tty:
            out.flush()
    out.write("\n")
    out.flush()
    return count


# -- info and eval ------------------------------------------------------------------------

@cli.command()
@checkpoint_option
def info(checkpoint: Path | None) -> None:
    """Describe a checkpoint: config, size, vocabulary, training and best val loss."""
    from .card import ModelCard

    path = resolve_checkpoint(checkpoint)
    click.echo(ModelCard.of(path, load(checkpoint)).text())


@cli.command("eval")
@checkpoint_option
@click.option("--data", "-d", "data_arg", required=True, help=DATA_HELP)
@click.option("--split", type=click.Choice(["val", "all"]), default="val", show_default=True,
              help="val: the last 10% of the file (the trainer's split). all: the whole file.")
@click.option("--block-size", type=click.IntRange(1), default=None,
              help="Window length. [default: the checkpoint's training block size]")
@click.option("--context", type=click.Choice(["window", "stream"]), default=None,
              help="window: each window of --block-size starts from a zero state (the trainer's estimate; "
                   "nanoGPT's measure). stream: the state carries through the text, as the app reads it. "
                   "[default: window; with --adapt, the split is read as one stream]")
@drop_unknown_option
@adapt_options
def eval_(checkpoint: Path | None, data_arg: str, split: str, block_size: int | None, context: str | None,
          drop_unknown: bool, adapt: bool, adapt_segment: int | None, adapt_step: float | None,
          adapt_decay: float | None) -> None:
    """Loss of a checkpoint on a text: nats/char, bits/char and perplexity."""
    config = adapt_config(adapt, adapt_segment, adapt_step, adapt_decay)
    if config is not None and (context is not None or block_size is not None):
        raise click.UsageError("--adapt reads the split as one stream, the state carried; drop "
                               f"{'--context' if context is not None else '--block-size'}")
    from core.data import load_text

    with domain_errors():  # the text first: a wrong path is said before torch loads
        path = data_source(data_arg)[0]
        raw = load_text(path)
    ckpt = load(checkpoint)
    from core.data import TextData
    from core.evaluate import evaluate

    with domain_errors():
        text = known_text(ckpt.vocab, raw, drop_unknown, str(path))
        data = TextData.from_text(text, vocab=ckpt.vocab)
    if config is not None:
        ids = data.val.tolist() if split == "val" else data.train.tolist() + data.val.tolist()
        static, adapted = read_both(ckpt, resolve_checkpoint(checkpoint), ckpt.vocab.decode(ids), config)
        click.echo(f"{split}: {_loss_line(static)} ({static.chars:,} chars, state carried)")
        click.echo(f"{split}: {_loss_line(adapted)} ({adapted.chars:,} chars, adapted as read: segments of "
                   f"{config.segment}, step {config.step:g}, decay {config.decay:g})")
        click.echo(f"adapting gained {static.loss - adapted.loss:.4f} nats/char "
                   f"({static.bits_per_char - adapted.bits_per_char:.4f} bits/char); it learns from the text it "
                   "scores, so compare it only with other adapted figures")
        return
    block = block_size or ckpt.block_size
    context = context or "window"
    with domain_errors(), _progress_line("eval") as progress:
        report = evaluate(ckpt.build_model(), data, split, block, context=context, progress=progress)
    how = f"windows of {block}" if context == "window" else f"state carried, in chunks of {block}"
    click.echo(f"{split}: {_loss_line(report)} ({report.chars:,} chars, {how})")


def _loss_line(report: Any) -> str:  # a core.evaluate.LossReport
    return (f"loss {report.loss:.4f} nats/char, {report.bits_per_char:.4f} bits/char, "
            f"perplexity {report.perplexity:.3f}")


@contextlib.contextmanager
def _progress_line(label: str) -> Iterator[Any]:
    """A ``progress(done, total)`` callback that keeps one line on stderr up to date
    (at most 10 times a second) while stderr is a terminal, and clears it at the end;
    None elsewhere, so logs and pipes get only the result."""
    if not sys.stderr.isatty():
        yield None
        return
    shown = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - shown[0] >= 0.1 or done >= total:
            shown[0] = now
            sys.stderr.write(f"\r{label}: {100 * done / max(total, 1):3.0f}% ({done:,} of {total:,} chars)")
            sys.stderr.flush()

    try:
        yield progress
    finally:
        sys.stderr.write("\r\033[K")  # the result goes where the progress was
        sys.stderr.flush()


from .score_cli import score  # noqa: E402  (commands kept in their own modules)
from .train_cli import train  # noqa: E402

cli.add_command(train)
cli.add_command(score)


def main() -> None:
    """Entry point: errors print as a single ``Error:`` line, never a usage dump or traceback.

    Output errors are errors too: a full disk under a redirect (or ``> /dev/full``) and a
    closed stdout (``>&-``) end with one line and status 1. A closed pipe (``| head``)
    ends quietly with status 0, as Unix tools do.
    """
    _guard_std_streams()
    try:
        rv = cli.main(standalone_mode=False, prog_name="charlstm-tui")
        sys.stdout.flush()  # what is still buffered fails here, where it can be reported, not at exit
    except BrokenPipeError:  # at the last flush, after the command
        _silence_stdout()
        sys.exit(0)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.UsageError as e:
        hint = f" (see: {e.ctx.command_path} --help)" if e.ctx is not None else ""
        click.echo(f"Error: {e.format_message()}{hint}", err=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        click.echo(f"Error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except OSError as e:
        # core names the files it reads and writes in its own errors; an OSError that
        # reaches here without a file name comes from writing the output.
        from core.files import os_reason

        where = f"cannot write {e.filename}" if e.filename else "cannot write the output"
        _silence_stdout()
        click.echo(f"Error: {where}: {os_reason(e)}", err=True)
        sys.exit(1)
    except MemoryError:
        _silence_stdout()
        click.echo("Error: out of memory; use a smaller input, model or --num-samples", err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


class _ClosedStream(io.TextIOBase):
    """Stands in for a standard stream the shell closed (``>&-``): writing to it is an
    error, which main() reports like any other failed write."""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed", None)

    def isatty(self) -> bool:
        return False


def _guard_std_streams() -> None:
    """Give a closed fd 0, 1 or 2 /dev/null, so no file this command opens takes its
    number (text meant for stdout would land in a checkpoint); a closed stdout then
    refuses writes."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        if name == "stdout":
            sys.stdout = _ClosedStream()
        elif getattr(sys, name) is None:
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's own flush at exit has nothing left to fail on."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)

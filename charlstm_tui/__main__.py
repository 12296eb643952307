"""``python -m charlstm_tui`` (also what torchrun runs: ``torchrun -m charlstm_tui train``)."""

from .cli import main

if __name__ == "__main__":
    main()

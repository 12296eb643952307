"""charlstm-tui: a terminal playground for a character-level LSTM language model.

Importing this package is cheap on purpose: no torch, no textual.
"""

from pathlib import Path

__version__ = "0.1.0"

#: The bundled model. It lives in the top-level ``checkpoints/`` folder, which sits beside
#: this package both in a source checkout (editable install) and in site-packages (wheel).
BUNDLED_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "shakespeare.pt"

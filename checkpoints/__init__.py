"""The bundled checkpoint ships here; see README.md in this folder for its model card."""

"""One module per `jupyter-mlops` subcommand; each stays cheap to import."""

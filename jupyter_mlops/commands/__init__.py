"""One module per `jupyter-mlops` subcommand; each stays cheap to import.

Modules are named after the subcommand they run (graph, monitor, submit, sync), even where
another package has a module of that name: here the name is the command's.
"""

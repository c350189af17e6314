"""Names called by name, for the dead-code check (`make lint` runs vulture, see pyproject.toml).

vulture finds no caller for what a framework calls by its name, or for what our own code looks up
by a computed name; each such name is read here once, with who calls it. Never imported or run.
"""
# ruff: noqa: B018


class _AnyObject:
    """Stands for any object: vulture counts each attribute read below as a use of the name."""

    def __getattr__(self, name: str) -> None:
        return None


_ = _AnyObject()

# Tornado: the request handlers' HTTP verbs, the error page, jupyter_server's auth resource.
_.get
_.post
_.put
_.patch
_.delete
_.write_error
_.auth_resource

# Jupyter Server: the extension's entry point and ExtensionApp's hooks and traits.
_._jupyter_server_extension_points
_.load_other_extensions
_.initialize_settings
_.initialize_handlers
_.stop_extension

# IPython: the extension's hooks and the display protocol.
_.load_ipython_extension
_.unload_ipython_extension
_._ipython_display_
_._repr_mimebundle_

# The %mlops subcommands, dispatched as getattr(self, f"_{args.command}") in magics.py.
_._start
_._track
_._log
_._params
_._end
_._status
_._sync
_._runs
_._ui
_._register
_._models
_._promote
_._drift

# papermill / nbclient: attributes their engines and clients read.
_.allow_stdin
_.start_new_kernel_client

# kfp: dsl.pipeline reads the generated pipeline function's signature; its type check reads a
# ParallelFor variable's channel_type (kfp/sweep.py).
_.__signature__
_.channel_type

# Run by name from generated code: the KFP component's source (kfp/components.py) and the local
# run's child process (server/jobs.py).
_.run_step_notebook
_.decode_json_parameter
_.run_child

# The runner's listener events, called as getattr(listener, event) by the scheduler.
_.retrying

# Run-row columns, read as getattr(row, column) by the runs table.
_.duration_s

# models/__init__.py makes the package callable by setting its module's class.
_.__class__

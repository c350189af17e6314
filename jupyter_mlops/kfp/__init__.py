"""Kubeflow Pipelines v2: compile a tagged notebook into a pipeline spec, and submit it.

Importing this package imports kfp (about a second); the command line imports it lazily.
"""

from jupyter_mlops.errors import KfpCompileError, KfpSubmitError
from jupyter_mlops.kfp.compiler import CompiledPipeline, compile_notebook
from jupyter_mlops.kfp.options import CompileOptions

__all__ = ["CompileOptions", "CompiledPipeline", "KfpCompileError", "KfpSubmitError",
           "compile_notebook"]

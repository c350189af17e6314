"""Which names a cell's code reads and binds, found by AST analysis after IPython's transforms.

Reads are free names used before the code itself binds them: what must come from elsewhere.
Nested scopes (functions, lambdas, classes, comprehensions) contribute their free names.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from itertools import repeat
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from IPython.core.inputtransformer2 import TransformerManager

# Names every kernel provides; never data from another step.
KERNEL_NAMES = frozenset(dir(builtins)) | {"get_ipython", "display", "In", "Out", "exit", "quit"}

# Cell magics whose body is Python run in the user namespace.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "mlops", "debug"})

_CELL_MAGIC = re.compile(r"^\s*%%(?P<name>\w+)[^\n]*\n?")


@dataclass
class CodeNames:
    """Names of a run of code, in order of first appearance."""

    reads: dict[str, int] = field(default_factory=dict)  # name -> line of first free read
    binds: dict[str, int] = field(default_factory=dict)  # name -> line of last binding
    deleted: set[str] = field(default_factory=set)
    imports: list[str] = field(default_factory=list)  # top-level module names


def parse_cell(source: str) -> ast.Module:
    """The cell's syntax tree after IPython's own transforms, with Python cell magics unwrapped.

    IPython's tokenizer is the bulk of the cost, so it sees as little as it can: plain Python
    parses as it is (IPython leaves it unchanged), and in a cell with a magic or a shell escape
    only those lines go through IPython first. Raises SyntaxError.
    """
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    try:
        return ast.parse(_transform_escaped_lines(source))
    except SyntaxError:
        return ast.parse(python_source(source))


_ESCAPED_LINE = re.compile(r"^(?P<indent>[ \t]*)(?P<code>(?:[%!]|[\w.,\s]+=\s*[%!]).*)$")


def _transform_escaped_lines(source: str) -> str:
    if _CELL_MAGIC.match(source):
        return python_source(source)
    lines = source.split("\n")
    for number, line in enumerate(lines):
        match = _ESCAPED_LINE.match(line)
        if match:
            lines[number] = match["indent"] + _escaped_line(match["code"])
    return "\n".join(lines)


def _escaped_line(code: str) -> str:
    # `%time x = f()` runs its statement in the user namespace: analyse the statement itself.
    # (IPython would hide it in a string; %timeit runs in a namespace of its own.)
    if code.startswith("%time ") and "\\" not in code:
        return code[len("%time ") :]
    return _transformer().transform_cell(code).rstrip("\n")


def python_source(source: str) -> str:
    """The cell as plain Python: IPython's own transforms, with Python cell magics unwrapped."""
    match = _CELL_MAGIC.match(source)
    if match and match["name"] in PYTHON_CELL_MAGICS:
        source = source[match.end() :]
    elif match:
        return ""  # %%bash, %%writefile ...: no Python names
    return _transformer().transform_cell(source)


@cache
def _transformer() -> TransformerManager:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def analyse(tree: ast.Module, names: CodeNames | None = None) -> CodeNames:
    """Add the reads and binds of a module's statements, in order, to `names`."""
    names = names if names is not None else CodeNames()
    _Sequence(names).statements(tree.body)
    return names


class _Sequence:
    """Walks module-level statements in execution order.

    The walk keeps its own stack of statement generators rather than recursing: a 500-branch
    `elif` is a 500-deep tree and valid code, and must not exhaust Python's call stack.
    """

    def __init__(self, names: CodeNames) -> None:
        self.names = names

    def statements(self, body: list[ast.stmt]) -> None:
        stack: list[Iterator[ast.stmt]] = [iter(body)]
        while stack:
            stmt = next(stack[-1], None)
            if stmt is None:
                stack.pop()
            else:
                stack.append(self.statement(stmt))

    def statement(self, stmt: ast.stmt) -> Iterator[ast.stmt]:
        """Analyse `stmt`'s own expressions; yield the statements it holds, in order."""
        if isinstance(stmt, (ast.If, ast.While)):
            self.expression(stmt.test)
            yield from stmt.body
            yield from stmt.orelse
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self.expression(stmt.iter)
            self.bind_target(stmt.target)
            yield from stmt.body
            yield from stmt.orelse
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                self.expression(item.context_expr)
                if item.optional_vars is not None:
                    self.bind_target(item.optional_vars)
            yield from stmt.body
        elif isinstance(stmt, (ast.Try, ast.TryStar)):
            yield from stmt.body
            for handler in stmt.handlers:
                if handler.type is not None:
                    self.expression(handler.type)
                if handler.name:
                    self.bind(handler.name, handler.lineno)
                yield from handler.body
                if handler.name:  # Python deletes the exception name after the handler
                    self.names.binds.pop(handler.name, None)
            yield from stmt.orelse
            yield from stmt.finalbody
        else:
            self.simple(stmt)

    def simple(self, stmt: ast.stmt) -> None:
        scope = _Scope.of_statement(stmt)
        for name, line in scope.loads.items():
            self.read(name, line)
        for name in scope.deletes:
            self.names.binds.pop(name, None)
            self.names.deleted.add(name)
        for name in scope.stores:
            self.bind(name, stmt.lineno)
        self.names.imports.extend(m for m in scope.imports if m not in self.names.imports)

    def expression(self, node: ast.expr) -> None:
        self.simple(ast.Expr(value=node, lineno=node.lineno, col_offset=0))

    def bind_target(self, target: ast.expr) -> None:
        scope = _Scope()
        scope.visit(target)
        for name, line in scope.loads.items():
            self.read(name, line)
        for name in scope.stores:
            self.bind(name, target.lineno)

    def read(self, name: str, line: int) -> None:
        if name not in self.names.binds and name not in self.names.reads:
            if name not in KERNEL_NAMES:
                self.names.reads[name] = line

    def bind(self, name: str, line: int) -> None:
        self.names.binds[name] = line
        self.names.deleted.discard(name)


# A visitor either handles its node at once (returns None) or is a generator yielding the
# (scope, child) pairs to visit next, in order; code after a yield runs once that child is done.
Work = Iterator[tuple["_Scope", ast.AST]]


class _Scope:
    """Loads and stores of one scope; nested scopes add only their free names.

    Expressions nest as deep as the code is long (a 300-call method chain, a 2,500-term sum),
    so the walk keeps its own stack instead of recursing.
    """

    def __init__(self) -> None:
        self.loads: dict[str, int] = {}
        self.stores: list[str] = []
        self.deletes: list[str] = []
        self.globals: set[str] = set()
        self.global_stores: list[str] = []
        self.imports: list[str] = []

    @classmethod
    def of_statement(cls, stmt: ast.stmt) -> _Scope:
        scope = cls()
        scope.visit(stmt)
        return scope

    def visit(self, node: ast.AST) -> None:
        _walk(self, node, 0)

    # ast.NodeVisitor's dispatch builds a method name per node and walks fields through a
    # generator; a per-type table makes the analysis about twice as fast.
    def generic_visit(self, node: ast.AST) -> None:
        """Marks the nodes whose children `visit` walks itself."""

    def _leaf(self, node: ast.AST) -> None:
        """Constants and contexts hold no names."""

    # -- names -----------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.loads.setdefault(node.id, node.lineno)
        elif isinstance(node.ctx, ast.Store):
            self.stores.append(node.id)
        else:
            self.deletes.append(node.id)

    def visit_AugAssign(self, node: ast.AugAssign) -> Work:
        if isinstance(node.target, ast.Name):  # x += 1 reads x first
            self.loads.setdefault(node.target.id, node.lineno)
        yield self, node.value
        yield self, node.target

    def visit_Assign(self, node: ast.Assign) -> Work:
        yield self, node.value  # the value is evaluated before the targets are bound
        for target in node.targets:
            yield self, target

    def visit_AnnAssign(self, node: ast.AnnAssign) -> Work:
        if node.value is not None:
            yield self, node.value
            yield self, node.target
        yield self, node.annotation

    def visit_NamedExpr(self, node: ast.NamedExpr) -> Work:
        yield self, node.value
        self.stores.append(node.target.id)

    def visit_Global(self, node: ast.Global) -> None:
        self.globals.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.globals.difference_update(node.names)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.stores.append(alias.asname or alias.name.split(".")[0])
            self.imports.append(alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self.imports.append(node.module.split(".")[0])
        for alias in node.names:
            if alias.name != "*":
                self.stores.append(alias.asname or alias.name)

    # -- nested scopes ---------------------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Work:
        for expr in [*node.decorator_list, *_defaults(node.args)]:
            yield self, expr
        yield from self._nested(node.body, _parameters(node.args), node.lineno)
        self.stores.append(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> Work:
        for expr in _defaults(node.args):
            yield self, expr
        yield from self._nested([ast.Expr(value=node.body)], _parameters(node.args), node.lineno)

    def visit_ClassDef(self, node: ast.ClassDef) -> Work:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            yield self, expr
        yield from self._nested(node.body, set(), node.lineno)
        self.stores.append(node.name)

    def _comprehension(self, node: ast.expr, elements: list[ast.expr]) -> Work:
        generators = node.generators  # type: ignore[attr-defined]
        yield self, generators[0].iter  # the first iterable is evaluated outside
        inner = _Scope()
        for index, gen in enumerate(generators):
            if index:
                yield inner, gen.iter
            yield inner, gen.target
            for condition in gen.ifs:
                yield inner, condition
        for element in elements:
            yield inner, element
        local = set(inner.stores)
        self._adopt(inner, local)

    def visit_ListComp(self, node: ast.ListComp) -> Work:
        return self._comprehension(node, [node.elt])

    visit_SetComp = visit_ListComp
    visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> Work:
        return self._comprehension(node, [node.key, node.value])

    def _nested(self, body: list[ast.stmt], parameters: set[str], line: int) -> Work:
        inner = _Scope()
        for stmt in body:
            yield inner, stmt
        local = (parameters | set(inner.stores)) - inner.globals
        self.global_stores.extend(n for n in inner.stores if n in inner.globals)
        self.stores.extend(n for n in inner.stores if n in inner.globals)
        self._adopt(inner, local)

    def _adopt(self, inner: _Scope, local: set[str]) -> None:
        for name, line in inner.loads.items():
            if name not in local:
                self.loads.setdefault(name, line)
        self.stores.extend(inner.global_stores)
        self.imports.extend(inner.imports)


_VISITORS: dict[type, Callable[[_Scope, ast.AST], Work | None]] = {
    leaf: _Scope._leaf for leaf in (ast.Constant, ast.Load, ast.Store, ast.Del)
}


# Recursion is the fast walk; below this depth a subtree is walked with a stack of its own.
_RECURSION_DEPTH = 150


def _walk(scope: _Scope, node: ast.AST, depth: int) -> None:
    if depth > _RECURSION_DEPTH:
        _walk_with_stack(scope, node)
        return
    kind = type(node)
    visitor = _VISITORS.get(kind) or _visitor(kind)
    if visitor is _Scope.generic_visit:  # most nodes: their children, no generator
        for child in _children(node, kind):
            _walk(scope, child, depth + 1)
    elif visitor is not _Scope._leaf:
        work = visitor(scope, node)
        if work is not None:
            for inner, child in work:
                _walk(inner, child, depth + 1)


def _walk_with_stack(scope: _Scope, node: ast.AST) -> None:
    """The walk of `_walk` for code nested deeper than Python's stack allows (a 300-call
    method chain, a 2,500-term sum, a 500-branch elif): the stack holds the nodes still to
    visit, as (scope, node), and visitors paused at a yield. A node's children go on top of the
    visitor that yielded it, so they are done before it resumes, as in the recursive walk."""
    stack: list[Any] = [(scope, node)]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        top = pop()
        if type(top) is not tuple:  # a paused visitor: the node it yields next, if any
            step = next(top, None)
            if step is not None:
                push(top)
                push(step)
            continue
        owner, current = top
        kind = type(current)
        visitor = _VISITORS.get(kind) or _visitor(kind)
        if visitor is _Scope.generic_visit:
            extend(zip(repeat(owner), reversed(_children(current, kind))))
        elif visitor is not _Scope._leaf:
            work = visitor(owner, current)
            if work is not None:
                push(work)


def _visitor(kind: type) -> Callable[[_Scope, ast.AST], Work | None]:
    visitor = getattr(_Scope, "visit_" + kind.__name__, _Scope.generic_visit)
    _VISITORS[kind] = visitor
    return visitor


_FIELDS: dict[type, tuple[str, ...]] = {}


def _children(node: ast.AST, kind: type[ast.AST]) -> list[ast.AST]:
    fields = _FIELDS.get(kind)
    if fields is None:  # `ctx` holds Load or Store: no names
        fields = _FIELDS[kind] = tuple(f for f in kind._fields if f != "ctx")
    children: list[ast.AST] = []
    for name in fields:
        value = getattr(node, name, None)
        if isinstance(value, list):
            children.extend(item for item in value if isinstance(item, ast.AST))
        elif isinstance(value, ast.AST):
            children.append(value)
    return children


def _parameters(args: ast.arguments) -> set[str]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return {arg.arg for arg in every if arg is not None}


def _defaults(args: ast.arguments) -> list[ast.expr]:
    return [*args.defaults, *(d for d in args.kw_defaults if d is not None)]

"""Loading a data scientist's code and attributing its errors to their file and line."""
from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable


class UserCodeError(Exception):
    """An exception raised by a use case's own code, attributed to its file, line and function.

    The original traceback is kept (`__cause__` and `user_traceback`) so nothing is hidden.
    """

    def __init__(self, usecase: str, file: str | None, line: int | None, function: str | None, message: str, user_traceback: str = ""):
        self.usecase = usecase
        self.file = file
        self.line = line
        self.function = function
        self.user_message = message
        self.user_traceback = user_traceback
        where = f"{file}:{line}" if file else "its code"
        in_function = f" in {function}()" if function else ""
        super().__init__(f"use case {usecase!r} failed at {where}{in_function}: {message}")

    def as_dict(self) -> dict[str, Any]:
        return {"error": "user_code", "usecase": self.usecase, "file": self.file, "line": self.line, "function": self.function, "message": self.user_message}


@dataclass(frozen=True)
class UserJob:
    """One variant's code: either `transform(records, ctx)` or `feedback(record)`."""

    usecase: str
    variant: str
    file: Path
    kind: str  # "transform" | "feedback"
    function: Callable[..., Any]
    takes_context: bool


def user_frame(folder: Path, error: BaseException) -> traceback.FrameSummary | None:
    """The deepest frame of `error`'s traceback in a file under `folder` (the use case's
    own code, helper modules beside job.py included); None when it arose elsewhere."""
    root = str(Path(folder).resolve())
    inside = [frame for frame in traceback.extract_tb(error.__traceback__) if str(Path(frame.filename).resolve()).startswith(root + "/")]
    return inside[-1] if inside else None


def wrap_user_exception(usecase: str, folder: Path, error: BaseException) -> UserCodeError:
    """Wraps an exception raised on the driver, pointing at the deepest frame in the use case folder."""
    frame = user_frame(folder, error)
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    wrapped = UserCodeError(usecase, frame.filename if frame else None, frame.lineno if frame else None, frame.name if frame else None, f"{type(error).__name__}: {error}", text)
    wrapped.__cause__ = error
    return wrapped


_PY_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def user_error_from_text(usecase: str, folder: Path, text: str) -> UserCodeError | None:
    """Finds the use case's frame in a traceback that crossed from a Python worker as text."""
    matches = [m for m in _PY_FRAME.finditer(text) if m.group(1).startswith(str(folder))]
    if not matches:
        return None
    last = matches[-1]
    # The exception line is the last non-empty line of the Python traceback section.
    python_part = text[last.end():]
    lines = [line.strip() for line in python_part.splitlines() if re.match(r"^\w*(Error|Exception)\b|^\w+: ", line.strip())]
    message = lines[0] if lines else "raised an exception"
    return UserCodeError(usecase, last.group(1), int(last.group(2)), last.group(3), message, text)


def load_user_job(usecase: str, variant: str, file: Path) -> UserJob:
    """Imports `file` and finds its entry point; import errors are user code errors too."""
    module = import_user_module(usecase, f"diamond_usecase_{usecase}_{variant.lower()}_{file.stem}", file)
    return _entry_point(usecase, variant, file, module)


def load_user_function(usecase: str, file: Path, name: str) -> Callable[..., Any]:
    """`def <name>(spark, params, ctx)` of an on-demand function (docs/RUNS.md), freshly imported."""
    module = import_user_module(usecase, f"diamond_function_{usecase}_{file.stem}", file)
    function = getattr(module, name, None)
    if not callable(function):
        raise UserCodeError(usecase, str(file), None, None, f"defines no function {name}(spark, params, ctx)")
    if len(inspect.signature(function).parameters) != 3:
        raise UserCodeError(usecase, str(file), function.__code__.co_firstlineno, name, f"{name} must take (spark, params, ctx)")
    return function  # type: ignore[no-any-return]


def import_user_module(usecase: str, module_name: str, file: Path) -> ModuleType:
    """Imports the use case's `file` as `module_name`; what it raises is a UserCodeError."""
    folder = file.parent.resolve()
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise UserCodeError(usecase, str(file), None, None, "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))  # lets job.py import helper modules that sit beside it
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # anything the user's module raises at import
        raise wrap_user_exception(usecase, folder, error) from error
    _ship_by_value(folder)
    return module


def _ship_by_value(folder: Path) -> None:
    # Python workers cannot import the use case's modules by name, so functions are
    # pickled with their code instead of by reference.
    from pyspark import cloudpickle

    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and str(Path(path).resolve()).startswith(str(folder)):
            try:
                cloudpickle.register_pickle_by_value(module)
            except ValueError:
                pass  # already registered


def _entry_point(usecase: str, variant: str, file: Path, module: ModuleType) -> UserJob:
    transform = getattr(module, "transform", None)
    feedback = getattr(module, "feedback", None)
    if callable(transform) and callable(feedback):
        raise UserCodeError(usecase, str(file), None, None, "defines both transform() and feedback(); keep one")
    if callable(transform):
        if len(inspect.signature(transform).parameters) != 2:
            raise UserCodeError(usecase, str(file), transform.__code__.co_firstlineno, "transform", "transform must take (records, ctx)")
        return UserJob(usecase, variant, file, "transform", transform, True)
    if callable(feedback):
        arity = len(inspect.signature(feedback).parameters)
        if arity not in (1, 2):
            raise UserCodeError(usecase, str(file), feedback.__code__.co_firstlineno, "feedback", "feedback must take (record) or (record, ctx)")
        return UserJob(usecase, variant, file, "feedback", feedback, arity == 2)
    raise UserCodeError(usecase, str(file), None, None, "defines neither transform(records, ctx) nor feedback(record)")

"""The annotated types the documents' keys share (stackbench/documents.py's result and
manifest, stackbench/capacity_document.py's capacity document): the schema version, the
bounds a Python type cannot say (``Json``) and the named types built on them. Apart so
that each document's module imports them without importing the other. (No ``from
__future__ import annotations``: TypedDict reads the evaluated annotations.)
"""

from typing import Annotated, Any, Final, Literal

# The version of the result, the manifest and the capacity document: which words their
# keys are in (the capacity document was new in 2).
# 1 → 2: a job's label is "label" (was "variant", while the manifest's jobs named the
#        served bench variant "served_variant", now "variant"); the result summary's count
#        of responses is "responses" (was "requests", which in loadgen's report counts sends).
SCHEMA_VERSION: Final = 2


class Json:
    """JSON Schema keywords a Python type cannot say, merged into the schema generated for
    the annotated key: ``Annotated[float, Json(minimum=0)]``. With ``replace=True`` the
    keywords are the key's whole schema (a document validated elsewhere)."""

    def __init__(self, *, replace: bool = False, **keywords: Any) -> None:
        self.replace = replace
        self.keywords = keywords


Count = Annotated[int, Json(minimum=0)]
AtLeastOne = Annotated[int, Json(minimum=1)]
NonNegative = Annotated[float, Json(minimum=0)]
Status = Literal["ok", "degraded", "failed"]
CpuSource = Literal["cpu-clock", "proc-stat"]
RunStatus = Literal["ok", "degraded", "failed", "interrupted"]
Interface = Literal["asgi", "wsgi"]
Version = Annotated[int, Json(const=SCHEMA_VERSION)]
CLOSED = Json(additionalProperties=False)  # no key but the TypedDict's
RunId = Annotated[str, Json(minLength=1)]

"""Request models with the API's limits, checked before anything is sent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from aigw.errors import UsageError

if TYPE_CHECKING:
    from aigw.context import AppContext


def _check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > 16:
        raise ValueError(f"at most 16 pairs (got {len(value)})")
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError(f"key {key[:20]!r}… is longer than 64 characters")
        if len(item) > 512:
            raise ValueError(f"value of {key!r} is longer than 512 characters")
    return value


Metadata = Annotated[dict[str, str] | None, AfterValidator(_check_metadata)]


class RequestModel(BaseModel):
    # Each command uses one or two of these: build a validator on first use, not at import
    # (building them all would slow every invocation, a refused one too).
    model_config = ConfigDict(extra="forbid", defer_build=True)

    def params(self) -> dict[str, Any]:
        """Only what was given: None means "leave as is" on updates."""
        return self.model_dump(exclude_none=True)


class AssistantFields(RequestModel):
    model: str | None = Field(None, min_length=1, max_length=256)
    name: str | None = Field(None, max_length=256)
    description: str | None = Field(None, max_length=512)
    instructions: str | None = Field(None, max_length=256_000)
    tools: list[dict[str, Any]] | None = Field(None, max_length=128)
    metadata: Metadata = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)


class AssistantCreate(AssistantFields):
    model: str = Field(min_length=1, max_length=256)


class ListQuery(RequestModel):
    limit: int | None = Field(None, ge=1, le=100)
    order: Literal["asc", "desc"] | None = None
    after: str | None = None
    before: str | None = None


ID_PREFIXES = {
    "assistant_id": "asst_",
    "thread_id": "thread_",
    "message_id": "msg_",
    "run_id": "run_",
    "step_id": "step_",
    "call_id": "call_",
}


MAX_ID_CHARS = 256  # the API's are ~30


def _is_utf8(text: str) -> bool:
    """False for text with lone surrogates: bytes that were not UTF-8 (in argv, say)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_id(value: str, field: str, *, enabled: bool = True) -> str:
    """An ID must look like one (e.g. `asst_…`); AIGW_CHECK_ID_PREFIXES=false turns this off."""
    if (
        not value
        or len(value) > MAX_ID_CHARS
        or any(c in value for c in "/?#%")
        or value != value.strip()
        or not value.isprintable()
        or not _is_utf8(value)
    ):
        shown = value[:40] + "…" if len(value) > 40 else value
        shown = shown.encode("utf-8", "backslashreplace").decode("utf-8")
        raise UsageError(f"invalid {field}: {shown!r} is not an ID")
    prefix = ID_PREFIXES[field]
    if enabled and not value.startswith(prefix):
        other = next((f for f, p in ID_PREFIXES.items() if value.startswith(p)), None)
        if other is not None:  # an ID of another kind: most likely two were swapped
            kind = other.removesuffix("_id")
            raise UsageError(
                f"invalid {field}: it wants an ID starting with {prefix!r}, but {value!r} is "
                f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} ID",
                hint=f"were two IDs swapped? {field} takes {prefix}…, "
                f"{other} takes {ID_PREFIXES[other]}… (see --help for which goes where)",
            )
        raise UsageError(
            f"invalid {field}: expected an ID starting with {prefix!r}, got {value!r}",
            hint="set AIGW_CHECK_ID_PREFIXES=false for servers whose IDs look different",
        )
    return value


# -- threads, messages, runs (the whole Assistants surface) ----------------------------------

MESSAGE_MAX_CHARS = 256_000


class MessageCreate(RequestModel):
    role: Literal["user", "assistant"] = "user"
    content: str = Field(min_length=1, max_length=MESSAGE_MAX_CHARS)
    metadata: Metadata = None


class ThreadCreate(RequestModel):
    messages: list[MessageCreate] | None = Field(None, max_length=32)
    metadata: Metadata = None


class ThreadUpdate(RequestModel):
    metadata: Metadata = None


class MessageListQuery(ListQuery):
    run_id: str | None = None


class RunCreate(RequestModel):
    assistant_id: str = Field(min_length=1)
    model: str | None = Field(None, min_length=1, max_length=256)
    instructions: str | None = Field(None, max_length=256_000)
    additional_instructions: str | None = Field(None, max_length=256_000)
    metadata: Metadata = None


class ToolOutput(RequestModel):
    tool_call_id: str = Field(min_length=1)
    output: str


class ToolOutputs(RequestModel):
    tool_outputs: list[ToolOutput] = Field(min_length=1, max_length=128)


def check_ids(app: AppContext, **ids: str | None) -> None:
    """check_id for each ID given, by its field name (None: not given), as the settings say."""
    for field, value in ids.items():
        if value is not None:
            check_id(value, field, enabled=app.settings.check_id_prefixes)

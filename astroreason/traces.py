"""Episode traces: one JSON line per finished episode in ``RUN_DIR/traces.jsonl``, images beside it.

The two records that every layer reads are declared here: :data:`EpisodeInfo`, the ``info`` dict
an environment returns from ``reset`` and ``step`` (built by ``ToolEnv._info``), and
:class:`TraceRecord`, one line of ``traces.jsonl`` (built by :func:`trace_record` from the last
info of an episode). Metrics, the viewer, the report, evaluation and training read these keys.

Each line holds ``metrics`` (numbers that evaluation aggregates) apart from ``logs`` (what people read:
messages, tool calls, errors). Images are written as lossless PNG files under ``RUN_DIR/images/<id>/``
and referenced from the messages by relative path. Evaluation and the trace viewer read the same file.

Reading (:func:`read_traces`) checks each line's shape (:data:`FIELD_TYPES`): a bad line is a one-line
:class:`DataError` naming the file and the line.

Writes are append-only; :class:`TraceWriter` drops a torn last line on open, and ``done_ids`` lets a run
resume. The exact guarantee:

* Killed process (any signal, ``kill -9``, OOM): no loss. :meth:`TraceWriter.write` hands the whole
  line to the operating system (write + flush) before it returns, and only then does the runner count
  the episode as written; the kernel keeps it whatever happens to the process. The episodes in flight
  are lost and re-run on resume.
* Machine crash or power loss: a background timer fsyncs the file at most ``sync_every_s`` (1 s) after
  a write, and closing fsyncs it, so at most the episodes written in the last second can be lost (they
  are re-run on resume). Image files are written before their line but never fsynced, so after a
  machine crash a surviving line may point at a lost image (as with per-episode fsync before).
* Never a duplicate: an id already in the file is skipped, on resume and within a run.

An fsync per episode cost 0.2-0.4 ms, as much as a turn's image encoding (``make bench``); pass
``sync_every_s=0`` to :class:`TraceWriter` to get it back.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from astroreason.chat import to_chat
from astroreason.errors import DataError
from astroreason.images import encode_image
from astroreason.jsonutil import jsonable

TRACES_FILE = "traces.jsonl"


class ToolCallRecord(TypedDict, total=False):
    """One tool call as the env saw it (``info["tool_calls"]``, ``logs.tool_calls``)."""

    name: Any  # what the model wrote (not always a string)
    arguments: Any
    ok: bool  # the call ran and returned a view
    error: str | None  # why it was refused
    image_index: int  # the index of the view it returned (ok calls)
    footprint: list[float] | None  # the source region the view shows (ok calls)
    requested_footprint: list[float] | None  # placebo conditions: the region asked for


class ViewRecord(TypedDict):
    """One image shown in an episode (``info["views"]``): 0 is the overview."""

    index: int
    kind: str  # "overview" or the tool that made it
    parent: int | None  # the image the tool was applied to
    footprint: list[float] | None  # source square [x0, y0, x1, y1] (spectra: [lo, hi] in A)


class GroundTruth(TypedDict, total=False):
    """What the env knows and the model never sees (``info["ground_truth"]``)."""

    label: int
    class_name: str
    class_names: list[str]
    bbox: list[float] | None  # galaxies: the target box in source pixels
    bbox_method: str | None  # galaxies: "file" (the data's own box), "photutils" or "centre"
    key_window: list[float] | None  # spectra: the diagnostic window in Angstrom
    wavelength_range: list[float]  # spectra: the data's span in Angstrom


class EpisodeRef(TypedDict):
    """Where an episode's sample comes from."""

    split: str
    index: int
    row_id: int
    sample: int  # which draw of the row (``--samples``), 0 for the first


EpisodeInfo = TypedDict(
    "EpisodeInfo",
    {
        "messages": list[dict[str, Any]],  # the conversation so far, images as arrays
        "tools": list[dict[str, Any]],  # the tool schemas offered (empty without tools)
        "tool_calls": list[ToolCallRecord],
        "views": list[ViewRecord],
        "turn": int,  # replies so far
        "max_turns": int,
        "invalid_actions": int,
        "condition": str,  # the condition label (``NAME`` or ``NAME@TAG``)
        "over_turn": bool,  # the episode was truncated at max_turns
        "prediction": int,  # class index answered, -1 for none yet
        "correct": bool,
        "return": float,  # the episode's return so far
        "episode": EpisodeRef,
        "ground_truth": GroundTruth,
    },
)
"""The ``info`` of :class:`astroreason.envs.base.ToolEnv` (``reset`` and ``step``)."""


class TraceMetrics(TypedDict):
    """The numbers evaluation aggregates (``record["metrics"]``)."""

    turns: int
    tool_calls: int
    ok_tool_calls: int
    invalid_actions: int
    over_turn: bool
    prompt_tokens: int
    completion_tokens: int
    wall_s: float
    env_s: float
    policy_latency_s: list[float]


class TraceLogs(TypedDict):
    """What people read (``record["logs"]``)."""

    messages: list[dict[str, Any]]  # images as ``{"type": "image", "path": ...}``
    replies: list[str]
    tool_calls: list[ToolCallRecord]
    views: list[ViewRecord]
    finish_reasons: list[str | None]


class TraceRecord(TypedDict, total=False):
    """One line of ``traces.jsonl``; built by :func:`trace_record`.

    Every key but the run's metadata (``model``, ... from ``run_meta``) is always present.
    """

    id: str
    condition: str
    split: str
    row_id: int
    sample: int
    seed: int
    policy: str
    label: int
    class_name: str
    prediction: int | None
    predicted_class: str | None
    correct: bool
    metrics: TraceMetrics  # plus "return" (a keyword, so not declared here)
    logs: TraceLogs
    ground_truth: GroundTruth  # without class_names
    class_names: list[str]


def trace_record(
    info: EpisodeInfo,
    *,
    ep_id: str,
    sample: int,
    seed: int,
    policy: str,
    meta: dict[str, Any],
    replies: list[str],
    latencies: list[float],
    finish_reasons: list[str | None],
    prompt_tokens: int,
    completion_tokens: int,
    wall_s: float,
    env_s: float,
    image_paths: list[str],
) -> TraceRecord:
    """The trace line of a finished episode from its last ``info`` and what the runner measured.

    Args:
        info: The env's info after the last step.
        ep_id: The episode id (:func:`episode_id`).
        sample: The sample number of this item (``k`` of ``--samples``).
        seed: The seed the env was reset with.
        policy: The policy's name.
        meta: The run's metadata (model, sampling, ...), copied into the record.
        replies: The model's replies in order.
        latencies: Seconds per reply.
        finish_reasons: The server's finish reason per reply (None where unknown).
        prompt_tokens: Prompt tokens over the episode.
        completion_tokens: Completion tokens over the episode.
        wall_s: Wall seconds of the episode.
        env_s: Seconds spent in the env.
        image_paths: Where the episode's images were saved, in message order.
    """
    gt = info["ground_truth"]
    names = gt["class_names"]
    pred = info["prediction"] if info["prediction"] >= 0 else None
    calls = info["tool_calls"]
    ref = info["episode"]
    return {
        "id": ep_id,
        "condition": info["condition"],
        "split": ref["split"],
        "row_id": int(ref["row_id"]),
        "sample": sample,
        "seed": seed,
        "policy": policy,
        **meta,
        "label": int(gt["label"]),
        "class_name": names[int(gt["label"])],
        "prediction": pred,
        "predicted_class": names[pred] if pred is not None else None,
        "correct": bool(info["correct"]),
        "metrics": {
            "return": float(info["return"]),
            "turns": int(info["turn"]),
            "tool_calls": len(calls),
            "ok_tool_calls": sum(1 for c in calls if c.get("ok")),
            "invalid_actions": int(info["invalid_actions"]),
            "over_turn": bool(info["over_turn"]),
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "wall_s": round(wall_s, 4),
            "env_s": round(env_s, 4),
            "policy_latency_s": latencies,
        },
        "logs": {
            "messages": [
                _cap_message(m) for m in messages_for_trace(info["messages"], image_paths)
            ],
            "replies": [cap_text(r) for r in replies],
            "tool_calls": calls,
            "views": info["views"],
            "finish_reasons": finish_reasons,
        },
        "ground_truth": {k: v for k, v in gt.items() if k != "class_names"},
        "class_names": list(names),
    }  # type: ignore[typeddict-unknown-key]


TRACE_TEXT_CAP = 32_000
"""Characters of one reply or message text kept in ``traces.jsonl``; the rest is dropped with a mark
(the environment already judges replies over ``max_reply_chars``, 8,000 by default, invalid)."""


def cut_mark(n: int, what: str = "characters", tail: str = " not kept") -> str:
    """The mark that ends a cut text: ``… [N more characters not kept]`` (``tail`` varies)."""
    return f"\u2026 [{n} more {what}{tail}]"


def cap_text(text: Any, cap: int = TRACE_TEXT_CAP, tail: str = " not kept") -> Any:
    """``text`` cut to ``cap`` characters and marked (:func:`cut_mark`); non-text as it is."""
    if not isinstance(text, str) or len(text) <= cap:
        return text
    return text[:cap] + cut_mark(len(text) - cap, tail=tail)


def _cap_message(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": cap_text(content)}
    if isinstance(content, list):
        return {
            **message,
            "content": [
                {**b, "text": cap_text(b["text"])} if isinstance(b, dict) and "text" in b else b
                for b in content
            ],
        }
    return message


def episode_id(condition: str, split: str, row_id: int, sample: int) -> str:
    """Deterministic episode id: the same (condition, split, row, sample) always gets the same id."""
    return f"{condition}-{split}-{int(row_id)}-{int(sample)}"


class TraceWriter:
    """Append-only, crash-safe writer of ``traces.jsonl`` and its images."""

    def __init__(self, run_dir: str | os.PathLike, sync_every_s: float = 1.0):
        self.run_dir = Path(run_dir)
        self.sync_every_s = sync_every_s
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / TRACES_FILE
        self._repair()
        self.done_ids = (
            {rec["id"] for rec in read_traces(self.run_dir)} if self.path.exists() else set()
        )
        self._fh = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None  # the pending fsync, if any

    def _repair(self) -> None:
        """Drop a torn last line left by a killed run."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(cut)

    def save_images(self, ep_id: str, images: list[np.ndarray]) -> list[str]:
        """Write an episode's images; returns paths relative to the run folder."""
        folder = self.run_dir / "images" / ep_id
        folder.mkdir(parents=True, exist_ok=True)
        rels = []
        for k, img in enumerate(images):
            rel = f"images/{ep_id}/{k}.png"
            data, _ = encode_image(img, "png")
            (self.run_dir / rel).write_bytes(data)
            rels.append(rel)
        return rels

    def write(self, record: dict[str, Any]) -> None:
        """Append one episode unless its id is already done; see the module docstring.

        On return the line is with the operating system (it survives the process); a background
        timer fsyncs it within ``sync_every_s`` (0: at once, here), as do :meth:`sync` and
        :meth:`close`.
        """
        if record["id"] in self.done_ids:
            return
        self._fh.write(json.dumps(record, default=jsonable) + "\n")
        self._fh.flush()
        self.done_ids.add(record["id"])
        if self.sync_every_s <= 0:
            os.fsync(self._fh.fileno())
            return
        with self._lock:
            if self._timer is None:
                self._timer = threading.Timer(self.sync_every_s, self._sync_from_timer)
                self._timer.daemon = True
                self._timer.start()

    def _sync_from_timer(self) -> None:
        with self._lock:  # what was flushed before this point is covered; later writes re-arm
            if self._timer is None or self._fh.closed:
                return
            self._timer = None
            fd = os.dup(self._fh.fileno())  # close() may run during the fsync
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def sync(self) -> None:
        """Make what was written so far durable against a machine crash (fsync)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._fh.closed:
                os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Make everything durable (fsync) and close the file."""
        if self._fh.closed:
            return
        try:
            self.sync()
        finally:
            self._fh.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_NUM = (int, float)
_NONE = type(None)
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "condition": (str,),
    "split": (str,),
    "row_id": (int,),
    "sample": (int,),
    "label": (int,),
    "class_name": (str,),
    "prediction": (int, _NONE),
    "predicted_class": (str, _NONE),
    "correct": (bool,),
    "class_names": (list,),
    "class_names[]": (str,),
    "metrics": (dict,),
    "metrics.return": _NUM,
    "metrics.turns": (int,),
    "metrics.tool_calls": (int,),
    "metrics.ok_tool_calls": (int,),
    "metrics.invalid_actions": (int,),
    "metrics.over_turn": (bool,),
    "metrics.prompt_tokens": (int,),
    "metrics.completion_tokens": (int,),
    "metrics.wall_s": _NUM,
    "metrics.env_s": _NUM,
    "metrics.policy_latency_s": (list,),
    "metrics.policy_latency_s[]": _NUM,
    "logs": (dict,),
    "logs.messages": (list,),
    "logs.messages[]": (dict,),
    "logs.messages[].role": (str,),
    "logs.messages[].content": (str, list, _NONE),
    "logs.messages[].content[]": (dict,),
    "logs.messages[].content[].type": (str,),
    "logs.messages[].content[].text": (str,),
    "logs.messages[].content[].path": (str, _NONE),
    "logs.messages[].content[].shape": (list,),
    "logs.messages[].content[].shape[]": (int,),
    "logs.messages[].tool_calls": (list, _NONE),
    "logs.messages[].tool_calls[]": (dict,),
    "logs.messages[].tool_calls[].function": (dict,),
    "logs.replies": (list,),
    "logs.replies[]": (str,),
    "logs.finish_reasons": (list,),
    "logs.finish_reasons[]": (str, _NONE),
    "logs.tool_calls": (list,),
    "logs.tool_calls[]": (dict,),
    "logs.tool_calls[].error": (str, _NONE),
    "logs.views": (list,),
    "logs.views[]": (dict,),
    "logs.views[].index": (int,),
    "logs.views[].kind": (str, _NONE),
    "logs.views[].footprint": (list, _NONE),
    "logs.views[].footprint[]": _NUM,
    "ground_truth": (dict,),
    "ground_truth.label": (int,),
    "ground_truth.bbox": (list, _NONE),
    "ground_truth.bbox[]": _NUM,
    "ground_truth.key_window": (list, _NONE),
    "ground_truth.key_window[]": _NUM,
}
"""The JSON types of a trace line's fields (``a.b[]``: each item of the list ``a.b``).

:func:`read_traces` checks every field that is present (``id`` must be).
"""

_JSON_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "an object",
    _NONE: "null",
}


class MissingKey(DataError, KeyError):
    """A reader asked a trace line for a key it lacks (a :class:`KeyError` too, for ``except``)."""

    __str__ = Exception.__str__


class TraceLine(dict):
    """A JSON object of a trace line: a missing key raises :class:`MissingKey` naming the line."""

    def __init__(self, pairs: Any = (), where: tuple[str, int] = ("?", 0)):
        super().__init__(pairs)
        self.where = where

    def __missing__(self, key: Any) -> Any:
        path, n = self.where
        raise MissingKey(path, f"line {n}: no key {key!r} (an incomplete trace)")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return _JSON_NAMES[bool]
    return next((v for t, v in _JSON_NAMES.items() if isinstance(value, t)), type(value).__name__)


def _has_type(value: Any, want: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # JSON true/false is not a number
        return bool in want
    return isinstance(value, want)


class _Node:
    """:data:`FIELD_TYPES` as a tree: the types at a path, its keys' nodes, its items' node."""

    def __init__(self) -> None:
        self.types: tuple[type, ...] | None = None
        self.keys: dict[str, _Node] = {}
        self.items: _Node | None = None


def _field_tree() -> _Node:
    root = _Node()
    for spec, want in FIELD_TYPES.items():
        node = root
        for part in spec.split("."):
            node = node.keys.setdefault(part.removesuffix("[]"), _Node())
            if part.endswith("[]"):
                node.items = node.items or _Node()
                node = node.items
        node.types = want
    return root


_FIELD_TREE = _field_tree()


def _type_problem(value: Any, node: _Node) -> tuple[list[str], str] | None:
    """(path parts, problem) of the first value below ``node`` of a wrong type; one pass."""
    if node.types is not None and not _has_type(value, node.types):
        names = " or ".join(_JSON_NAMES[t] for t in node.types)
        return [], f"is {_json_kind(value)}, not {names}"
    if node.keys and isinstance(value, dict):
        for key, child in node.keys.items():
            if key in value and (bad := _type_problem(value[key], child)):
                bad[0].append(f".{key}")
                return bad
    if node.items is not None and isinstance(value, list):
        for i, item in enumerate(value):
            if bad := _type_problem(item, node.items):
                bad[0].append(f"[{i}]")
                return bad
    return None


def trace_problem(record: Any) -> str | None:
    """What is wrong with the shape of one decoded trace line (:data:`FIELD_TYPES`), or None."""
    if not isinstance(record, dict):
        return f"a trace is a JSON object, not {_json_kind(record)}"
    if "id" not in record:
        return "no key 'id'"
    bad = _type_problem(record, _FIELD_TREE)
    if bad is None:
        return None
    parts, problem = bad
    return f"{''.join(reversed(parts)).lstrip('.')} {problem}"


def read_traces(run_dir: str | os.PathLike) -> Iterator[TraceRecord]:
    """Yield the episodes of a run (a torn last line is skipped; other bad lines are errors).

    Each line must be a JSON object with an ``id`` whose present fields have the types of
    :data:`FIELD_TYPES`, else :class:`DataError` names the file, the line and the problem. Objects
    come as :class:`TraceLine`, so a reader indexing a missing key gets such an error too.
    """
    path = Path(run_dir) / TRACES_FILE
    if not path.exists():
        raise DataError(
            path, "no traces here (run `astroreason rollout` or `astroreason eval` first)"
        )
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(
                line, object_pairs_hook=lambda pairs, n=n: TraceLine(pairs, (str(path), n))
            )
        except json.JSONDecodeError as e:
            if n == len(lines) and not line.endswith("\n"):
                return
            raise DataError(path, f"line {n} is not valid JSON ({e.msg})") from None
        problem = trace_problem(rec)
        if problem:
            raise DataError(path, f"line {n}: {problem}")
        yield rec


def messages_for_trace(messages: list[dict[str, Any]], image_paths: list[str]) -> list[dict]:
    """The conversation with image arrays replaced by ``{"type": "image", "path": ...}`` in order.

    ``image_paths`` are those of ``images_of(messages, decoded=True)``: a ``tokens`` block keeps its
    text and grid shape and gets the path of its decoded image
    (``{"type": "tokens", "text": ..., "shape": [rows, cols], "path": ...}``).
    """
    it = iter(image_paths)
    return to_chat(
        messages,
        lambda image: {"type": "image", "path": next(it, None)},
        tokens=lambda b: {
            "type": "tokens",
            "text": b.get("text", ""),
            "shape": [int(x) for x in b.get("shape", ())],
            "path": next(it, None),
        },
    )

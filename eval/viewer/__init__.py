"""The trace viewer: ``RUN_DIR/traces.html``, one static page over every episode of a run.

* :mod:`.render`: the page (:func:`write_viewer`, :func:`render_viewer`) from the Jinja2 templates in
  ``eval/templates/``;
* :mod:`.show`: one episode in the terminal (:func:`show_episode`, :func:`find_episode`);
* :mod:`.serve`: the run folder over local HTTP (:func:`serve_viewer`; files inside it only).

The page reads ``RUN_DIR/traces.jsonl`` and every ``RUN_DIR/<condition>/traces.jsonl`` (an
``astroreason eval`` folder or a single ``astroreason rollout`` folder). Images are referenced by
relative path, so it works opened from disk or served. Plain-JS filters: condition,
correct/incorrect, true class, predicted class, number of tool calls. Each episode shows the overview
with every zoom/crop footprint drawn on it (and the ground-truth box, dashed), each returned view, the
model's replies (``<think>`` folded in a ``<details>``), tool calls and tool errors, the answer and
the reward. ``traces.html#ep=<id>`` opens one episode.

Model text is untrusted: the templates autoescape everything they print; the JSON index the filters
read sits in a ``<script type="application/json">`` with ``<``, ``>``, ``&``, U+2028 and U+2029
escaped (:func:`script_json`), and the script never puts data into ``innerHTML``. The page shows at
most :data:`TEXT_CAP` characters of any one text (and caps each episode), marking each cut. The
terminal gets model text with its control characters escaped (:func:`printable`).
"""

from astroreason.eval.viewer.render import (
    COLORS,
    TEXT_CAP,
    THINK,
    VIEWER_FILE,
    iter_run_records,
    render_viewer,
    script_json,
    write_viewer,
)
from astroreason.eval.viewer.serve import serve_viewer
from astroreason.eval.viewer.show import find_episode, printable, show_episode

__all__ = [
    "COLORS",
    "TEXT_CAP",
    "THINK",
    "VIEWER_FILE",
    "find_episode",
    "iter_run_records",
    "printable",
    "render_viewer",
    "script_json",
    "serve_viewer",
    "show_episode",
    "write_viewer",
]
